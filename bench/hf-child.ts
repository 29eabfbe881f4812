// One real-size Hugging Face model measured in a process of its own, so that its peak RSS is its own:
//   tsx bench/hf-child.ts <folder> [--profile] [--steps=3]
// loads the folder (time, RSS), generates 32 tokens greedily with the KV cache, runs forward passes at batch 1 × 256,
// then forward + backward + AdamW training steps (LoRA r=8 on q_proj and v_proj for Llama; GPT-2's Conv1D gets LoRA
// in part B, so its step trains the c_attn biases: the same backward through every layer, without the adapters).
// Prints one JSON line; with --profile, first a table of where a training step's time goes, per kernel.
import { readFileSync } from 'node:fs'
import { backendInfo, K, type Kernels } from '../src/node'
import { tensor, noGrad } from '../src/tensor'
import { manualSeed, randomInt } from '../src/random'
import { loadPretrained } from '../nn/files/pretrained-node'
import { LlamaForCausalLM } from '../nn/llama'
import { applyLoRA } from '../nn/lora-model'
import { AdamW } from '../nn/optim'
import { medianOf } from './timing'

export type HFReport = {
  loadMs: number
  /** CPU time of the load (all threads): on a loaded machine a better guide to a quiet one's wall time */
  loadCpuMs: number
  /** CPU time of one training step, all threads (the wasm backend runs products on 2) */
  stepCpuMs: number
  loadedMB: number
  prefillMs: number
  decodeTokS: number
  forwardMs: number
  stepMs: number
  peakMB: number
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
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8')) // this process only (see memory-child)
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

function main(): void {
  const dir = process.argv[2]
  const steps = Number(process.argv.find((a) => a.startsWith('--steps='))?.slice(8) ?? 3)
  const t0 = performance.now(),
    c0 = process.cpuUsage()
  const { model } = loadPretrained(dir)
  const loadMs = performance.now() - t0
  const loadCpuMs = cpuMs(c0)
  const loadedMB = mb(process.memoryUsage().rss)
  manualSeed(0)
  const T = 256,
    V = model.vocabSize
  const idx = tensor(
    Float32Array.from({ length: T }, () => randomInt(0, V)),
    [1, T],
  )
  const targets = tensor(
    Float32Array.from({ length: T }, () => randomInt(0, V)),
    [1, T],
  )

  // generation: a 16-token prompt, then 32 tokens; decode speed = the 31 tokens after the first
  const prompt = tensor(idx.data.slice(0, 16), [1, 16])
  model.generate(prompt, 2, { temperature: 0 }) // warm-up: JIT, auto's probe
  const prefill = medianOf(() => model.generate(prompt, 1, { temperature: 0 }), { warmup: 0, runs: 3 }).value
  const g0 = performance.now()
  model.generate(prompt, 32, { temperature: 0 })
  const decodeTokS = 31 / ((performance.now() - g0 - prefill) / 1000)

  const forwardMs = medianOf(() => noGrad(() => model.forward(idx)), { warmup: 1, runs: steps }).value

  let trained: string
  if (model instanceof LlamaForCausalLM) {
    applyLoRA(model, { targets: ['q_proj', 'v_proj'], rank: 8, alpha: 16 })
    trained = 'LoRA r=8 on q_proj, v_proj'
  } else {
    model.freeze()
    for (const block of model.transformer.h)
      (block.attn.c_attn as unknown as { bias: { requiresGrad: boolean } }).bias.requiresGrad = true
    trained = 'c_attn biases (LoRA on Conv1D: part B)'
  }
  model.train()
  const opt = new AdamW(model.trainableParameters(), { lr: 1e-4 })
  const step = () => {
    opt.zeroGrad()
    const loss = model.loss(idx, targets)
    loss.backward()
    opt.step()
  }
  const stepMs = medianOf(step, { warmup: 1, runs: steps }).value
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
    ...{ backend: `${backend} on ${threads} thread(s)`, trained, profile },
  }
  console.log(JSON.stringify(report))
}

main()
