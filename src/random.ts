// One seeded random stream for the whole engine (init, dropout, sampling, shuffling),
// so manualSeed(n) makes a run reproducible and rngState() lets training resume exactly.
import seedrandom from 'seedrandom'
import { fail, quote } from './errors.js'

let rng = seedrandom('tenny', { state: true })

/** Reseed every random draw Tenny makes. */
export function manualSeed(seed: number | string): void {
  rng = seedrandom(String(seed), { state: true })
}

/** The generator's full state, for checkpoints; restore it with setRngState. ARC4's (seedrandom's State.Arc4),
 *  written out so the published types need no @types/seedrandom. */
export type RngState = { i: number; j: number; S: number[] }

export function rngState(): RngState {
  return rng.state()
}

/** Restore a state from rngState(); anything else (a null, a hand-edited file's object) is refused, not reseeded. */
export function setRngState(state: RngState): void {
  const isByte = (v: unknown) => Number.isInteger(v) && (v as number) >= 0 && (v as number) < 256
  const { i, j, S } = (state ?? {}) as Partial<RngState>
  if (!isByte(i) || !isByte(j) || !Array.isArray(S) || S.length !== 256 || !S.every(isByte))
    fail('setRngState', `expected { i, j, S } as rngState() gives (bytes, S of 256), got ${quote(state)}`)
  rng = seedrandom('', { state })
}

let skipping = false

/**
 * Build something whose random initial values are about to be overwritten (a model loaded from a file) without
 * drawing them: inside `build`, random() and randomNormal() answer 0 and the stream does not move. Drawing a
 * 100M-parameter model's init takes seconds; this is transformers' no_init_weights, for the same reason.
 */
export function withoutInit<T>(build: () => T): T {
  const was = skipping
  skipping = true
  try {
    return build()
  } finally {
    skipping = was
  }
}

/** Uniform in [0, 1). */
export function random(): number {
  return skipping ? 0 : rng()
}

/** Standard normal, by Box–Muller. */
export function randomNormal(): number {
  if (skipping) return 0
  let u = 0
  while (u === 0) u = rng() // log(0) would give -Infinity
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng())
}

/**
 * A fast stream of uint32s for bulk draws (dropout masks), seeded from the main stream so runs stay reproducible.
 * The main stream (ARC4) costs ~7 byte steps per double; this is Mulberry32, a few integer ops per draw.
 */
export function fastStream(): () => number {
  let s = rng.int32() >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = Math.imul(s ^ (s >>> 15), s | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
}

/** Integer in [low, high). */
export function randomInt(low: number, high: number): number {
  return low + Math.floor(rng() * (high - low))
}
