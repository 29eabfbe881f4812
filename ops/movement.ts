// Movement ops: reshape shares data (tensors are always contiguous); everything else copies.
// Their backwards move the gradient back the way the data came.
import { Tensor, fromOp, addGrad } from '../src/tensor.js'
import { K } from '../src/kernels/index.js'
import {
  sizeOf,
  shapeStr,
  normAxis,
  checkShape,
  broadcastShapes,
  broadcastTo,
  sumTo,
  sameShape,
  around,
} from '../src/shape.js'
import { fail, quote } from '../src/errors.js'

/** The shapes of a list of tensors, for a message: the first 8, then how many more. */
const shapesStr = (xs: Tensor[]) =>
  xs
    .slice(0, 8)
    .map((u) => shapeStr(u.shape))
    .join(', ') + (xs.length > 8 ? `, … (${xs.length} tensors)` : '')

/** Same data, new shape; one dim may be −1 (inferred). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const out = [...shape]
  const unknown = out.indexOf(-1)
  if (unknown !== -1) {
    if (out.indexOf(-1, unknown + 1) !== -1) fail('reshape', `only one dim may be -1, got ${shapeStr(shape)}`)
    const known = sizeOf(out.filter((_, i) => i !== unknown))
    if (known === 0 || x.size % known !== 0)
      fail('reshape', `cannot infer -1 in ${shapeStr(shape)} for ${x.size} elements ${shapeStr(x.shape)}`)
    out[unknown] = x.size / known
  }
  checkShape('reshape', out)
  if (sizeOf(out) !== x.size) {
    const [from, to] = [`${shapeStr(x.shape)} (${x.size} elements)`, `${shapeStr(shape)} (${sizeOf(out)} elements)`]
    fail('reshape', `cannot reshape ${from} to ${to}`)
  }
  return fromOp(x.data, out, [x], (dy) => {
    addGrad(x, dy) // dx = dy, same elements in the same order
  })
}

/** Reorder axes: output axis i is input axis dims[i]. */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  if (dims.length !== x.ndim)
    fail('permute', `got ${dims.length} dims ${quote(dims)} for a tensor with ${x.ndim} dims ${shapeStr(x.shape)}`)
  const perm = dims.map((d) => normAxis('permute', d, x.ndim))
  if (new Set(perm).size !== perm.length) fail('permute', `${quote(dims)} is not a permutation of 0..${x.ndim - 1}`)
  const inverse = perm.map((_, i) => perm.indexOf(i)) // output axis of each input axis
  const outShape = perm.map((p) => x.shape[p])
  return fromOp(K.permute(x.data, x.shape, perm), outShape, [x], (dy) => {
    addGrad(x, K.permute(dy, outShape, inverse)) // dx = dy with the axes put back
  })
}

/** Swap two axes (default: the last two). */
export function transpose(x: Tensor, dim0 = -2, dim1 = -1): Tensor {
  const a = normAxis('transpose', dim0, x.ndim),
    b = normAxis('transpose', dim1, x.ndim)
  const order = x.shape.map((_, i) => (i === a || i === b ? a + b - i : i)) // a and b swap places
  return permute(x, order)
}

/** Elements [start, end) along `axis`; negative indices count from the end, as in Python. */
export function slice(x: Tensor, axis: number, start = 0, end?: number): Tensor {
  const ax = normAxis('slice', axis, x.ndim)
  const n = x.shape[ax]
  const clip = (i: number) => Math.min(Math.max(i < 0 ? i + n : i, 0), n)
  const s = clip(start),
    e = Math.max(s, clip(end ?? n))
  if (!Number.isInteger(start) || (end !== undefined && !Number.isInteger(end)))
    fail('slice', `start ${quote(start)} and end ${quote(end)} must be integers`)
  const [outer, , inner] = around(x.shape, ax)
  const shape = [...x.shape]
  shape[ax] = e - s
  return fromOp(K.sliceAxis(x.data, outer, n, inner, s, e), shape, [x], (dy) => {
    const dx = new Float32Array(x.size)
    K.placeAxisInPlace(dx, dy, outer, n, inner, s, e - s) // dx = dy inside the slice, 0 outside
    addGrad(x, dx)
  })
}

/** Join tensors along an existing axis; all other dims must match. */
export function concat(xs: Tensor[], axis = 0): Tensor {
  if (xs.length === 0) fail('concat', 'needs at least one tensor')
  const ax = normAxis('concat', axis, xs[0].ndim)
  for (const t of xs) {
    if (t.ndim !== xs[0].ndim || t.shape.some((d, i) => i !== ax && d !== xs[0].shape[i]))
      fail('concat', `shapes ${shapesStr(xs)} differ outside axis ${axis}`)
  }
  const shape = [...xs[0].shape]
  shape[ax] = xs.reduce((n, t) => n + t.shape[ax], 0)
  const [outer, n, inner] = around(shape, ax)
  const out = new Float32Array(sizeOf(shape))
  const starts: number[] = []
  let at = 0
  for (const t of xs) {
    starts.push(at)
    K.placeAxisInPlace(out, t.data, outer, n, inner, at, t.shape[ax])
    at += t.shape[ax]
  }
  return fromOp(out, shape, xs, (dy) => {
    for (const [i, t] of xs.entries()) {
      const end = starts[i] + t.shape[ax]
      if (t.requiresGrad) addGrad(t, K.sliceAxis(dy, outer, n, inner, starts[i], end)) // dxᵢ = dy's own slice
    }
  })
}

/** Insert a size-1 axis at `axis`. */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  const ax = normAxis('unsqueeze', axis, x.ndim + 1)
  return reshape(x, [...x.shape.slice(0, ax), 1, ...x.shape.slice(ax)])
}

/** Drop size-1 axes (all of them, or the one given). */
export function squeeze(x: Tensor, axis?: number): Tensor {
  const ax = axis === undefined ? -1 : normAxis('squeeze', axis, x.ndim)
  if (ax >= 0 && x.shape[ax] !== 1)
    fail('squeeze', `axis ${axis} of ${shapeStr(x.shape)} has size ${x.shape[ax]}, expected 1`)
  const kept = x.shape.filter((d, i) => (ax < 0 ? d !== 1 : i !== ax)) // every size-1 axis, or the one given, goes
  return reshape(x, kept)
}

/** Join same-shape tensors along a new axis. */
export function stack(xs: Tensor[], axis = 0): Tensor {
  if (xs.length === 0) fail('stack', 'needs at least one tensor')
  for (const t of xs) if (!sameShape(t.shape, xs[0].shape)) fail('stack', `shapes ${shapesStr(xs)} must all be equal`)
  const ax = normAxis('stack', axis, xs[0].ndim + 1)
  const items = xs.map((t) => unsqueeze(t, ax))
  return concat(items, ax)
}

/** Cut along `axis` into pieces: `sizes` a list of lengths, or one chunk length (the last may be shorter). */
export function split(x: Tensor, sizes: number | number[], axis = 0): Tensor[] {
  const ax = normAxis('split', axis, x.ndim)
  const n = x.shape[ax]
  let list: number[]
  if (typeof sizes === 'number') {
    if (!Number.isInteger(sizes) || sizes <= 0) fail('split', `chunk size must be a positive integer, got ${sizes}`)
    list = Array.from({ length: Math.ceil(n / sizes) }, (_, i) => Math.min(sizes, n - i * sizes))
  } else {
    list = sizes
    if (!Array.isArray(list) || list.some((s) => !Number.isInteger(s) || s < 0))
      fail('split', `sizes ${quote(sizes)} must be non-negative integers`)
    const total = list.reduce((a, b) => a + b, 0)
    if (total !== n)
      fail('split', `sizes ${quote(sizes)} add up to ${total}, but axis ${axis} of ${shapeStr(x.shape)} has ${n}`)
  }
  let at = 0
  return list.map((len) => {
    const piece = slice(x, ax, at, at + len)
    at += len
    return piece
  })
}

/** Broadcast to a larger shape (−1 keeps a dim); the backward sums the copies back. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const offset = shape.length - x.ndim
  const target = shape.map((d, i) => (d === -1 ? x.shape[i - offset] : d))
  const out = broadcastShapes('expand', x.shape, target)
  if (!sameShape(out, target)) fail('expand', `cannot expand ${shapeStr(x.shape)} to ${shapeStr(shape)}`)
  return fromOp(broadcastTo(x.data, x.shape, out), out, [x], (dy) => {
    addGrad(x, sumTo(dy, out, x.shape)) // dx = Σ over the copies
  })
}

/** Validated integer ids from a tensor or array: each an integer in [0, upper). `context` ends the error message. */
export function toIndex(
  op: string,
  index: Tensor | Int32Array | ArrayLike<number>,
  upper: number,
  context = '',
): Int32Array {
  const values = index instanceof Tensor ? index.data : index
  const out = new Int32Array(values.length)
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (!Number.isInteger(v) || v < 0 || v >= upper)
      fail(op, `index ${quote(v)} at position ${i} is out of range [0, ${upper})${context}`)
    out[i] = v
  }
  return out
}

/** torch.gather: out[..., j, ...] = x[..., index[..., j, ...], ...] along `axis`; index is x's shape but on `axis`. */
export function gather(x: Tensor, axis: number, index: Tensor): Tensor {
  const ax = normAxis('gather', axis, x.ndim)
  if (index.ndim !== x.ndim || index.shape.some((d, i) => i !== ax && d !== x.shape[i]))
    fail('gather', `index ${shapeStr(index.shape)} must match x ${shapeStr(x.shape)} on every axis but ${axis}`)
  const [outer, n, inner] = around(x.shape, ax)
  const m = index.shape[ax]
  const idx = toIndex('gather', index, n, ` for axis ${axis} of x ${shapeStr(x.shape)}`)
  return fromOp(K.gatherAxis(x.data, idx, outer, n, m, inner), index.shape, [x], (dy) => {
    addGrad(x, K.scatterAddAxis(dy, idx, outer, n, m, inner)) // dx[index] += dy
  })
}
