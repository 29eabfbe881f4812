// Hugging Face models at real size (random weights): each model measured in a child process of its own
// (bench/hf-child.ts: load, generation with the KV cache, forward and training step at batch 1 × 256, peak RSS),
// and the Llama family's fused ops against their composites at SmolLM2-135M's shape, alternated in one process.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { manualSeed } from '../src/random'
import { rmsNorm, rmsNormComposite } from '../ops/rmsnorm'
import { rotary, rotaryComposite } from '../ops/rotary'
import { ropeFrequencies, ropeTables } from '../nn/llama'
import { HF_SHAPES, writeRandomFolder, type HFShape } from './hf-shapes'
import type { HFReport } from './hf-child'
import { medianOf, type Cell, type Row } from './timing'
import { randn, ones, type Tensor } from '../src/tensor'

const COLUMN = 'Tenny auto'
const here = (f: string) => fileURLToPath(new URL(f, import.meta.url))

/** The random folder for `shape` under bench/out/hf (written once, then reused). */
export function hfFolder(shape: HFShape): string {
  const dir = here(`./out/hf/${shape}`)
  if (!existsSync(`${dir}/model.safetensors`)) writeRandomFolder(dir, shape)
  return dir
}

function runChild(dir: string, profile: boolean): HFReport | string {
  const args = ['--import', 'tsx', here('./hf-child.ts'), dir, ...(profile ? ['--profile'] : [])]
  const res = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 900_000, maxBuffer: 16 << 20 })
  const line = res.stdout.trim().split('\n').pop() ?? ''
  if (res.status !== 0 || !line.startsWith('{'))
    return `child failed (${res.status ?? res.signal}): ${res.stderr.trim().split('\n').pop() ?? ''}`.slice(0, 200)
  return JSON.parse(line) as HFReport
}

const cell = (value: number, method: string): Cell => ({ value, method, samples: 1 })

function modelRows(shape: HFShape, report: HFReport | string): Row[] {
  const { label, dtype } = HF_SHAPES[shape]
  const section = `Hugging Face models at real size, random weights: ${label}`
  const fail = typeof report === 'string' ? report : null
  const r = typeof report === 'string' ? null : report
  const row = (name: string, unit: Row['unit'], value: ((r: HFReport) => number) | null, method: string): Row => ({
    section,
    name,
    unit,
    cells: { [COLUMN]: r && value ? cell(value(r), method) : null },
    notes: fail ? [fail] : [],
  })
  const rows = [
    row(`load ${dtype} file (loadPretrained)`, 'ms', (x) => x.loadMs, 'one load, own process'),
    row('forward, batch 1 × 256 (no grad)', 'ms', (x) => x.forwardMs, 'median of 3 (after 1 warm-up)'),
    row(`training step 1 × 256: ${r?.trained ?? ''}`, 'ms', (x) => x.stepMs, 'median of 3 (after 1 warm-up)'),
    row('generation with the KV cache (after a 16-token prompt)', 'tok/s', (x) => x.decodeTokS, '31 tokens'),
    row('peak RSS of the whole process (load, generate, train)', 'MB', (x) => x.peakMB, 'VmHWM'),
  ]
  // CPU time (all threads) beside wall time: on a loaded machine the better guide to a quiet one
  if (r) rows[0].notes.push(`${r.loadCpuMs.toFixed(0)} ms of CPU time; ${r.backend}`)
  if (r) rows[2].notes.push(`${r.stepCpuMs.toFixed(0)} ms of CPU time over all threads`)
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

export function hfRows({ quick }: { quick: boolean }): Row[] {
  const rows = opRows(quick ? 1 : 5)
  for (const shape of Object.keys(HF_SHAPES) as HFShape[]) {
    if (quick) {
      rows.push(...modelRows(shape, 'not run under --quick (real sizes take minutes)'))
      continue
    }
    rows.push(...modelRows(shape, runChild(hfFolder(shape), false)))
  }
  return rows
}

/**
 * `npx tsx bench/suite-hf.ts [--profile] [smollm2|gpt2]`: one child per shape (with --profile, where a training step's
 * and generation's time goes, per kernel); `--ops`: the fused-vs-composite rows alone.
 */
if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes('--ops')) {
  for (const r of opRows(5)) console.log(`${r.name.padEnd(80)} ${r.cells[COLUMN]!.value.toFixed(1).padStart(8)} ms`)
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const shapes = (process.argv.slice(2).filter((a) => !a.startsWith('--')) as HFShape[]) ?? []
  for (const shape of shapes.length ? shapes : (Object.keys(HF_SHAPES) as HFShape[])) {
    const report = runChild(hfFolder(shape), process.argv.includes('--profile'))
    console.log(HF_SHAPES[shape].label)
    console.log(typeof report === 'string' ? report : JSON.stringify({ ...report, profile: undefined }))
    if (typeof report !== 'string')
      for (const [name, ms] of report.profile ?? []) console.log(`  ${name.padEnd(52)} ${ms.toFixed(1).padStart(9)} ms`)
  }
}
