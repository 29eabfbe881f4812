// Where a real-size Hugging Face model's time goes, per kernel and per matmul shape: a random-weight folder at
// SmolLM2-135M's or GPT-2 small's shape (bench/hf-shapes.ts), loaded as a user loads one, then a LoRA training step
// (r=8 on q and v, batch 1 × 256) and greedy generation with the KV cache. Each K entry is wrapped in a timer;
// matmul is split by (m, k, n, transpose case), so the products that matter can be measured on their own.
//   npx tsx bench/profile-hf.ts [smollm2|gpt2] [--steps=2] [--tokens=16] [--top=20]
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { K, backendInfo, type Kernels } from '../src/node'
import { tensor } from '../src/tensor'
import { manualSeed, randomInt } from '../src/random'
import { loadPretrained } from '../nn/files/pretrained-node'
import { applyLoRA } from '../nn/lora-model'
import { AdamW } from '../nn/optim'
import { HF_SHAPES, writeRandomFolder, type HFShape } from './hf-shapes'

const arg = (name: string, fallback: number) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback)
const shape = (process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 'smollm2') as HFShape
const steps = arg('steps', 2),
  tokens = arg('tokens', 16),
  top = arg('top', 20)

const rssMB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024
const hwmMB = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024

/** Wrap every K entry so its calls add [ms, calls] under a key (matmul keyed by shape and case); returns the undo. */
function instrument(spent: Map<string, [number, number]>): () => void {
  const saved = { ...K }
  for (const name of Object.keys(K) as (keyof Kernels)[]) {
    const inner = saved[name] as (...args: unknown[]) => unknown
    Object.assign(K, {
      [name]: (...args: unknown[]) => {
        let key: string = name
        if (name === 'matmul' || name === 'matmulBatched') {
          const batched = name === 'matmulBatched'
          const dims = (args.slice(2, batched ? 6 : 5) as number[]).join('×')
          const f = (args[batched ? 6 : 5] ?? {}) as { transA?: boolean; transB?: boolean }
          key = `${name} ${f.transA ? 'T' : 'N'}${f.transB ? 'T' : 'N'} ${dims}`
        }
        const t0 = performance.now()
        const out = inner(...args)
        const [ms, calls] = spent.get(key) ?? [0, 0]
        spent.set(key, [ms + performance.now() - t0, calls + 1])
        return out
      },
    })
  }
  return () => Object.assign(K, saved)
}

function report(what: string, fn: () => void): void {
  const spent = new Map<string, [number, number]>()
  const restore = instrument(spent)
  const c0 = process.cpuUsage(),
    t0 = performance.now()
  fn()
  const total = performance.now() - t0,
    cpu = process.cpuUsage(c0)
  restore()
  const rows = [...spent].sort((a, b) => b[1][0] - a[1][0])
  const inKernels = rows.reduce((s, [, [ms]]) => s + ms, 0)
  console.log(`\n${what}: ${total.toFixed(0)} ms wall, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms CPU (threads)`)
  for (const [key, [ms, calls]] of rows.slice(0, top))
    console.log(
      `  ${key.padEnd(44)} ${ms.toFixed(1).padStart(8)} ms ${((100 * ms) / total).toFixed(1).padStart(5)}%  ×${calls}`,
    )
  console.log(`  ${'(outside kernels)'.padEnd(44)} ${(total - inKernels).toFixed(1).padStart(8)} ms`)
}

function main(): void {
  const dir = fileURLToPath(new URL(`./out/hf/${shape}`, import.meta.url))
  if (!existsSync(`${dir}/model.safetensors`)) writeRandomFolder(dir, shape)
  console.log(`${HF_SHAPES[shape].label}; load ${process.env.TENNY_BACKEND ?? 'auto'}`)
  const t0 = performance.now()
  const { model } = loadPretrained(dir)
  console.log(`load: ${(performance.now() - t0).toFixed(0)} ms, RSS ${rssMB().toFixed(0)} MB`)
  manualSeed(0)
  const T = 256,
    V = model.vocabSize
  const ids = () =>
    tensor(
      Float32Array.from({ length: T }, () => randomInt(0, V)),
      [1, T],
    )
  const idx = ids(),
    targets = ids()
  const prompt = tensor(idx.data.slice(0, 16), [1, 16])
  model.generate(prompt, 2, { temperature: 0 }) // warm-up: JIT, auto's probe
  report(`generation of ${tokens} tokens after a 16-token prompt`, () =>
    model.generate(prompt, tokens, { temperature: 0 }),
  )
  console.log(`RSS ${rssMB().toFixed(0)} MB, peak ${hwmMB().toFixed(0)} MB`)
  applyLoRA(model, { targets: shape === 'gpt2' ? ['c_attn'] : ['q_proj', 'v_proj'], rank: 8, alpha: 16 })
  model.train()
  const opt = new AdamW(model.trainableParameters(), { lr: 1e-4 })
  const step = () => {
    opt.zeroGrad()
    model.loss(idx, targets).backward()
    opt.step()
  }
  step() // warm-up
  for (let s = 0; s < steps; s++) report(`LoRA training step ${s + 1}, 1 × ${T}`, step)
  console.log(`RSS ${rssMB().toFixed(0)} MB, peak ${hwmMB().toFixed(0)} MB; ${backendInfo().matmul}`)
}

main()
