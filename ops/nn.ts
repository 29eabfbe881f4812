// Neural-network functions. softmax, logSoftmax, crossEntropy and layerNorm are fused (one kernel
// forward, one backward) because they sit on the GPT's hot path; each names the composite it replaces.
import { Tensor, fromOp, addGrad } from '../src/tensor.js'
import { K } from '../src/kernels/index.js'
import { shapeStr, normAxis, broadcastShapes, sameShape } from '../src/shape.js'
import { fastStream } from '../src/random.js'
import { fail, quote } from '../src/errors.js'
import { sub, mul } from './elementwise.js'
import { mean } from './reduce.js'
import { transpose, toIndex } from './movement.js'

/** Apply a last-axis op along any axis by moving that axis last and back. */
function alongAxis(op: string, x: Tensor, axis: number, f: (t: Tensor) => Tensor): Tensor {
  const ax = normAxis(op, axis, x.ndim)
  if (ax === x.ndim - 1) return f(x)
  return transpose(f(transpose(x, ax, -1)), ax, -1)
}

/** exp(x) / Σ exp(x) along `axis`. Fused; composite: div(exp(sub(x, max)), sum(exp(sub(x, max)))). */
export function softmax(x: Tensor, axis = -1): Tensor {
  return alongAxis('softmax', x, axis, (t) => {
    const cols = t.shape[t.ndim - 1],
      rows = t.size / cols
    const y = K.softmaxRows(t.data, rows, cols)
    return fromOp(y, t.shape, [t], (dy) => {
      addGrad(t, K.softmaxRowsBackward(y, dy, rows, cols)) // dx = y ⊙ (dy − Σ dy·y)
    })
  })
}

/** x − logsumexp(x) along `axis`, stable. Fused; composite: sub(x, logsumexp(x, axis, true)). */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return alongAxis('logSoftmax', x, axis, (t) => {
    const cols = t.shape[t.ndim - 1],
      rows = t.size / cols
    const y = K.logSoftmaxRows(t.data, rows, cols)
    return fromOp(y, t.shape, [t], (dy) => {
      addGrad(t, K.logSoftmaxRowsBackward(y, dy, rows, cols)) // dx = dy − softmax·Σ dy
    })
  })
}

export type Reduction = 'mean' | 'sum' | 'none'

/** An unknown reduction ('avg', a typo) would otherwise fall through to 'sum': refused instead. */
function checkReduction(op: string, reduction: unknown): void {
  if (reduction !== 'mean' && reduction !== 'sum' && reduction !== 'none')
    fail(op, `reduction must be 'mean', 'sum' or 'none', got ${quote(reduction)}`)
}

/**
 * Cross-entropy of logits (..., C) against class ids (...), PyTorch semantics: 'mean' averages over rows
 * whose target is not ignoreIndex. Fused; composite: neg(gather(logSoftmax(logits), -1, targets)).
 */
export function crossEntropy(
  logits: Tensor,
  targets: Tensor | Int32Array,
  { ignoreIndex = -100, reduction = 'mean' }: { ignoreIndex?: number; reduction?: Reduction } = {},
): Tensor {
  const op = 'crossEntropy'
  if (logits.ndim < 1) fail(op, `logits must have a class axis, got ${shapeStr(logits.shape)}`)
  checkReduction(op, reduction)
  const cols = logits.shape[logits.ndim - 1],
    rows = logits.size / cols
  const rowShape = logits.shape.slice(0, -1)
  const tShape = targets instanceof Tensor ? targets.shape : [targets.length]
  // a flat Int32Array holds one id per row
  const fits = targets instanceof Tensor ? sameShape(tShape, rowShape) : targets.length === rows
  if (!fits) fail(op, `logits ${shapeStr(logits.shape)} need targets ${shapeStr(rowShape)}, got ${shapeStr(tShape)}`)
  const values = targets instanceof Tensor ? targets.data : targets
  const t = new Int32Array(rows)
  let count = 0
  for (let r = 0; r < rows; r++) {
    const v = values[r]
    if (v === ignoreIndex) {
      t[r] = ignoreIndex
      continue
    }
    if (!Number.isInteger(v) || v < 0 || v >= cols)
      fail(op, `target ${v} at row ${r} is not a class id in [0, ${cols}) for logits ${shapeStr(logits.shape)}`)
    t[r] = v
    count++
  }
  if (reduction === 'mean' && count === 0) fail(op, 'every target equals ignoreIndex, so the mean is undefined')
  const { losses, probs } = K.crossEntropyRows(logits.data, t, rows, cols, ignoreIndex)
  // a loss is checked, not returned as NaN: a NaN loss would train on silently (and a row's loss is finite iff its
  // logits are, −∞ allowed away from the target, as masks use); checking the rows' losses is cheaper than the
  // logits
  const bad = losses.findIndex((l) => !Number.isFinite(l))
  if (bad >= 0) {
    const what = `row ${bad} of logits ${shapeStr(logits.shape)} gives loss ${losses[bad]}`
    const why = 'its logits hold NaN or +Infinity (or −Infinity at the target)'
    fail(op, `${what}: ${why}. A diverging model (try a lower learning rate) or bad input`)
  }
  const backward = (dyRow: Float32Array) =>
    // dx = dy·(softmax − onehot)
    addGrad(logits, K.crossEntropyRowsBackward(probs, t, dyRow, rows, cols, ignoreIndex))
  if (reduction === 'none') return fromOp(losses, rowShape, [logits], backward)
  const total = K.sumAll(losses)
  const scale = reduction === 'mean' ? 1 / count : 1
  return fromOp(new Float32Array([total * scale]), [], [logits], (dy) => {
    backward(new Float32Array(rows).fill(dy[0] * scale)) // each row's loss enters with weight scale
  })
}

/** mean((a − b)²) or its sum / per-element form. */
export function mseLoss(a: Tensor, b: Tensor, { reduction = 'mean' }: { reduction?: Reduction } = {}): Tensor {
  broadcastShapes('mseLoss', a.shape, b.shape) // so a shape error names this op, not sub
  checkReduction('mseLoss', reduction)
  for (const [name, t] of [
    ['a', a],
    ['b', b],
  ] as const) {
    const i = t.data.findIndex((v) => !Number.isFinite(v)) // NaN in, NaN loss: refused here, with where it came from
    const loss = Number.isNaN(t.data[i]) ? 'NaN' : 'infinite'
    if (i >= 0)
      fail('mseLoss', `${name} ${shapeStr(t.shape)} holds ${t.data[i]} at index ${i}, so the loss would be ${loss}`)
  }
  const d = sub(a, b)
  const sq = mul(d, d)
  if (reduction === 'none') return sq
  return reduction === 'mean' ? mean(sq) : mul(mean(sq), sq.size)
}

/**
 * Normalise the last axis to zero mean and unit variance, then scale and shift: y = x̂·w + b.
 * Fused; composite: add(mul(div(sub(x, mean), sqrt(add(variance(x, -1, true, { unbiased: false }), eps))), w), b).
 */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps = 1e-5): Tensor {
  if (x.ndim < 1) fail('layerNorm', `input must have a feature axis, got a scalar ${shapeStr(x.shape)}`)
  const cols = x.shape[x.ndim - 1],
    rows = x.size / cols
  if (weight.ndim !== 1 || bias.ndim !== 1 || weight.size !== cols || bias.size !== cols) {
    const got = `weight ${shapeStr(weight.shape)} and bias ${shapeStr(bias.shape)}`
    fail('layerNorm', `${got} must both be (${cols}) for input ${shapeStr(x.shape)}`)
  }
  const { y, mean: mu, rstd } = K.layerNormRows(x.data, weight.data, bias.data, rows, cols, eps)
  return fromOp(y, x.shape, [x, weight, bias], (dy) => {
    const params = weight.requiresGrad || bias.requiresGrad // frozen (LoRA): the kernel skips dw and db
    // dx: the derivation is in the kernel
    const { dx, dw, db } = K.layerNormRowsBackward(dy, x.data, weight.data, mu, rstd, rows, cols, params)
    if (x.requiresGrad) addGrad(x, dx)
    if (weight.requiresGrad) addGrad(weight, dw) // dw = Σ dy ⊙ x̂
    if (bias.requiresGrad) addGrad(bias, db) // db = Σ dy
  })
}

/** Rows of weight (V, D) picked by ids (...): output (..., D). The backward adds each dy row into its id's row. */
export function embedding(ids: Tensor | Int32Array, weight: Tensor): Tensor {
  if (weight.ndim !== 2) fail('embedding', `weight must be (vocab, dim), got ${shapeStr(weight.shape)}`)
  const [vocab, dim] = weight.shape
  const idx = toIndex('embedding', ids, vocab, ` for weight ${shapeStr(weight.shape)}`)
  const shape = ids instanceof Tensor ? ids.shape : [ids.length]
  return fromOp(K.gatherRows(weight.data, idx, dim), [...shape, dim], [weight], (dy) => {
    addGrad(weight, K.scatterAddRows(dy, idx, vocab, dim)) // dW[id] += dy row
  })
}

/** Inverted dropout: zero each element with probability p, scale the rest by 1/(1−p); identity when not training. */
export function dropout(x: Tensor, p: number, training = true): Tensor {
  if (!(p >= 0 && p < 1)) fail('dropout', `p must be in [0, 1), got ${quote(p)}`)
  if (!training || p === 0) return x
  const mask = new Float32Array(x.size)
  const keep = 1 / (1 - p)
  const next = fastStream(),
    cut = p * 2 ** 32 // drop where a uniform uint32 falls below p·2³²
  for (let i = 0; i < mask.length; i++) mask[i] = next() < cut ? 0 : keep
  return fromOp(K.mul(x.data, mask), x.shape, [x], (dy) => {
    addGrad(x, K.mul(dy, mask)) // dx = dy ⊙ mask
  })
}
