// One real-size Hugging Face model measured in a process of its own, so that its peak RSS is its own:
//   tsx bench/hf-child.ts <folder> [--qlora] [--profile] [--steps=3] [--tokens=256] [--new=32] [--group=64]
// loads the folder (time, RSS), generates 32 tokens greedily with the KV cache, runs forward passes at batch 1 × 256,
// then forward + backward + AdamW training steps with LoRA r=8 on q_proj and v_proj (GPT-2: its fused c_attn, a
// Conv1D). --qlora: the base quantized first (affine 4-bit, groups of 64; nn.quantize), then the LoRA steps alone,
// so that the peak RSS is a QLoRA run's. Prints one JSON line; with --profile, first a table of where a training
// step's time goes, per kernel. --tokens, --new and --group shrink the work for the tiny fixtures of the smoke test.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { backendInfo, K, type Kernels } from '../src/node'
import { tensor, noGrad } from '../src/tensor'
import { manualSeed } from '../src/random'
import { loadPretrained } from '../nn/files/pretrained-node'
import { LlamaForCausalLM } from '../nn/llama'
import { applyLoRA } from '../nn/lora-model'
import { quantize } from '../nn/quantized'
import { AdamW } from '../nn/optim'
import { medianOf } from './timing'

export type HFReport = {
  loadMs: number
  /** CPU time of the load (all threads): on a loaded machine a better guide to a quiet one's wall time */
  loadCpuMs: number
  /** CPU time of one training step, all threads (the wasm backend runs products on 2) */
  stepCpuMs: number
  loadedMB: number
  /** NaN under --qlora, which measures the training step alone */
  prefillMs: number
  decodeTokS: number
  forwardMs: number
  stepMs: number
  peakMB: number
  /** the first training step's loss (LoRA's B starts at zero: the base model's loss), to compare with PyTorch's */
  firstLoss: number
  /** trainable parameters (the adapters') */
  trainable: number
  backend: string
  trained: string
  profile?: [string, number][]
}

const mb = (bytes: number) => bytes / 2 ** 20
const cpuMs = (since: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(since)
  return (d.user + d.system) / 1000
}
function peakMB(): number {
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8')) // this process only
  return hwm ? Number(hwm[1]) / 1024 : process.resourceUsage().maxRSS / 1024
}

/** Wrap every K entry so its calls add their ms to `spent` (matmul split by transpose case); returns the undo. */
function instrument(spent: Map<string, number>): () => void {
  const saved = { ...K }
  for (const name of Object.keys(K) as (keyof Kernels)[]) {
    const inner = saved[name] as (...args: unknown[]) => unknown
    Object.assign(K, {
      [name]: (...args: unknown[]) => {
        let key: string = name
        if (name === 'matmul' || name === 'matmulBatched') {
          const flags = (args[name === 'matmul' ? 5 : 6] ?? {}) as { transA?: boolean; transB?: boolean }
          key = `${name} ${flags.transA ? 'T' : 'N'}${flags.transB ? 'T' : 'N'}`
        }
        const t0 = performance.now()
        const out = inner(...args)
        spent.set(key, (spent.get(key) ?? 0) + performance.now() - t0)
        return out
      },
    })
  }
  return () => Object.assign(K, saved)
}

/** Where one call of fn spends its time, per kernel, as rows [name, ms] headed by `what`. */
function profiled(what: string, fn: () => void): [string, number][] {
  const spent = new Map<string, number>()
  const restore = instrument(spent)
  const s0 = performance.now()
  fn()
  const total = performance.now() - s0
  restore()
  const rows = [...spent].sort((a, b) => b[1] - a[1])
  const outside = total - rows.reduce((s, [, ms]) => s + ms, 0)
  return [[`${what}: total`, total], ...rows, ['(outside kernels: autograd, allocation, optimizer)', outside]]
}

/** The value of `--name=<number>` on the command line, or `fallback`. */
function numberArg(name: string, fallback: number): number {
  const given = process.argv.find((a) => a.startsWith(`--${name}=`))
  return given === undefined ? fallback : Number(given.slice(name.length + 3))
}

/**
 * n token ids by a rule bench/hf-torch.py computes too (seed·7919 + 104729·i mod vocab), so that both peers train on
 * the same batch and their first losses can be compared.
 */
export function benchTokens(n: number, vocab: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => (seed * 7919 + 104729 * i) % vocab)
}

function main(): void {
  const dir = process.argv[2]
  const [steps, T, fresh, groupSize] = [
    numberArg('steps', 3),
    numberArg('tokens', 256),
    numberArg('new', 32),
    numberArg('group', 64),
  ]
  const t0 = performance.now(),
    c0 = process.cpuUsage()
  const { model } = loadPretrained(dir)
  const loadMs = performance.now() - t0
  const loadCpuMs = cpuMs(c0)
  const loadedMB = mb(process.memoryUsage().rss)
  manualSeed(0) // LoRA's A
  const V = model.vocabSize
  const idx = tensor(benchTokens(T, V, 1), [1, T]),
    targets = tensor(benchTokens(T, V, 2), [1, T])

  const qlora = process.argv.includes('--qlora')
  const P = Math.min(16, T)
  const prompt = tensor(idx.data.slice(0, P), [1, P])
  let [prefill, decodeTokS, forwardMs] = [NaN, NaN, NaN]
  if (!qlora) {
    // generation: a 16-token prompt, then 32 tokens; decode speed = the 31 tokens after the first
    model.generate(prompt, 2, { temperature: 0 }) // warm-up: JIT, auto's probe
    prefill = medianOf(() => model.generate(prompt, 1, { temperature: 0 }), { warmup: 0, runs: 3 }).value
    const g0 = performance.now()
    model.generate(prompt, fresh, { temperature: 0 })
    decodeTokS = (fresh - 1) / ((performance.now() - g0 - prefill) / 1000)
    forwardMs = medianOf(() => noGrad(() => model.forward(idx)), { warmup: 1, runs: steps }).value
  }

  let quantized = ''
  if (qlora) {
    const { paths, skipped } = quantize(model, { mode: 'affine', bits: 4, groupSize })
    const kept = skipped.length ? `, ${skipped.length} kept in float32` : ''
    quantized = `QLoRA: ${paths.length} layers affine 4-bit (groups of ${groupSize})${kept}; `
  }
  const adapted = model instanceof LlamaForCausalLM ? ['q_proj', 'v_proj'] : ['c_attn']
  applyLoRA(model, { targets: adapted, rank: 8, alpha: 16 })
  const trained = `${quantized}LoRA r=8 on ${adapted.join(', ')}`
  model.train()
  const opt = new AdamW(model.trainableParameters(), { lr: 1e-4 })
  const step = () => {
    opt.zeroGrad()
    const loss = model.loss(idx, targets)
    loss.backward()
    opt.step()
    return loss.item()
  }
  const firstLoss = step() // the warm-up step, on the weights as loaded
  const stepMs = medianOf(step, { warmup: 0, runs: steps }).value
  const s0 = process.cpuUsage()
  step()
  const stepCpuMs = cpuMs(s0)
  let profile: [string, number][] | undefined
  if (process.argv.includes('--profile')) {
    profile = [
      ...profiled('training step', step),
      ...profiled('generation of 16 tokens (eval mode, cache)', () => {
        model.eval()
        model.generate(prompt, 16, { temperature: 0 })
      }),
    ]
  }
  const { backend, threads } = backendInfo()
  const report: HFReport = {
    ...{ loadMs, loadCpuMs, loadedMB, prefillMs: prefill, decodeTokS, forwardMs, stepMs, stepCpuMs, peakMB: peakMB() },
    ...{ firstLoss, trainable: model.numParameters({ trainable: true }) },
    ...{ backend: `${backend} on ${threads} thread(s)`, trained, profile },
  }
  console.log(JSON.stringify(report))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main()
