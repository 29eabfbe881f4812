// The tiny-GPT training step and cached generation, timed on their own: `npx tsx bench/gpt-step.ts [--steps N]`.
// vocab 65, context 64, nEmbd 128, 4 heads, 2 layers, MLP 4x, batch 16, AdamW — the configuration that
// bench/ compares against TensorFlow.js (its wasm backend measured ~820 ms/step on this machine).
import { Tensor, randint, randn } from '../src/tensor'
import { manualSeed } from '../src/random'
import { GPT } from '../nn/gpt'
import { AdamW } from '../nn/optim'
import { causalAttention, attentionComposite } from '../ops/attention'

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name)
  return i === -1 ? fallback : Number(process.argv[i + 1])
}
const steps = arg('--steps', 10),
  warmup = 2,
  newTokens = arg('--tokens', 150)
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

manualSeed(0)
const config = { vocabSize: 65, blockSize: 64, nLayer: 2, nHead: 4, nEmbd: 128 }
const gpt = new GPT(config)
const opt = new AdamW(gpt.parameters(), { lr: 3e-4 })
const x = randint(0, 65, [16, 64]),
  y = randint(0, 65, [16, 64])

const fwd: number[] = [],
  bwd: number[] = [],
  total: number[] = [],
  cpu: number[] = []
let loss = 0
for (let i = 0; i < warmup + steps; i++) {
  const c0 = process.cpuUsage(),
    t0 = performance.now()
  const l = gpt.loss(x, y)
  const t1 = performance.now()
  opt.zeroGrad()
  l.backward()
  const t2 = performance.now()
  opt.step()
  const t3 = performance.now(),
    c3 = process.cpuUsage(c0)
  loss = l.item()
  if (i >= warmup) {
    fwd.push(t1 - t0)
    bwd.push(t2 - t1)
    total.push(t3 - t0)
    cpu.push((c3.user + c3.system) / 1000)
  }
}
console.log(
  `train step  ${median(total).toFixed(0)} ms/step median of ${steps} (forward ${median(fwd).toFixed(0)}, backward ${median(bwd).toFixed(0)}; min ${Math.min(...total).toFixed(0)}, max ${Math.max(...total).toFixed(0)}), last loss ${loss.toFixed(3)}`,
)
console.log(
  `            ${median(cpu).toFixed(0)} ms of CPU time per step (median; less sensitive to other processes on a shared machine)`,
)

gpt.eval()
// Within blockSize every new token costs one position with the cache; past it the context slides, learned
// absolute positions shift, and each token recomputes the window (the cache is rebuilt), as without it.
const prompt = new Tensor(new Float32Array([1]), [1, 1])
for (const n of [63, newTokens]) {
  for (const useCache of [true, false]) {
    const t0 = performance.now()
    gpt.generate(prompt, n, { seed: 1, useCache })
    const s = (performance.now() - t0) / 1000
    console.log(
      `generate    ${(n / s).toFixed(0).padStart(5)} tokens/s ${useCache ? 'with the KV cache      ' : 'recomputing the context'} (${n} new tokens from 1, batch 1, blockSize 64)`,
    )
  }
}
// The fused attention op against the composite it replaces (split heads, matmul, mask, softmax, matmul, merge).
const qkv = () => randn([16, 64, 128], { requiresGrad: true })
const [q, k, v] = [qkv(), qkv(), qkv()]
for (const [name, f] of [
  ['fused    ', causalAttention],
  ['composite', attentionComposite],
] as const) {
  const ts: number[] = []
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now()
    f(q, k, v, 4).backward(new Float32Array(16 * 64 * 128).fill(1e-3))
    ts.push(performance.now() - t0)
  }
  console.log(`attention   ${name} forward+backward ${median(ts).toFixed(1)} ms (B 16, T 64, C 128, 4 heads)`)
}
console.log(`peak RSS    ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`)
