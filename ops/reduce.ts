// Reductions over one axis, several, or all. sum and max/min are primitives with a backward;
// mean, variance and logsumexp are composites, so autograd derives their gradients.
import { Tensor, fromOp, addGrad } from '../src/tensor.js'
import { K } from '../src/kernels/index.js'
import { normAxis, broadcastTo, around, shapeStr } from '../src/shape.js'
import { fail, quote } from '../src/errors.js'
import { add, sub, mul, log, exp } from './elementwise.js'
import { reshape, permute } from './movement.js'

/** One axis, several, or (undefined) all of them. */
type Axes = number | number[] | undefined

/** Sorted, de-duplicated, non-negative axes; undefined means all of them. */
function normAxes(op: string, axis: Axes, ndim: number): number[] {
  if (axis === undefined) return Array.from({ length: ndim }, (_, i) => i)
  const list = (Array.isArray(axis) ? axis : [axis]).map((a) => normAxis(op, a, ndim))
  if (new Set(list).size !== list.length) fail(op, `axis ${quote(axis)} names an axis twice`)
  return list.sort((a, b) => a - b)
}

/** The output shape with reduced axes kept as 1 (keepDims) or dropped. */
function reducedShape(shape: readonly number[], axes: number[], keepDims: boolean): number[] {
  const out: number[] = []
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d)
    else if (keepDims) out.push(1)
  })
  return out
}

/** Σ over `axis` (a number, a list, or all when omitted). A full reduction has shape []. */
export function sum(x: Tensor, axis?: number | number[], keepDims = false): Tensor {
  const axes = normAxes('sum', axis, x.ndim)
  let data = x.data
  let shape = [...x.shape]
  for (const ax of axes) {
    // each pass folds one axis to size 1
    const [outer, n, inner] = around(shape, ax)
    data = K.sumAxis(data, outer, n, inner)
    shape[ax] = 1
  }
  const kept = shape
  return fromOp(data === x.data ? data.slice() : data, reducedShape(x.shape, axes, keepDims), [x], (dy) => {
    addGrad(x, broadcastTo(dy, kept, x.shape)) // dx = dy, copied to every summed position
  })
}

/** Σ / count over `axis`. */
export function mean(x: Tensor, axis?: number | number[], keepDims = false): Tensor {
  const axes = normAxes('mean', axis, x.ndim)
  const count = axes.reduce((n, ax) => n * x.shape[ax], 1)
  return mul(sum(x, axes, keepDims), 1 / count)
}

/** Max (sign 1) or min (sign −1) over a single axis; the gradient goes to the first extreme element. */
function extreme(op: string, x: Tensor, axis: number, keepDims: boolean, sign: 1 | -1): Tensor {
  const [outer, n, inner] = around(x.shape, axis)
  if (n === 0) fail(op, `cannot reduce over axis ${axis} of size 0 in shape ${shapeStr(x.shape)}`)
  const { values, indices } = K.extremeAxis(x.data, outer, n, inner, sign)
  return fromOp(values, reducedShape(x.shape, [axis], keepDims), [x], (dy) => {
    addGrad(x, K.extremeAxisBackward(dy, indices, outer, n, inner)) // dx = dy at the argmax, 0 elsewhere
  })
}

/** Several axes reduce as one: move them to the end, merge them, reduce the merged axis. */
function extremeOver(op: string, x: Tensor, axis: Axes, keepDims: boolean, sign: 1 | -1): Tensor {
  const axes = normAxes(op, axis, x.ndim)
  if (x.ndim === 0) return mul(x, 1)
  if (axes.length === 1) return extreme(op, x, axes[0], keepDims, sign)
  const rest = x.shape.map((_, i) => i).filter((i) => !axes.includes(i))
  const moved = permute(x, [...rest, ...axes])
  const merged = reshape(moved, [...rest.map((i) => x.shape[i]), -1])
  return reshape(extreme(op, merged, rest.length, false, sign), reducedShape(x.shape, axes, keepDims))
}

export function max(x: Tensor, axis?: number | number[], keepDims = false): Tensor {
  return extremeOver('max', x, axis, keepDims, 1)
}

export function min(x: Tensor, axis?: number | number[], keepDims = false): Tensor {
  return extremeOver('min', x, axis, keepDims, -1)
}

/** Σ (x − mean)² / (count − 1) by default (PyTorch's unbiased estimate); `unbiased: false` divides by count. */
export function variance(x: Tensor, axis?: number | number[], keepDims = false, { unbiased = true } = {}): Tensor {
  const axes = normAxes('variance', axis, x.ndim)
  const count = axes.reduce((n, ax) => n * x.shape[ax], 1)
  const d = sub(x, mean(x, axes, true))
  return mul(sum(mul(d, d), axes, keepDims), 1 / (unbiased ? count - 1 : count))
}

/** log Σ exp(x), stable: m + log Σ exp(x − m) with m = max(x) held constant (its gradient cancels). */
export function logsumexp(x: Tensor, axis?: number | number[], keepDims = false): Tensor {
  const axes = normAxes('logsumexp', axis, x.ndim)
  const m = max(x, axes, true).detach()
  // ±∞ − ±∞ would be NaN: a shift of 0 there (an all −∞ slice still gives −∞)
  for (let i = 0; i < m.size; i++) if (!Number.isFinite(m.data[i])) m.data[i] = 0
  const shifted = log(sum(exp(sub(x, m)), axes, true))
  const out = add(shifted, m)
  return keepDims ? out : reshape(out, reducedShape(x.shape, axes, false))
}

/** Index of the first maximum along `axis` (no gradient). */
export function argmax(x: Tensor, axis = -1, keepDims = false): Tensor {
  const ax = normAxis('argmax', axis, x.ndim)
  const [outer, n, inner] = around(x.shape, ax)
  const { indices } = K.extremeAxis(x.data, outer, n, inner, 1)
  return new Tensor(Float32Array.from(indices), reducedShape(x.shape, [ax], keepDims))
}
