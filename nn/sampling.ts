// Choosing the next token from logits: greedy at temperature 0, otherwise one draw from the seeded stream
// per row, from softmax(logits / temperature) cut down to the top-k and/or the top-p nucleus.
import { random } from '../src/random.js'
import { fail, quote } from '../src/errors.js'

export type SampleOptions = { temperature?: number; topK?: number; topP?: number }

/** One token id per row of logits (rows, V). Each sampled row consumes exactly one random() draw. */
export function sampleNext(logits: Float32Array, rows: number, V: number, options: SampleOptions = {}): Int32Array {
  const { temperature = 1, topK, topP } = options ?? {}
  // typeof: null ≥ 0 holds in JavaScript, and a null temperature would divide the logits by 0
  if (typeof temperature !== 'number' || !(temperature >= 0))
    fail('sample', `temperature must be a number ≥ 0, got ${quote(temperature)}`)
  if (topK !== undefined && !(Number.isInteger(topK) && topK >= 1))
    fail('sample', `topK must be a positive integer, got ${quote(topK)}`)
  if (topP !== undefined && !(topP > 0 && topP <= 1)) fail('sample', `topP must be in (0, 1], got ${quote(topP)}`)
  const out = new Int32Array(rows)
  for (let r = 0; r < rows; r++) {
    const row = logits.subarray(r * V, (r + 1) * V)
    const bad = row.findIndex((x) => x !== x || x === Infinity) // argmax would pick 0 for NaNs; −∞ masks a token
    if (bad >= 0)
      fail(
        'sample',
        `row ${r} of the logits holds ${row[bad]} at token ${bad} (the model's output overflowed or is NaN)`,
      )
    out[r] = temperature === 0 ? argmax(row) : draw(row, temperature, topK ?? V, topP ?? 1)
  }
  return out
}

/** The first index of the largest logit: ties go to the lower token id, as torch.argmax does. */
function argmax(row: Float32Array): number {
  let best = 0
  for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j
  return best
}

/** One token id drawn from softmax(row / temperature) over the top-k, then the top-p nucleus of those. */
function draw(row: Float32Array, temperature: number, topK: number, topP: number): number {
  const order = Array.from(row.keys()).sort((a, b) => row[b] - row[a] || a - b) // most likely first
  const kept = order.slice(0, Math.min(topK, order.length))
  const top = row[kept[0]]
  const weights = kept.map((j) => Math.exp((row[j] - top) / temperature)) // softmax numerators, stable
  const total = weights.reduce((s, w) => s + w, 0)
  let n = weights.length
  if (topP < 1) {
    // the nucleus: the fewest most-likely tokens whose probability reaches topP
    let mass = 0
    for (n = 0; n < weights.length && mass < topP * total; n++) mass += weights[n]
  }
  const mass = weights.slice(0, n).reduce((s, w) => s + w, 0)
  let u = random() * mass
  for (let i = 0; i < n; i++) {
    u -= weights[i]
    if (u < 0) return kept[i]
  }
  return kept[n - 1] // u landed on the rounding edge
}
