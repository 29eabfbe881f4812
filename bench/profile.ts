// Where a tiny-GPT training step (the bench's shape) spends its time, per kernel-table entry: every K entry is
// wrapped in a timer (matmul split by transpose case), and what is left of the step is autograd, allocation and
// the optimizer. Also `npm run bench -- --profile`.
//   npx tsx bench/profile.ts [--backends=cpu,wasm] [--steps=6] [--lora] [--generate]
import '../src/node'
import { K, type Kernels } from '../src/kernels'
import { setBackend, backendInfo, type BackendName } from '../src/backends'
import { noGrad } from '../src/tensor'
import { TINY_GPT, BATCH, SEED, batchData } from './config'
import { buildTennyGPT, tennyTrainer, ids } from './tenny-gpt'

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1]
const backends = (arg('backends') ?? 'cpu,wasm').split(',') as BackendName[]
const steps = Number(arg('steps') ?? 6)
const lora = process.argv.includes('--lora')
const generate = process.argv.includes('--generate')

/** Wrap every K entry so its calls add their ms to `spent`; returns a function that puts K back. */
function instrument(spent: Map<string, number>): () => void {
  const saved = { ...K }
  for (const name of Object.keys(K) as (keyof Kernels)[]) {
    const inner = saved[name] as (...args: unknown[]) => unknown
    const timed = (...args: unknown[]) => {
      let key: string = name
      if (name === 'matmul' || name === 'matmulBatched') {
        const flags = (args[name === 'matmul' ? 5 : 6] ?? {}) as { transA?: boolean; transB?: boolean }
        key = `${name} ${flags.transA ? 'T' : 'N'}${flags.transB ? 'T' : 'N'}`
      }
      const t0 = performance.now()
      const out = inner(...args)
      spent.set(key, (spent.get(key) ?? 0) + performance.now() - t0)
      return out
    }
    Object.assign(K, { [name]: timed })
  }
  return () => Object.assign(K, saved)
}

function profile(backend: BackendName): void {
  setBackend(backend)
  const { idx, targets } = batchData(TINY_GPT, BATCH)
  const model = buildTennyGPT(TINY_GPT, SEED, { lora })
  const work = generate
    ? () => noGrad(() => model.generate(ids(new Int32Array([0]), 1, 1), TINY_GPT.blockSize - 1, { temperature: 0 }))
    : tennyTrainer(model, idx, targets, BATCH)
  for (let i = 0; i < 2; i++) work() // warm-up: JIT, auto's probe, the pool
  const spent = new Map<string, number>()
  const restore = instrument(spent)
  const t0 = performance.now()
  for (let i = 0; i < steps; i++) work()
  const total = (performance.now() - t0) / steps
  restore()
  const rows = [...spent].map(([name, ms]) => [name, ms / steps] as const).sort((a, b) => b[1] - a[1])
  const inKernels = rows.reduce((s, [, ms]) => s + ms, 0)
  console.log(
    `\n${generate ? 'generation (63 tokens)' : `training step${lora ? ' (LoRA)' : ''}`}, ${backend}: ${total.toFixed(1)} ms per ${generate ? 'run' : 'step'} (mean of ${steps}); ${backendInfo().matmul}`,
  )
  for (const [name, ms] of rows)
    console.log(`  ${name.padEnd(22)} ${ms.toFixed(2).padStart(8)} ms  ${((100 * ms) / total).toFixed(1).padStart(5)}%`)
  console.log(
    `  ${'(outside kernels)'.padEnd(22)} ${(total - inKernels).toFixed(2).padStart(8)} ms  ${((100 * (total - inKernels)) / total).toFixed(1).padStart(5)}%  autograd, allocation, optimizer`,
  )
}

for (const backend of backends) profile(backend)
