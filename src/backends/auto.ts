// auto: time every candidate backend on this machine, each warmed first (a worker thread is slow for its
// first calls), and keep the fastest; leaving the CPU table takes a clear gain, since the VM is noisy.
import type { MatmulFlags } from '../kernels/matmul.js'
import type { GpujsPath } from './gpu.js'

/** One path tried by a probe: did it open and prove correct, how fast was it, and why not if not. */
export type Probe = { path: string; ok: boolean; gflops?: number; note: string }
type Table = { matmulBatched(a: Float32Array, b: Float32Array, batch: number, m: number, k: number, n: number, flags?: MatmulFlags): Float32Array }
export type Candidates = { cpu: Table; parallel: Table | string; gpu?: GpujsPath }
export type Choice = { backend: 'cpu' | 'parallel' | 'gpujs'; fallback: 'cpu' | 'parallel'; reason: string }

const PROBE_SIZE = 256 // one (256, 256, 256) A·Bᵀ product per timed call: ~5–40 ms each here
const MIN_GAIN = 1.15

/** GFLOP/s of A·Bᵀ at PROBE_SIZE³: warmed for ≥ 8 calls and 100 ms, then the median of 5. */
function gflops(run: (a: Float32Array, b: Float32Array) => Float32Array, n = PROBE_SIZE): number {
  const a = Float32Array.from({ length: n * n }, (_, i) => Math.sin(i)), b = Float32Array.from({ length: n * n }, (_, i) => Math.cos(i))
  for (let calls = 0, t0 = performance.now(); calls < 8 || performance.now() - t0 < 100; calls++) run(a, b)
  const times = [0, 1, 2, 3, 4].map(() => {
    const t0 = performance.now()
    run(a, b)
    return performance.now() - t0
  }).sort((x, y) => x - y)
  return (2 * n ** 3) / times[2] / 1e6
}

/** Measure the CPU table, the parallel path and the gpu.js path given; pick the fastest by a clear margin. */
export function chooseAuto(c: Candidates, probes: Probe[]): Choice {
  const n = PROBE_SIZE
  const speed = (t: Table) => gflops((a, b) => t.matmulBatched(a, b, 1, n, n, n, { transB: true }))
  const cpuSpeed = speed(c.cpu)
  probes.push({ path: 'cpu', ok: true, gflops: cpuSpeed, note: 'TS kernels, 1 thread' })
  const parallelSpeed = typeof c.parallel === 'string' ? 0 : speed(c.parallel)
  probes.push(typeof c.parallel === 'string' ? { path: 'parallel', ok: false, note: c.parallel } : { path: 'parallel', ok: true, gflops: parallelSpeed, note: 'all threads' })
  const gpu = c.gpu
  const gpuSpeed = gpu ? gflops((a, b) => gpu.run(a, b, 1, n, n, n, { transB: true })) : 0
  if (gpu) probes.push({ path: `gpujs ${gpu.mode}`, ok: true, gflops: gpuSpeed, note: 'self-check passed' })
  const summary = `probed at ${n}³: ${probes.filter((p) => p.gflops !== undefined).map((p) => `${p.path} ${p.gflops?.toFixed(1)}`).join(', ')} GFLOP/s`
  const fallback = parallelSpeed >= MIN_GAIN * cpuSpeed ? 'parallel' : 'cpu'
  const fallbackSpeed = Math.max(cpuSpeed, fallback === 'parallel' ? parallelSpeed : 0)
  // TODO: on a GPU machine, time gpu.js against the CPU side at 64³–1024³ and set its threshold from the crossover (untested: no GPU here)
  if (gpu && gpuSpeed >= MIN_GAIN * fallbackSpeed) return { backend: 'gpujs', fallback, reason: `${summary} → gpujs ${gpu.mode}` }
  return { backend: fallback, fallback, reason: `${summary} → ${fallback}` }
}
