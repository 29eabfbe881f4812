// Data-movement kernels: permute, slice/place along an axis, gather/scatter, embedding rows.
import { nextIndex, stridesOf } from '../shape.js'

/** out = a with its axes reordered: out axis i is a's axis perm[i]. */
export function permute(a: Float32Array, shape: readonly number[], perm: readonly number[]): Float32Array {
  const out = new Float32Array(a.length)
  const inStrides = stridesOf(shape)
  const outShape = perm.map((p) => shape[p])
  const step = perm.map((p) => inStrides[p]) // input stride for +1 along each output axis
  const idx = new Array<number>(shape.length).fill(0)
  for (let i = 0, src = 0; i < out.length; i++) {
    out[i] = a[src]
    src += nextIndex(idx, outShape, step)
  }
  return out
}

/** Elements [start, end) of the middle axis of a, seen as (outer, n, inner). */
export function sliceAxis(
  a: Float32Array,
  outer: number,
  n: number,
  inner: number,
  start: number,
  end: number,
): Float32Array {
  const len = end - start
  const out = new Float32Array(outer * len * inner)
  for (let o = 0; o < outer; o++) out.set(a.subarray((o * n + start) * inner, (o * n + end) * inner), o * len * inner)
  return out
}

/** Write part (outer, len, inner) into out (outer, n, inner) at offset `start` of the middle axis. */
export function placeAxisInPlace(
  out: Float32Array,
  part: Float32Array,
  outer: number,
  n: number,
  inner: number,
  start: number,
  len: number,
): void {
  for (let o = 0; o < outer; o++)
    out.set(part.subarray(o * len * inner, (o + 1) * len * inner), (o * n + start) * inner)
}

/** torch.gather: out[o, j, i] = a[o, index[o, j, i], i], a (outer, n, inner), index (outer, m, inner). */
export function gatherAxis(
  a: Float32Array,
  index: Int32Array,
  outer: number,
  n: number,
  m: number,
  inner: number,
): Float32Array {
  const out = new Float32Array(outer * m * inner)
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < m; j++)
      for (let i = 0; i < inner; i++) {
        const at = (o * m + j) * inner + i
        out[at] = a[(o * n + index[at]) * inner + i]
      }
  return out
}

/** The adjoint of gatherAxis: dx[o, index[o, j, i], i] += dy[o, j, i]. */
export function scatterAddAxis(
  dy: Float32Array,
  index: Int32Array,
  outer: number,
  n: number,
  m: number,
  inner: number,
): Float32Array {
  const dx = new Float32Array(outer * n * inner)
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < m; j++)
      for (let i = 0; i < inner; i++) {
        const at = (o * m + j) * inner + i
        dx[(o * n + index[at]) * inner + i] += dy[at]
      }
  return dx
}

/** Rows of a (vocab, dim) table: out[r] = w[ids[r]]. */
export function gatherRows(w: Float32Array, ids: Int32Array, dim: number): Float32Array {
  const out = new Float32Array(ids.length * dim)
  for (let r = 0; r < ids.length; r++) out.set(w.subarray(ids[r] * dim, (ids[r] + 1) * dim), r * dim)
  return out
}

/** dw[ids[r]] += dy[r]: repeated ids accumulate. */
export function scatterAddRows(dy: Float32Array, ids: Int32Array, vocab: number, dim: number): Float32Array {
  const dw = new Float32Array(vocab * dim)
  for (let r = 0; r < ids.length; r++) {
    const src = r * dim,
      dst = ids[r] * dim
    for (let j = 0; j < dim; j++) dw[dst + j] += dy[src + j]
  }
  return dw
}
