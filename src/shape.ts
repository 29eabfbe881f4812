// Shapes and broadcasting: the one place that knows NumPy's broadcasting rules.
// Every binary op's backward ends in sumTo(), which undoes a broadcast by summing.
import { fail, quote } from './errors.js'

export type Shape = readonly number[]

/** Number of elements in a shape; [] is a scalar with one element. */
export function sizeOf(shape: Shape): number {
  let n = 1
  for (const d of shape) n *= d
  return n
}

/** Row-major strides: how far to step in the flat array for +1 along each axis. */
export function stridesOf(shape: Shape): number[] {
  const strides = new Array<number>(shape.length)
  let s = 1
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s
    s *= shape[i]
  }
  return strides
}

const isList = (v: unknown): v is Shape => Array.isArray(v) || ArrayBuffer.isView(v)

/** A shape as text, `(2,3)`; one from a user or a file may be long or not numbers, so it is cut to ~200 characters. */
export function shapeStr(shape: Shape): string {
  if (!isList(shape) || !shape.every((d) => typeof d === 'number')) return quote(shape)
  const text = shape.slice(0, 100).join(',')
  return text.length > 200 || shape.length > 100 ? `(${text.slice(0, 200)}…, ${shape.length} dims)` : `(${text})`
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i])
}

/** Check that every entry is a non-negative integer; `op` names the caller in the error. */
export function checkShape(op: string, shape: Shape): void {
  if (!isList(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
    fail(op, `invalid shape ${shapeStr(shape)}: dims must be non-negative integers`)
}

/** Map a possibly negative axis into [0, ndim); throws naming the op when out of range. */
export function normAxis(op: string, axis: number, ndim: number): number {
  if (!Number.isInteger(axis) || axis < -ndim || axis >= ndim)
    fail(op, `axis ${quote(axis)} is out of range for a tensor with ${ndim} dims`)
  return axis < 0 ? axis + ndim : axis
}

/** View `shape` as (outer, shape[axis], inner) around one axis: how the axis kernels see any tensor. */
export function around(shape: Shape, axis: number): [number, number, number] {
  return [sizeOf(shape.slice(0, axis)), shape[axis], sizeOf(shape.slice(axis + 1))]
}

/** The broadcast shape of a and b (NumPy rules: align right; each pair equal or one of them 1). */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length)
  const out = new Array<number>(n)
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1
    const db = b[b.length - n + i] ?? 1
    if (da !== db && da !== 1 && db !== 1)
      fail(op, `shapes ${shapeStr(a)} and ${shapeStr(b)} cannot be broadcast together (dim ${i}: ${da} vs ${db})`)
    out[i] = da === 1 ? db : da
  }
  return out
}

/** Strides of `shape` seen from the larger `outShape`: 0 on broadcast axes. */
function broadcastStrides(shape: Shape, outShape: Shape): number[] {
  const own = stridesOf(shape)
  const offset = outShape.length - shape.length
  return outShape.map((d, i) => (i < offset || shape[i - offset] === 1 ? 0 : own[i - offset]))
}

/**
 * Step a row-major multi-index `idx` over `shape` by one (an odometer) and return how far a flat offset with
 * per-axis strides `step` moves: the one index-stepping loop that broadcastTo, sumTo and permute walk with.
 */
export function nextIndex(idx: number[], shape: Shape, step: readonly number[]): number {
  let move = 0
  for (let ax = shape.length - 1; ax >= 0; ax--) {
    idx[ax]++
    move += step[ax]
    if (idx[ax] < shape[ax]) return move
    move -= step[ax] * shape[ax] // this axis wrapped around: undo its steps and carry into the next
    idx[ax] = 0
  }
  return move
}

/** Copy `data` of `shape` into a fresh array of the broadcast shape `outShape`. */
export function broadcastTo(data: Float32Array, shape: Shape, outShape: Shape): Float32Array {
  const out = new Float32Array(sizeOf(outShape))
  const strides = broadcastStrides(shape, outShape)
  const idx = new Array<number>(outShape.length).fill(0)
  for (let i = 0, src = 0; i < out.length; i++) {
    out[i] = data[src]
    src += nextIndex(idx, outShape, strides)
  }
  return out
}

/** Undo a broadcast: sum `grad` of shape `outShape` back down to `shape`. */
export function sumTo(grad: Float32Array, outShape: Shape, shape: Shape): Float32Array {
  if (sameShape(outShape, shape)) return grad
  const out = new Float32Array(sizeOf(shape))
  const strides = broadcastStrides(shape, outShape)
  const idx = new Array<number>(outShape.length).fill(0)
  for (let i = 0, dst = 0; i < grad.length; i++) {
    out[dst] += grad[i]
    dst += nextIndex(idx, outShape, strides)
  }
  return out
}
