// auto: time every candidate backend on this machine and keep the fastest, never one measured slower (beyond a 5%
// tie, which goes to fewer threads); then confirm the pick on the first large products that follow. Each candidate
// is warmed first — its workers too, with the caller waiting so V8 can compile their code — since V8 starts wasm in
// its baseline compiler and a worker is slow for its first calls; then all are timed in alternating rounds, so a
// burst of load from another process falls on every candidate alike.
import type { MatmulFlags } from '../kernels/matmul.js'

/** One path tried by a probe: did it open and prove correct, how fast was it, and why not if not. */
export type Probe = { path: string; ok: boolean; gflops?: number; note: string }
export type Run = (
  a: Float32Array,
  b: Float32Array,
  batch: number,
  m: number,
  k: number,
  n: number,
  flags?: MatmulFlags,
) => Float32Array
/**
 * A backend to time, and the n of its (n, n, n) A·Bᵀ probe (a linear layer's forward). workersOnly, for one on
 * threads: the same product with every item left to the workers, to warm them.
 */
export type Candidate = { name: string; run: Run; note: string; n: number; threads: number; workersOnly?: Run }

/**
 * Probe sizes: 256³ for the TS kernels (~3–15 ms a call here), 512³ for wasm (~3–6 ms), where its threads'
 * gain (~1.65× on 2 cores) stands clear of the noise; at 256³ it was ~1.3×, and a busy second core could flip it.
 */
export const PROBE_SIZE = 256,
  SIMD_PROBE_SIZE = 512
const WARM_MS = 60 // per candidate, and at least WARM_CALLS calls
const WARM_CALLS = 8
/**
 * A worker's first calls ran at a third of its later speed (V8 compiles its code in the background, and the caller
 * kept the other core busy): workers are warmed on calls of their own until the fastest stops improving by 10%
 * for 3 calls, at least 6 calls, at most WORKERS_WARM_MS.
 */
const WORKERS_WARM_MS = 600
/**
 * Medians this close to the fastest are a tie (repeated probes on this VM spread by 2–4%): a tie goes to the
 * candidate with fewer threads, which leaves a core to other work and costs no worker's memory.
 */
const TIE = 0.05
const ROUNDS = 7
/**
 * A candidate this many times slower than the fastest one warmed before it is not timed further: its rounds could
 * only confirm the loss. gpu.js on a software WebGL (SwiftShader in headless Chromium) takes 300–460 ms per probe
 * product against 3–10 ms for the CPU paths, so timing it in full would add seconds to a page's start.
 */
const HOPELESS = 5

/** GFLOP/s of an (n, n, n) product that took `ms`. */
const gflops = (n: number, ms: number) => (2 * n ** 3) / ms / 1e6

/** Sine and cosine operands of each probe size (deterministic, no RNG draws). */
function operandsFor(candidates: Candidate[]): (c: Candidate) => [Float32Array, Float32Array] {
  const operands = new Map<number, [Float32Array, Float32Array]>()
  for (const { n } of candidates)
    if (!operands.has(n))
      operands.set(n, [
        Float32Array.from({ length: n * n }, (_, i) => Math.sin(i)),
        Float32Array.from({ length: n * n }, (_, i) => Math.cos(i)),
      ])
  return (c) => operands.get(c.n)! // set above for every candidate's n
}

/** ms of one call of `run` on the candidate's probe product. */
function timeCall(c: Candidate, run: Run, [a, b]: [Float32Array, Float32Array]): number {
  const t0 = performance.now()
  run(a, b, 1, c.n, c.n, c.n, { transB: true })
  return performance.now() - t0
}

/** Worker-only calls until their fastest stops improving (see WORKERS_WARM_MS); returns that call's GFLOP/s. */
function warmWorkers(c: Candidate, run: Run, operands: [Float32Array, Float32Array]): number {
  let best = Infinity,
    since = 0 // calls since the fastest last improved by 10%
  for (let calls = 0, t0 = performance.now(); calls < 6 || (since < 3 && performance.now() - t0 < WORKERS_WARM_MS);) {
    const ms = timeCall(c, run, operands)
    calls++
    since = ms < 0.9 * best ? 0 : since + 1
    best = Math.min(best, ms)
  }
  return gflops(c.n, best)
}

/** Warm each candidate (its workers first); GFLOP/s of its fastest warm-up call after its first (which may compile). */
function warmAll(candidates: Candidate[], operands: (c: Candidate) => [Float32Array, Float32Array]): number[] {
  const warm: number[] = []
  for (const c of candidates) {
    if (c.workersOnly) warmWorkers(c, c.workersOnly, operands(c))
    const best = Math.max(0, ...warm)
    let fastestCall = Infinity
    for (let calls = 0, t0 = performance.now(); calls < WARM_CALLS || performance.now() - t0 < WARM_MS; calls++) {
      const ms = timeCall(c, c.run, operands(c))
      if (calls >= 1) fastestCall = Math.min(fastestCall, ms)
      if (calls >= 2 && HOPELESS * gflops(c.n, fastestCall) < best) break // two calls past the first, both hopeless
    }
    warm.push(gflops(c.n, fastestCall))
  }
  return warm
}

/** Of the indices given, the fastest; among those within TIE of it, the one with the fewest threads. */
function pick(candidates: { threads: number }[], speeds: number[], among: number[]): number {
  const best = Math.max(...among.map((i) => speeds[i]))
  const tied = among.filter((i) => speeds[i] >= (1 - TIE) * best)
  return tied.reduce((x, y) =>
    candidates[y].threads < candidates[x].threads ||
    (candidates[y].threads === candidates[x].threads && speeds[y] > speeds[x])
      ? y
      : x,
  )
}

/** Time the candidates (warmed, then ROUNDS alternating rounds): the fastest's index (ties: fewest threads). */
export function fastest(candidates: Candidate[], probes: Probe[]): number {
  const operands = operandsFor(candidates)
  const warm = warmAll(candidates, operands)
  const timed = warm.map((speed) => HOPELESS * speed >= Math.max(...warm))
  const times: number[][] = candidates.map((c, i) => (timed[i] ? [] : [(2 * c.n ** 3) / warm[i] / 1e6]))
  for (let round = 0; round < ROUNDS; round++)
    candidates.forEach((c, i) => {
      if (timed[i]) times[i].push(timeCall(c, c.run, operands(c)))
    })
  const speeds = times.map((ts, i) => gflops(candidates[i].n, ts.sort((x, y) => x - y)[ts.length >> 1]))
  candidates.forEach((c, i) => {
    const note = timed[i] ? c.note : `not timed further: over ${HOPELESS}× slower than the fastest in warm-up`
    probes.push({ path: c.name, ok: true, gflops: speeds[i], note })
  })
  return pick(
    candidates,
    speeds,
    candidates.map((_, i) => i),
  )
}

/** A one-line account of the probe: each candidate's GFLOP/s and the one kept. */
export function summary(probes: Probe[], chosen: string): string {
  const timed = probes.filter((p) => p.gflops !== undefined).map((p) => `${p.path} ${p.gflops?.toFixed(1)}`)
  const skipped = probes.filter((p) => !p.ok).map((p) => `${p.path}: ${p.note}`)
  const how = `(n, n, n) A·Bᵀ (n = ${PROBE_SIZE} for the TS kernels, ${SIMD_PROBE_SIZE} for wasm), warmed`
  const notTried = skipped.length ? ` (not tried: ${skipped.join('; ')})` : ''
  const speeds = `${timed.join(', ')} GFLOP/s`
  return `measured on ${how}, median of ${ROUNDS} alternating rounds: ${speeds} → ${chosen}${notTried}`
}

/** Products of at least this many multiply-adds (batch·m·k·n) confirm the pick: a GPT-2 layer's are 150–600M. */
export const CONFIRM_MIN_FLOPS = 256 ** 3
/** Large products that confirm the pick, half on each side (shape by shape). */
export const CONFIRM_CALLS = 24

/**
 * Confirm the probe's pick on the work that follows. The first CONFIRM_CALLS products of ≥ CONFIRM_MIN_FLOPS
 * alternate, shape by shape, between `first` (the pick) and `second` (the same kernels on the other thread count, so
 * the results are bit for bit the same); smaller products run on `first`. With each shape's fastest call on each
 * side, `decide` is given the side whose calls took less in all (beyond TIE; a tie goes to fewer threads) and a note.
 * In 2 of 6 fresh processes a probe had seen no gain from a second thread whose worker was still cold, and one
 * thread then ran the whole process: a GPT-2-sized step 1.45× slower.
 */
export function confirming(
  first: Candidate,
  second: Candidate,
  decide: (winner: Candidate, note: string) => void,
): Run {
  const sides = [first, second]
  const fastestMs = new Map<string, [number, number]>() // per shape, the fastest call on each side
  const calls = [0, 0]
  let winner: Candidate | undefined
  return (a, b, batch, m, k, n, flags = {}) => {
    if (winner || batch * m * k * n < CONFIRM_MIN_FLOPS) return (winner ?? first).run(a, b, batch, m, k, n, flags)
    const shape = `${batch}×${m}×${k}×${n} ${flags.transA ? 'T' : 'N'}${flags.transB ? 'T' : 'N'}`
    const seen = fastestMs.get(shape) ?? [Infinity, Infinity]
    const both = (ms: number) => ms < Infinity
    // a side this shape has not run on yet, else the side with fewer calls
    const side = both(seen[0]) !== both(seen[1]) ? (both(seen[0]) ? 1 : 0) : calls[0] <= calls[1] ? 0 : 1
    const t0 = performance.now()
    const c = sides[side].run(a, b, batch, m, k, n, flags)
    seen[side] = Math.min(seen[side], performance.now() - t0)
    fastestMs.set(shape, seen)
    calls[side]++
    const paired = [...fastestMs.values()].filter(([x, y]) => both(x) && both(y))
    if (calls[0] + calls[1] >= CONFIRM_CALLS && paired.length > 0) {
      const totals = [0, 1].map((s) => paired.reduce((sum, pair) => sum + pair[s], 0))
      winner = sides[pick(sides, [1 / totals[0], 1 / totals[1]], [0, 1])]
      const ms = totals.map((t, s) => `${sides[s].name} ${t.toFixed(1)} ms`).join(', ')
      decide(winner, `on the first ${calls[0] + calls[1]} products of ≥ 256³ (${paired.length} shapes): ${ms}`)
    }
    return c
  }
}
