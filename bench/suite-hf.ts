// Hugging Face models at real size (random weights): each model measured in child processes of its own
// (bench/hf-child.ts: load, generation with the KV cache, forward, LoRA step at batch 1 × 256, peak RSS; again with
// --qlora for the QLoRA step and its peak RSS), beside PyTorch on the CPU (bench/hf-torch.py, when Debian's torch is
// there) and, at GPT-2's shape, the tfjs and jax-js GPTs (bench/hf-peer-child.ts); and the Llama family's fused ops
// against their composites at SmolLM2-135M's shape, alternated in one process.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { manualSeed } from '../src/random'
import { rmsNorm, rmsNormComposite } from '../ops/rmsnorm'
import { rotary, rotaryComposite } from '../ops/rotary'
import { ropeFrequencies, ropeTables } from '../nn/llama'
import { HF_SHAPES, writeRandomFolder, type HFShape } from './hf-shapes'
import type { HFReport } from './hf-child'
import type { PeerReport } from './hf-peer-child'
import { medianOf, type Cell, type Row } from './timing'
import { randn, ones, type Tensor } from '../src/tensor'

const COLUMN = 'Tenny auto'
const TORCH = 'PyTorch CPU'
const here = (f: string) => fileURLToPath(new URL(f, import.meta.url))

/** The random folder for `shape` under bench/out/hf (written once, then reused). */
export function hfFolder(shape: HFShape): string {
  const dir = here(`./out/hf/${shape}`)
  if (!existsSync(`${dir}/model.safetensors`)) writeRandomFolder(dir, shape)
  return dir
}

/** The last line of a child's stdout as JSON, or one line saying why there is none. */
function lastJson<T>(res: ReturnType<typeof spawnSync>, what: string): T | string {
  const out = String(res.stdout ?? '').trim()
  const line = out.split('\n').pop() ?? ''
  if (res.status !== 0 || !line.startsWith('{')) {
    const why =
      String(res.stderr ?? '')
        .trim()
        .split('\n')
        .pop() ?? ''
    return `${what} failed (${res.status ?? res.signal}): ${why}`.slice(0, 240)
  }
  return JSON.parse(line) as T
}

/** Tenny's report for a folder from bench/hf-child.ts (`extra`: its --tokens, --new, --group for tiny folders). */
export function runChild(
  dir: string,
  { profile = false, qlora = false, extra = [] as string[] } = {},
): HFReport | string {
  const args = ['--import', 'tsx', here('./hf-child.ts'), dir, ...(profile ? ['--profile'] : []), ...extra]
  if (qlora) args.push('--qlora')
  const res = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 900_000, maxBuffer: 16 << 20 })
  return lastJson<HFReport>(res, qlora ? 'the QLoRA child' : 'the child')
}

/** PyTorch's numbers for a folder (bench/hf-torch.py), or why there are none (no torch: skipped). */
export type TorchReport = {
  loadMs: number
  decodeTokS: number
  stepMs: number
  stepCpuMs: number
  peakMB: number
  threads: number
  firstLoss: number
  trainable: number
  torch: string
  trained: string
}

const PYTHON = '/usr/bin/python3' // Debian's python3-torch: the `python3` on PATH may be another one

/** `extra`: hf-torch.py's --tokens and --new for tiny folders. */
export function runTorch(dir: string, extra: string[] = []): TorchReport | string {
  const probe = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' })
  if (probe.status !== 0) return `skipped: ${PYTHON} has no torch (apt-get install python3-torch)`
  const args = [here('./hf-torch.py'), dir, '--threads=2', '--steps=1', ...extra]
  const res = spawnSync(PYTHON, args, { encoding: 'utf8', timeout: 900_000, maxBuffer: 16 << 20 })
  return lastJson<TorchReport>(res, 'PyTorch')
}

/** A peer's LoRA step at GPT-2 small's shape (`tiny`: at the smoke test's tiny shape). */
export function runPeer(engine: 'tfjs' | 'jaxjs', { tiny = false } = {}): PeerReport | string {
  const args = ['--import', 'tsx', here('./hf-peer-child.ts'), engine, '--steps=2', ...(tiny ? ['--tiny'] : [])]
  const res = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 1_200_000, maxBuffer: 16 << 20 })
  return lastJson<PeerReport>(res, engine === 'tfjs' ? 'tfjs-wasm' : 'jax-js jit')
}

const cell = (value: number, method: string): Cell => ({ value, method, samples: 1 })

/** What one shape's rows are built from: Tenny's LoRA and QLoRA children and each peer's report (or why not). */
export type Measured = {
  lora: HFReport | string
  qlora: HFReport | string
  torch: TorchReport | string
  peers: { tfjs?: PeerReport | string; jaxjs?: PeerReport | string }
}

export function modelRows(shape: HFShape, m: Measured): Row[] {
  const { label, dtype } = HF_SHAPES[shape]
  const section = `Hugging Face models at real size, random weights: ${label}`
  const ok = <T>(r: T | string): T | null => (typeof r === 'string' ? null : r)
  const [lora, qlora, torch] = [ok(m.lora), ok(m.qlora), ok(m.torch)]
  const row = (name: string, unit: Row['unit'], cells: Record<string, Cell | null>, notes: string[] = []): Row => ({
    section,
    name,
    unit,
    cells,
    notes,
  })
  const why = (r: unknown, who: string) => (typeof r === 'string' ? [`${who}: ${r}`] : [])
  const tenny = (r: HFReport | null, value: (x: HFReport) => number, method: string) =>
    r ? cell(value(r), method) : null
  const peer = (r: PeerReport | string | undefined, value: (x: PeerReport) => number, method: string) =>
    r && typeof r !== 'string' ? cell(value(r), method) : null
  const torchCell = (value: (x: TorchReport) => number, method: string) => (torch ? cell(value(torch), method) : null)
  const { tfjs, jaxjs } = m.peers
  const peerNotes = [...why(tfjs, 'tfjs wasm'), ...why(jaxjs, 'jax-js jit')]
  const rows = [
    row(
      `load ${dtype} file (loadPretrained)`,
      'ms',
      {
        [COLUMN]: tenny(lora, (x) => x.loadMs, 'one load, own process'),
        [TORCH]: torchCell((x) => x.loadMs, 'one load: read + widen to float32, own process'),
      },
      [...why(m.lora, 'Tenny'), ...why(m.torch, 'PyTorch')],
    ),
    row('forward, batch 1 × 256 (no grad)', 'ms', {
      [COLUMN]: tenny(lora, (x) => x.forwardMs, 'median of 3 (after 1 warm-up)'),
    }),
    row(
      `LoRA step 1 × 256: ${lora?.trained ?? 'LoRA r=8'}, AdamW`,
      'ms',
      {
        [COLUMN]: tenny(lora, (x) => x.stepMs, 'median of 3 (after 1 warm-up)'),
        [TORCH]: torchCell((x) => x.stepMs, 'one step (after generation), own process'),
        ...(shape === 'gpt2' && {
          'tfjs wasm': peer(tfjs, (x) => x.stepMs, 'the second step, own process'),
          'jax-js jit': peer(jaxjs, (x) => x.stepMs, 'the second step (the first traces and compiles), own process'),
        }),
      },
      [...(shape === 'gpt2' ? peerNotes : [])],
    ),
    row(
      'QLoRA step 1 × 256: base affine 4-bit (groups of 64), LoRA r=8, AdamW',
      'ms',
      { [COLUMN]: tenny(qlora, (x) => x.stepMs, 'median of 3 (after 1 warm-up), own process') },
      [
        ...why(m.qlora, 'Tenny QLoRA'),
        'PyTorch: not measured (no 4-bit CPU kernel in Debian`s torch 1.13; bitsandbytes needs CUDA)',
      ],
    ),
    row('generation with the KV cache (after a 16-token prompt)', 'tok/s', {
      [COLUMN]: tenny(lora, (x) => x.decodeTokS, '31 tokens'),
      [TORCH]: torchCell((x) => x.decodeTokS, '31 tokens, a KV cache by concatenation'),
    }),
    row('peak RSS of a LoRA run (load, generate, train)', 'MB', {
      [COLUMN]: tenny(lora, (x) => x.peakMB, 'VmHWM'),
      [TORCH]: torchCell((x) => x.peakMB, 'VmHWM'),
      ...(shape === 'gpt2' && {
        'tfjs wasm': peer(tfjs, (x) => x.peakMB, 'VmHWM, incl. the JS weights it is built from'),
        'jax-js jit': peer(jaxjs, (x) => x.peakMB, 'VmHWM, incl. the JS weights it is built from'),
      }),
    }),
    row('peak RSS of a QLoRA run (load, quantize, train)', 'MB', {
      [COLUMN]: tenny(qlora, (x) => x.peakMB, 'VmHWM'),
    }),
  ]
  // CPU time (all threads) beside wall time: on a loaded machine the better guide to a quiet one
  if (lora) rows[0].notes.push(`Tenny: ${lora.loadCpuMs.toFixed(0)} ms of CPU time; ${lora.backend}`)
  if (lora) rows[2].notes.push(`Tenny: ${lora.stepCpuMs.toFixed(0)} ms of CPU time over all threads`)
  if (torch)
    rows[2].notes.push(
      `PyTorch ${torch.torch} on ${torch.threads} threads: ${torch.stepCpuMs.toFixed(0)} ms of CPU time`,
    )
  if (qlora) rows[3].notes.push(`${qlora.trained}; ${qlora.stepCpuMs.toFixed(0)} ms of CPU time`)
  for (const [name, r] of Object.entries(m.peers))
    if (r && typeof r !== 'string')
      rows[2].notes.push(
        `${name === 'tfjs' ? 'tfjs wasm' : 'jax-js jit'}: the bench's GPT (separate q, k, v; untied head) at this ` +
          `shape, first step ${(r.firstStepMs / 1000).toFixed(1)} s, first loss ${r.firstLoss.toFixed(3)}`,
      )
  return rows
}

/** ms for `calls` forward + backward passes of f, alternating variants: median over rounds of each variant. */
function alternate(variants: [string, () => void][], rounds: number): Map<string, Cell> {
  const times = new Map<string, number[]>(variants.map(([n]) => [n, []]))
  for (let r = 0; r < rounds; r++) {
    for (const [name, run] of variants) times.get(name)!.push(medianOf(run, { warmup: 1, runs: 3 }).value)
  }
  return new Map(
    [...times].map(([name, ts]) => {
      ts.sort((a, b) => a - b)
      return [name, { value: ts[ts.length >> 1], method: `median of ${rounds} alternating rounds`, samples: rounds }]
    }),
  )
}

/** rmsNorm and rotary as one SmolLM2-shaped training step calls them (frozen norm weights, as under LoRA). */
function opRows(rounds: number): Row[] {
  const {
    hidden_size: C,
    num_attention_heads: H,
    num_key_value_heads: KV,
    num_hidden_layers: L,
  } = HF_SHAPES.smollm2.config
  const T = 256,
    hd = C / H
  manualSeed(3)
  const x = randn([1, T, C], { requiresGrad: true }),
    w = ones([C])
  const k = randn([1, T, KV * hd], { requiresGrad: true })
  const rope = ropeTables(ropeFrequencies(HF_SHAPES.smollm2.config.rope_theta, hd, null), 0, T)
  const backward = (y: Tensor, probe: Tensor) => y.backward(probe) // dy = probe: only the op's own backward runs
  const probeX = randn([1, T, C]),
    probeK = randn([1, T, KV * hd])
  const norms = 2 * L + 1
  const times = alternate(
    [
      [
        'rmsNorm fused',
        () => {
          for (let i = 0; i < norms; i++) backward(rmsNorm(x, w, 1e-5), probeX)
        },
      ],
      [
        'rmsNorm composite',
        () => {
          for (let i = 0; i < norms; i++) backward(rmsNormComposite(x, w, 1e-5), probeX)
        },
      ],
      [
        'rotary fused',
        () => {
          for (let i = 0; i < L; i++) {
            backward(rotary(x, rope, H), probeX)
            backward(rotary(k, rope, KV), probeK)
          }
        },
      ],
      [
        'rotary composite',
        () => {
          for (let i = 0; i < L; i++) {
            backward(rotaryComposite(x, rope, H), probeX)
            backward(rotaryComposite(k, rope, KV), probeK)
          }
        },
      ],
    ],
    rounds,
  )
  const section = "Llama ops in one SmolLM2-135M-shaped step's calls (forward + backward), fused vs composite"
  const name = {
    'rmsNorm fused': `rmsNorm ×${norms} on (1, ${T}, ${C}), fused`,
    'rmsNorm composite': `rmsNorm ×${norms}, composite (the spec: mul, mean, add, sqrt, div, mul)`,
    'rotary fused': `rotary ×${2 * L} on q (1, ${T}, ${C}) and k (1, ${T}, ${KV * hd}), fused`,
    'rotary composite': `rotary ×${2 * L}, composite (reshape, slice, neg, concat, mul, add)`,
  }
  return [...times].map(([k2, c]) => ({
    section,
    name: name[k2 as keyof typeof name],
    unit: 'ms' as const,
    cells: { [COLUMN]: c },
    notes: [],
  }))
}

/**
 * The Hugging Face rows. Each model in processes of its own (Tenny LoRA, Tenny QLoRA, PyTorch); at GPT-2's shape the
 * tfjs and jax-js GPTs too (`peers`: jax-js's LoRA step takes minutes here, tracing and compiling included).
 */
export function hfRows({ quick, peers = true }: { quick: boolean; peers?: boolean }): Row[] {
  const rows = opRows(quick ? 1 : 5)
  for (const shape of Object.keys(HF_SHAPES) as HFShape[]) {
    if (quick) {
      const not = 'not run under --quick (real sizes take minutes)'
      rows.push(...modelRows(shape, { lora: not, qlora: not, torch: not, peers: {} }))
      continue
    }
    const dir = hfFolder(shape)
    const off = 'not run (--jaxjs=off)'
    rows.push(
      ...modelRows(shape, {
        lora: runChild(dir),
        qlora: runChild(dir, { qlora: true }),
        torch: runTorch(dir),
        peers: shape === 'gpt2' ? { tfjs: runPeer('tfjs'), jaxjs: peers ? runPeer('jaxjs') : off } : {},
      }),
    )
  }
  return rows
}

/**
 * `npx tsx bench/suite-hf.ts [--profile] [--qlora] [smollm2|gpt2]`: one child per shape (with --profile, where a
 * training step's and generation's time goes, per kernel); `--ops`: the fused-vs-composite rows alone.
 */
if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes('--ops')) {
  for (const r of opRows(5)) console.log(`${r.name.padEnd(80)} ${r.cells[COLUMN]!.value.toFixed(1).padStart(8)} ms`)
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const shapes = (process.argv.slice(2).filter((a) => !a.startsWith('--')) as HFShape[]) ?? []
  for (const shape of shapes.length ? shapes : (Object.keys(HF_SHAPES) as HFShape[])) {
    const report = runChild(hfFolder(shape), {
      profile: process.argv.includes('--profile'),
      qlora: process.argv.includes('--qlora'),
    })
    console.log(HF_SHAPES[shape].label)
    console.log(typeof report === 'string' ? report : JSON.stringify({ ...report, profile: undefined }))
    if (typeof report !== 'string')
      for (const [name, ms] of report.profile ?? []) console.log(`  ${name.padEnd(52)} ${ms.toFixed(1).padStart(9)} ms`)
  }
}
