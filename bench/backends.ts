// GFLOP/s of every matmul path Tenny has, at square sizes 64–1024, and the size thresholds they suggest for
// src/backends/threads/parallel.ts (PARALLEL_MIN_FLOPS) and src/backends/wasm/index.ts (WASM_MIN_FLOPS, WASM_MIN_ROWS,
// WASM_ROWS_BELOW, WASM_THREADS_MIN_FLOPS). Each threshold compares two paths call by call, alternating, in this one process.
//   npx tsx bench/backends.ts [--sizes=64,128,256,512,1024] [--quick] [--gpujs] [--thresholds-only]
// gpu.js compiles a kernel per shape on its first call: that call is a warm-up, never timed.
import { availableParallelism, cpus } from 'node:os'
import '../src/node' // Node's entry: worker_threads for the pool, gpu.js's bridge modes
import { cpu } from '../src/kernels'
import { matmulAllThreads, startParallel, PARALLEL_MIN_FLOPS } from '../src/backends/threads/parallel'
import {
  wasmMatmul,
  wasmPanels,
  wasmRows,
  wasmSupport,
  WASM_MIN_FLOPS,
  WASM_MIN_ROWS,
  WASM_ROWS_BELOW,
  WASM_THREADS_MIN_FLOPS,
} from '../src/backends/wasm'
import { openGpujs, type GpujsMode } from '../src/backends/gpujs/gpu'
import type { MatmulFlags } from '../src/kernels/matmul'

type Run = (a: Float32Array, b: Float32Array, m: number, k: number, n: number, flags: MatmulFlags) => Float32Array
const arg = (name: string) =>
  process.argv.find((a) => a.startsWith(`--${name}`))?.split('=')[1] ??
  (process.argv.includes(`--${name}`) ? '' : undefined)
const quick = arg('quick') !== undefined
const sizes = (arg('sizes') ?? (quick ? '64,128,256,512' : '64,128,256,512,1024')).split(',').map(Number)
const NN: MatmulFlags = {},
  NT: MatmulFlags = { transB: true },
  TN: MatmulFlags = { transA: true }
const rand = (size: number) => Float32Array.from({ length: size }, () => Math.random() * 2 - 1)

/** Median seconds per call of each run, warmed for ≥ 50 ms each, then timed in alternating rounds (~0.3 s of work each). */
function seconds(runs: (() => void)[]): number[] {
  for (const run of runs) for (const t0 = performance.now(); performance.now() - t0 < 50;) run()
  const times = runs.map(() => [] as number[])
  for (let total = 0, round = 0; round < 50 && (round < 5 || total < 0.3 * runs.length); round++) {
    runs.forEach((run, i) => {
      const t0 = performance.now()
      run()
      const dt = (performance.now() - t0) / 1000
      times[i].push(dt)
      total += dt
    })
  }
  return times.map((ts) => ts.sort((x, y) => x - y)[ts.length >> 1])
}

const paths: [string, Run, MatmulFlags][] = []
const notes: string[] = []
for (const [flags, label] of [
  [NN, 'NN'],
  [NT, 'NT'],
  [TN, 'TN'],
] as const)
  paths.push([`cpu ${label}`, (a, b, m, k, n, f) => cpu.matmul(a, b, m, k, n, f), flags])
const par = startParallel()
const threads = par.failure ? 1 : par.threads
if (par.failure) notes.push(`parallel: ${par.failure}`)
const wasm = wasmSupport()
if (wasm) notes.push(`wasm: ${wasm}`)
for (const [flags, label] of [
  [NN, 'NN'],
  [NT, 'NT'],
  [TN, 'TN'],
] as const) {
  if (!par.failure)
    paths.push([
      `parallel ${label} (${threads} thr)`,
      (a, b, m, k, n, f) => matmulAllThreads(a, b, 1, m, k, n, f),
      flags,
    ])
  if (!wasm) paths.push([`wasm ${label} (1 thr)`, (a, b, m, k, n, f) => wasmMatmul(a, b, 1, m, k, n, f, false), flags])
  if (!wasm && !par.failure)
    paths.push([`wasm ${label} (${threads} thr)`, (a, b, m, k, n, f) => wasmMatmul(a, b, 1, m, k, n, f, true), flags])
}
if (arg('gpujs') !== undefined) {
  for (const mode of ['webgpu', 'headlessgl', 'webasm-threads', 'webasm'] as GpujsMode[]) {
    try {
      const path = openGpujs(mode)
      paths.push([`gpujs ${mode} NN`, (a, b, m, k, n, f) => path.run(a, b, 1, m, k, n, f), NN])
    } catch (err) {
      notes.push(`gpujs ${mode}: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`)
    }
  }
}

console.log(
  `# Tenny matmul backends, GFLOP/s (2·n³ / median time), ${cpus()[0]?.model ?? 'cpu'}, ${availableParallelism()} cores, Node ${process.version}\n`,
)
if (arg('thresholds-only') === undefined) {
  console.log(`| path | ${sizes.join(' | ')} |`)
  console.log(`|---|${sizes.map(() => '---').join('|')}|`)
  for (const [name, run, flags] of paths) {
    const row = sizes.map((n) => {
      const a = rand(n * n),
        b = rand(n * n)
      return (2 * n ** 3) / seconds([() => run(a, b, n, n, n, flags)])[0] / 1e9
    })
    console.log(`| ${name} | ${row.map((g) => g.toFixed(2)).join(' | ')} |`)
  }
  for (const note of notes) console.log(`\n- ${note}`)
}

/** Speed ratio of `fast` over `slow` at each (m, k, n), A·Bᵀ, alternating calls; returns the shapes where fast wins by ≥ 10%. */
function sweep(label: string, fast: Run, slow: Run, shapes: [number, number, number][]): [number, number, number][] {
  const wins: [number, number, number][] = []
  for (const [m, k, n] of shapes) {
    const a = rand(m * k),
      b = rand(k * n)
    const [tf, ts] = seconds([() => fast(a, b, m, k, n, NT), () => slow(a, b, m, k, n, NT)])
    console.log(`  ${label} at (${m}, ${k}, ${n}): ${(ts / tf).toFixed(2)}×`)
    if (ts / tf >= 1.1) wins.push([m, k, n])
  }
  return wins
}
const cube = (ns: number[]) => ns.map((n): [number, number, number] => [n, n, n])
const cpuRun: Run = (a, b, m, k, n, f) => cpu.matmul(a, b, m, k, n, f)
const wasm1: Run = (a, b, m, k, n, f) => wasmMatmul(a, b, 1, m, k, n, f, false)
const panels1: Run = (a, b, m, k, n, f) => wasmPanels(a, b, 1, m, k, n, f, false)
const panelsAll: Run = (a, b, m, k, n, f) => wasmPanels(a, b, 1, m, k, n, f, true)
const rows1: Run = (a, b, m, k, n, f) => wasmRows(a, b, 1, m, k, n, f.bias)
console.log('\n## Thresholds (A·Bᵀ; a path "wins" from 1.1× up)\n')
if (!par.failure) {
  const wins = sweep(
    'parallel / cpu',
    (a, b, m, k, n, f) => matmulAllThreads(a, b, 1, m, k, n, f),
    cpuRun,
    cube([48, 64, 80, 96, 128]),
  )
  console.log(`parallel wins from ${wins[0]?.[0] ?? 'never'}³ (PARALLEL_MIN_FLOPS in use: ${PARALLEL_MIN_FLOPS})\n`)
}
if (!wasm) {
  const cubes = sweep('wasm 1 thr / cpu', wasm1, cpuRun, cube([4, 8, 12, 16, 24, 32]))
  console.log(`wasm wins from ${cubes[0]?.[0] ?? 'never'}³ (WASM_MIN_FLOPS in use: ${WASM_MIN_FLOPS})\n`)
  const few = [1, 2, 3, 4, 6, 8].map((m): [number, number, number] => [m, 128, 384])
  const rows = sweep('wasm 4×8 kernel, 1 thr / cpu', panels1, cpuRun, few)
  console.log(
    `the 4×8 kernel wins from m = ${rows[0]?.[0] ?? 'never'} at k = 128, n = 384 (WASM_MIN_ROWS in use: ${WASM_MIN_ROWS})\n`,
  )
  sweep('wasm row kernel / cpu', rows1, cpuRun, few)
  const byRows = sweep(
    'wasm row kernel / 4×8 kernel, 1 thr',
    rows1,
    panels1,
    [16, 32, 48, 64, 96, 128].map((m): [number, number, number] => [m, 128, 384]),
  )
  console.log(
    `the row kernel wins up to m = ${byRows.at(-1)?.[0] ?? 'never'} at k = 128, n = 384 (WASM_ROWS_BELOW in use: ${WASM_ROWS_BELOW})\n`,
  )
  if (!par.failure) {
    const wins = sweep(
      `wasm 4×8 kernel, ${threads} thr / 1 thr`,
      panelsAll,
      panels1,
      cube([32, 48, 64, 80, 96, 128, 192]),
    )
    console.log(
      `threads win from ${wins[0]?.[0] ?? 'never'}³ (WASM_THREADS_MIN_FLOPS in use: ${WASM_THREADS_MIN_FLOPS})`,
    )
  }
}
