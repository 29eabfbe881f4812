// auto: time every candidate backend on this machine and keep the fastest, never one measured slower. Each is
// warmed first (V8 starts wasm in its baseline compiler, and a worker thread is slow for its first calls), then
// all are timed in alternating rounds, so a burst of load from another process falls on every candidate alike.
import type { MatmulFlags } from '../kernels/matmul.js'

/** One path tried by a probe: did it open and prove correct, how fast was it, and why not if not. */
export type Probe = { path: string; ok: boolean; gflops?: number; note: string }
type Run = (a: Float32Array, b: Float32Array, batch: number, m: number, k: number, n: number, flags?: MatmulFlags) => Float32Array
export type Candidate = { name: string; run: Run; note: string }

/** The probe's product, (256, 256, 256) A·Bᵀ (a linear layer's forward): 0.5–15 ms here, by backend. */
const PROBE_SIZE = 256
const WARM_MS = 60 // per candidate, and at least WARM_CALLS calls
const WARM_CALLS = 8
const ROUNDS = 7
/**
 * A candidate this many times slower than the fastest one warmed before it is not timed further: its rounds could
 * only confirm the loss. gpu.js on a software WebGL (SwiftShader in headless Chromium) takes 300–460 ms per probe
 * product against 3–10 ms for the CPU paths, so timing it in full would add seconds to a page's start.
 */
const HOPELESS = 5

/** Time each candidate (warmed, then ROUNDS alternating rounds); return the index of the fastest median. */
export function fastest(candidates: Candidate[], probes: Probe[]): number {
  const n = PROBE_SIZE
  const a = Float32Array.from({ length: n * n }, (_, i) => Math.sin(i)), b = Float32Array.from({ length: n * n }, (_, i) => Math.cos(i))
  const call = (c: Candidate) => c.run(a, b, 1, n, n, n, { transB: true })
  const warm: number[] = [] // ms of each candidate's fastest warm-up call after its first (which may compile)
  for (const c of candidates) {
    const best = Math.min(Infinity, ...warm)
    let fastestCall = Infinity
    for (let calls = 0, t0 = performance.now(); calls < WARM_CALLS || performance.now() - t0 < WARM_MS; calls++) {
      const t1 = performance.now()
      call(c)
      if (calls >= 1) fastestCall = Math.min(fastestCall, performance.now() - t1)
      if (calls >= 2 && fastestCall > HOPELESS * best) break // two calls past the first, both hopeless
    }
    warm.push(fastestCall)
  }
  const timed = warm.map((ms) => ms <= HOPELESS * Math.min(...warm))
  const times: number[][] = candidates.map((_, i) => (timed[i] ? [] : [warm[i]]))
  for (let round = 0; round < ROUNDS; round++) {
    candidates.forEach((c, i) => {
      if (!timed[i]) return
      const t0 = performance.now()
      call(c)
      times[i].push(performance.now() - t0)
    })
  }
  const speeds = times.map((ts) => (2 * n ** 3) / ts.sort((x, y) => x - y)[ts.length >> 1] / 1e6)
  candidates.forEach((c, i) => probes.push({ path: c.name, ok: true, gflops: speeds[i], note: timed[i] ? c.note : `not timed further: over ${HOPELESS}× slower than the fastest in warm-up` }))
  return speeds.indexOf(Math.max(...speeds))
}

/** A one-line account of the probe: each candidate's GFLOP/s and the one kept. */
export function summary(probes: Probe[], chosen: string): string {
  const timed = probes.filter((p) => p.gflops !== undefined).map((p) => `${p.path} ${p.gflops?.toFixed(1)}`)
  const skipped = probes.filter((p) => !p.ok).map((p) => `${p.path}: ${p.note}`)
  return `measured at ${PROBE_SIZE}³ A·Bᵀ, warmed, median of ${ROUNDS} alternating rounds: ${timed.join(', ')} GFLOP/s → ${chosen}${skipped.length ? ` (not tried: ${skipped.join('; ')})` : ''}`
}
