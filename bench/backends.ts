// GFLOP/s of every matmul path Tenny has, at square sizes 64–1024, and the size thresholds they suggest
// for src/backends/parallel.ts (PARALLEL_MIN_FLOPS) and src/backends/gpu.ts (GPUJS_MIN_FLOPS).
//   npx tsx bench/backends.ts [--sizes=64,128,256,512,1024] [--quick] [--gpujs-cpu]
// gpu.js compiles a kernel per shape on its first call: that call is a warm-up, never timed.
import { availableParallelism, cpus } from 'node:os'
import '../src/node' // Node's entry: worker_threads for the pool, gpu.js's bridge modes
import { cpu } from '../src/kernels'
import { matmulAllThreads, startParallel, PARALLEL_MIN_FLOPS } from '../src/backends/parallel'
import { openGpujs, GPUJS_MIN_FLOPS, type GpujsMode } from '../src/backends/gpu'
import type { MatmulFlags } from '../src/kernels/matmul'

type Run = (a: Float32Array, b: Float32Array, n: number, flags: MatmulFlags) => Float32Array
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}`))?.split('=')[1] ?? (process.argv.includes(`--${name}`) ? '' : undefined)
const quick = arg('quick') !== undefined
const sizes = (arg('sizes') ?? (quick ? '64,128,256,512' : '64,128,256,512,1024')).split(',').map(Number)
const NN: MatmulFlags = {}, NT: MatmulFlags = { transB: true }, TN: MatmulFlags = { transA: true }

/** Median seconds of `run` after ≥ 50 ms of untimed calls (JIT, compile); repeats up to ~0.3 s of work (1 to 50 times). */
function seconds(run: () => void): number {
  for (const t0 = performance.now(); performance.now() - t0 < 50;) run()
  const times: number[] = []
  let total = 0
  while (times.length < 50 && (times.length === 0 || total < 0.3)) {
    const t0 = performance.now()
    run()
    const dt = (performance.now() - t0) / 1000
    times.push(dt)
    total += dt
  }
  return times.sort((x, y) => x - y)[times.length >> 1]
}

const operands = new Map<number, [Float32Array, Float32Array]>()
function gflops(run: Run, n: number, flags: MatmulFlags): number {
  if (!operands.has(n)) operands.set(n, [Float32Array.from({ length: n * n }, () => Math.random() * 2 - 1), Float32Array.from({ length: n * n }, () => Math.random() * 2 - 1)])
  const [a, b] = operands.get(n)!
  return (2 * n ** 3) / seconds(() => run(a, b, n, flags)) / 1e9
}

const paths: [string, Run, MatmulFlags][] = [
  ['cpu NN', (a, b, n, f) => cpu.matmul(a, b, n, n, n, f), NN],
  ['cpu NT', (a, b, n, f) => cpu.matmul(a, b, n, n, n, f), NT],
  ['cpu TN', (a, b, n, f) => cpu.matmul(a, b, n, n, n, f), TN],
]
const notes: string[] = []
const par = startParallel()
if (par.failure) notes.push(`parallel: ${par.failure}`)
else {
  const all: Run = (a, b, n, f) => matmulAllThreads(a, b, 1, n, n, n, f)
  paths.push([`parallel NN (${par.threads} thr)`, all, NN], [`parallel NT (${par.threads} thr)`, all, NT], [`parallel TN (${par.threads} thr)`, all, TN])
}
const modes: GpujsMode[] = ['webgpu', 'headlessgl', 'webasm-threads', 'webasm', ...(arg('gpujs-cpu') !== undefined ? ['cpu' as const] : [])]
for (const mode of modes) {
  try {
    const path = openGpujs(mode)
    paths.push([`gpujs ${mode}${mode === 'webasm' ? ' (sync, 1 thr)' : ''} NN`, (a, b, n, f) => path.run(a, b, 1, n, n, n, f), NN])
  } catch (err) {
    notes.push(`gpujs ${mode}: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`)
  }
}

console.log(`# Tenny matmul backends, GFLOP/s (2·n³ / median time), ${cpus()[0]?.model ?? 'cpu'}, ${availableParallelism()} cores, Node ${process.version}\n`)
console.log(`| path | ${sizes.join(' | ')} |`)
console.log(`|---|${sizes.map(() => '---').join('|')}|`)
const table = new Map<string, number[]>()
for (const [name, run, flags] of paths) {
  const row = sizes.map((n) => (name.startsWith('gpujs') && n > 512 && quick ? NaN : gflops(run, n, flags)))
  table.set(name, row)
  console.log(`| ${name} | ${row.map((g) => (Number.isNaN(g) ? '–' : g.toFixed(2))).join(' | ')} |`)
}
for (const note of notes) console.log(`\n- ${note}`)

// Thresholds: the smallest n from which a path beats cpu NT by ≥ 15% at every larger n measured, side by side.
function crossover(name: string, run: Run, flags: MatmulFlags, candidates: number[]): number | undefined {
  let from: number | undefined
  for (const n of candidates) {
    const ratio = gflops(run, n, flags) / gflops(paths[1][1], n, NT)
    console.log(`  ${name} / cpu NT at ${n}³: ${ratio.toFixed(2)}×`)
    if (ratio >= 1.15) from ??= n
    else from = undefined
  }
  return from
}
console.log('\n## Thresholds\n')
const sweep = [32, 48, 64, 80, 96, 128, 192, 256]
const parallelRow = paths.find(([name]) => name.startsWith('parallel NT'))
if (parallelRow) {
  const n = crossover('parallel NT', parallelRow[1], NT, sweep)
  console.log(n ? `suggested PARALLEL_MIN_FLOPS ≈ ${n}³ = ${n ** 3} (in use: ${PARALLEL_MIN_FLOPS})` : 'parallel never beat cpu NT by 15% here: keep it off')
}
for (const [name, run, flags] of paths.filter(([name]) => name.startsWith('gpujs'))) {
  const best = Math.max(...(table.get(name) ?? []).filter((g) => !Number.isNaN(g)))
  const cpuBest = Math.max(...(table.get('cpu NT') ?? []))
  if (best < cpuBest) console.log(`${name}: at most ${best.toFixed(2)} GFLOP/s against cpu NT's ${cpuBest.toFixed(2)}: never faster here, auto leaves it off`)
  else {
    const n = crossover(name, run, flags, [64, 128, 256, 512])
    console.log(n ? `${name}: suggested GPUJS_MIN_FLOPS ≈ ${n}³ = ${n ** 3} (in use: ${GPUJS_MIN_FLOPS})` : `${name}: no clear crossover`)
  }
}
