// A JavaScript peer's LoRA step at GPT-2 small's shape, in a process of its own so that its peak RSS is its own:
//   tsx bench/hf-peer-child.ts <tfjs|jaxjs> [--steps=2] [--tiny]
// The bench's tfjs GPT (bench/tfjs-gpt.ts, wasm backend) or jax-js GPT (bench/jaxjs-gpt.ts, `jit`) built at GPT-2
// small's configuration (12 layers, 768 wide, 12 heads, vocab 50,257, context 256) with LoRA r=8 on q and v, then
// AdamW steps at batch 1 × 256. Their GPT is Tenny's nn.GPT architecture: q, k and v as three projections and an
// untied head (GPT-2 fuses c_attn and ties the head), the same products to within the head's 39M extra weights.
// Prints one JSON line. The first step (tfjs: kernel set-up; jax-js: tracing and compiling) is reported apart.
// --tiny: a 2-layer, 32-wide GPT (the smoke test's, test/hf-bench.test.ts).
import { readFileSync } from 'node:fs'
import { LORA, ADAMW, batchData, randomWeights, type GPTConfig } from './config'

export const GPT2_SMALL: GPTConfig = { vocabSize: 50257, blockSize: 256, nLayer: 12, nHead: 12, nEmbd: 768 }
const TINY: GPTConfig = { vocabSize: 97, blockSize: 16, nLayer: 2, nHead: 2, nEmbd: 32 }

export type PeerReport = {
  buildMs: number
  firstStepMs: number
  stepMs: number
  firstLoss: number
  peakMB: number
  steps: number
  engine: string
}

function peakMB(): number {
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8')) // this process only
  return hwm ? Number(hwm[1]) / 1024 : process.resourceUsage().maxRSS / 1024
}

async function main(): Promise<void> {
  const engine = process.argv[2]
  const steps = Number(process.argv.find((a) => a.startsWith('--steps='))?.slice(8) ?? 2)
  if (engine !== 'tfjs' && engine !== 'jaxjs') throw new Error(`hf-peer-child: usage <tfjs|jaxjs>, got ${engine}`)
  const cfg = process.argv.includes('--tiny') ? TINY : GPT2_SMALL
  const { idx, targets } = batchData(cfg, 1)
  const t0 = performance.now()
  let step: () => number
  if (engine === 'tfjs') {
    const { TfGPT, useTf } = await import('./tfjs-gpt')
    await useTf('wasm')
    const model = new TfGPT(cfg, randomWeights(cfg, LORA), LORA)
    step = () => model.step(idx, targets, 1, cfg.blockSize, ADAMW)
  } else {
    const { JaxLoRAGPT } = await import('./jaxjs-gpt')
    const model = new JaxLoRAGPT(cfg, randomWeights(cfg, LORA), ADAMW, LORA)
    step = () => model.step(idx, targets)
  }
  const buildMs = performance.now() - t0
  const s0 = performance.now()
  const firstLoss = step()
  const firstStepMs = performance.now() - s0
  // small random weights give near-uniform logits: a loss far from ln(vocab) means the model is not what it claims
  if (!(Math.abs(firstLoss - Math.log(cfg.vocabSize)) < 0.5))
    throw new Error(`hf-peer-child: ${engine}'s first loss ${firstLoss} is not near ln(${cfg.vocabSize})`)
  const times: number[] = []
  for (let i = 1; i < steps; i++) {
    const t = performance.now()
    step()
    times.push(performance.now() - t)
  }
  times.sort((a, b) => a - b)
  const report: PeerReport = {
    buildMs,
    firstStepMs,
    stepMs: times.length ? times[times.length >> 1] : NaN,
    firstLoss,
    peakMB: peakMB(),
    steps,
    engine: engine === 'tfjs' ? 'tfjs-wasm (1 thread)' : 'jax-js jit (1 thread)',
  }
  console.log(JSON.stringify(report))
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err instanceof Error ? err.message : String(err))
    process.exit(1)
  },
)
