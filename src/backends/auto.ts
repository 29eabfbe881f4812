// auto: time every candidate backend on this machine and keep the fastest, never one measured slower (beyond a
// 5% tie, which goes to fewer threads). Each is warmed first (V8 starts wasm in its baseline compiler, and a worker thread is slow for its first calls), then
// all are timed in alternating rounds, so a burst of load from another process falls on every candidate alike.
import type { MatmulFlags } from '../kernels/matmul.js'

/** One path tried by a probe: did it open and prove correct, how fast was it, and why not if not. */
export type Probe = { path: string; ok: boolean; gflops?: number; note: string }
type Run = (
  a: Float32Array,
  b: Float32Array,
  batch: number,
  m: number,
  k: number,
  n: number,
  flags?: MatmulFlags,
) => Float32Array
/** A backend to time, and the n of its (n, n, n) A·Bᵀ probe (a linear layer's forward). */
export type Candidate = { name: string; run: Run; note: string; n: number; threads: number }

/**
 * Probe sizes: 256³ for the TS kernels (~3–15 ms a call here), 512³ for wasm (~3–6 ms), where its threads'
 * gain (~1.65× on 2 cores) stands clear of the noise; at 256³ it was ~1.3×, and a busy second core could flip it.
 */
export const PROBE_SIZE = 256,
  SIMD_PROBE_SIZE = 512
const WARM_MS = 60 // per candidate, and at least WARM_CALLS calls
/**
 * Medians this close to the fastest are a tie (repeated probes on this VM spread by 2–4%): a tie goes to the
 * candidate with fewer threads, which leaves a core to other work and costs no worker's memory.
 */
const TIE = 0.05
const WARM_CALLS = 8
const ROUNDS = 7
/**
 * A candidate this many times slower than the fastest one warmed before it is not timed further: its rounds could
 * only confirm the loss. gpu.js on a software WebGL (SwiftShader in headless Chromium) takes 300–460 ms per probe
 * product against 3–10 ms for the CPU paths, so timing it in full would add seconds to a page's start.
 */
const HOPELESS = 5

/** Time each candidate (warmed, then ROUNDS alternating rounds); return the index of the fastest median (ties: fewest threads). */
export function fastest(candidates: Candidate[], probes: Probe[]): number {
  const operands = new Map<number, [Float32Array, Float32Array]>()
  for (const { n } of candidates)
    if (!operands.has(n))
      operands.set(n, [
        Float32Array.from({ length: n * n }, (_, i) => Math.sin(i)),
        Float32Array.from({ length: n * n }, (_, i) => Math.cos(i)),
      ])
  const call = (c: Candidate) => {
    const [a, b] = operands.get(c.n)! // set above for every candidate's n
    return c.run(a, b, 1, c.n, c.n, c.n, { transB: true })
  }
  const gflops = (c: Candidate, ms: number) => (2 * c.n ** 3) / ms / 1e6
  const warm: number[] = [] // GFLOP/s of each candidate's fastest warm-up call after its first (which may compile)
  for (const c of candidates) {
    const best = Math.max(0, ...warm)
    let fastestCall = Infinity
    for (let calls = 0, t0 = performance.now(); calls < WARM_CALLS || performance.now() - t0 < WARM_MS; calls++) {
      const t1 = performance.now()
      call(c)
      if (calls >= 1) fastestCall = Math.min(fastestCall, performance.now() - t1)
      if (calls >= 2 && HOPELESS * gflops(c, fastestCall) < best) break // two calls past the first, both hopeless
    }
    warm.push(gflops(c, fastestCall))
  }
  const timed = warm.map((speed) => HOPELESS * speed >= Math.max(...warm))
  const times: number[][] = candidates.map((c, i) => (timed[i] ? [] : [(2 * c.n ** 3) / warm[i] / 1e6]))
  for (let round = 0; round < ROUNDS; round++) {
    candidates.forEach((c, i) => {
      if (!timed[i]) return
      const t0 = performance.now()
      call(c)
      times[i].push(performance.now() - t0)
    })
  }
  const speeds = times.map((ts, i) => gflops(candidates[i], ts.sort((x, y) => x - y)[ts.length >> 1]))
  candidates.forEach((c, i) =>
    probes.push({
      path: c.name,
      ok: true,
      gflops: speeds[i],
      note: timed[i] ? c.note : `not timed further: over ${HOPELESS}× slower than the fastest in warm-up`,
    }),
  )
  const best = Math.max(...speeds)
  const tied = candidates.map((c, i) => i).filter((i) => speeds[i] >= (1 - TIE) * best)
  return tied.reduce((x, y) =>
    candidates[y].threads < candidates[x].threads ||
    (candidates[y].threads === candidates[x].threads && speeds[y] > speeds[x])
      ? y
      : x,
  )
}

/** A one-line account of the probe: each candidate's GFLOP/s and the one kept. */
export function summary(probes: Probe[], chosen: string): string {
  const timed = probes.filter((p) => p.gflops !== undefined).map((p) => `${p.path} ${p.gflops?.toFixed(1)}`)
  const skipped = probes.filter((p) => !p.ok).map((p) => `${p.path}: ${p.note}`)
  return `measured on (n, n, n) A·Bᵀ (n = ${PROBE_SIZE} for the TS kernels, ${SIMD_PROBE_SIZE} for wasm), warmed, median of ${ROUNDS} alternating rounds: ${timed.join(', ')} GFLOP/s → ${chosen}${skipped.length ? ` (not tried: ${skipped.join('; ')})` : ''}`
}
