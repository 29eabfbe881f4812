// Timers and the row format every bench section reports in. Fast calls go through the `benchmark`
// package (calibrated cycles, mean ± relative margin of error); calls of 50 ms and more, such as a
// training step, through a plain median-of-N timer, since benchmark.js would only repeat them slower.
import Benchmark from 'benchmark'

/** One measured value: ms per call (or tokens/s, or MB), how it was measured, and its spread. */
export type Cell = { value: number; method: string; rme?: number; samples: number }

/** A table row: one workload, one cell per engine column ('Tenny cpu', 'tfjs wasm', ...). */
export type Row = {
  /** which bench/index.ts section measured it: matmul, mlp, gpt or memory */
  suite?: string
  section: string
  name: string
  unit: 'ms' | 'tok/s' | 'MB'
  cells: Record<string, Cell | null>
  notes: string[]
  /** floating-point operations per call, for a GFLOP/s figure in the JSON */
  flops?: number
}

/** Lower is better except for throughput. */
export function lowerIsBetter(row: Row): boolean {
  return row.unit !== 'tok/s'
}

export type TimerOptions = { quick: boolean }

/** Median of `runs` timed calls after `warmup` untimed ones: for calls too slow for benchmark.js to help. */
export function medianOf(fn: () => void, { warmup = 1, runs = 5 } = {}): Cell {
  for (let i = 0; i < warmup; i++) fn()
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    fn()
    times.push(performance.now() - t0)
  }
  times.sort((a, b) => a - b)
  const mid = times.length >> 1
  const median = times.length % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2
  return { value: median, method: `median of ${runs} (after ${warmup} warm-up)`, samples: runs }
}

/**
 * ms per call of fn. One probe call decides the method: benchmark.js (mean of calibrated samples, with its
 * relative margin of error) under 50 ms, else median-of-N.
 */
export function timeCall(fn: () => void, { quick }: TimerOptions): Cell {
  const t0 = performance.now()
  fn()
  const probe = performance.now() - t0
  if (probe >= 50) {
    const cell = medianOf(fn, { warmup: 0, runs: runsFor(probe, quick) })
    return { ...cell, method: `median of ${cell.samples} (after 1 warm-up)` }
  }
  const bench = new Benchmark(fn, { minSamples: quick ? 2 : 5, maxTime: quick ? 0.1 : 2, initCount: 1 })
  bench.run()
  if (bench.error) throw bench.error
  return {
    value: bench.stats.mean * 1000,
    method: 'benchmark.js mean',
    rme: bench.stats.rme,
    samples: bench.stats.sample.length,
  }
}

/** Seeded uniform floats in [-1, 1), independent of any engine's RNG (xorshift32). */
export function uniformData(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    out[i] = (s / 4294967296) * 2 - 1
  }
  return out
}

/** Seeded integers in [0, high). */
export function intData(n: number, high: number, seed: number): Int32Array {
  const u = uniformData(n, seed)
  return Int32Array.from(u, (v) => Math.min(high - 1, Math.floor(((v + 1) / 2) * high)))
}

/** Slow calls get fewer runs: a full run stays within minutes, --quick within seconds. */
function runsFor(probeMs: number, quick: boolean): number {
  if (quick) return probeMs > 500 ? 1 : 3
  return probeMs > 1000 ? 3 : 5
}
