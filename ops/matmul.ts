// Matrix products and the layer op built on them. Transpose flags on the kernel make every
// backward product a single call: dA = dy·Bᵀ and dB = Aᵀ·dy need no transpose op in the graph.
import { Tensor, fromOp, addGrad } from '../src/tensor.js'
import { K } from '../src/kernels/index.js'
import { sizeOf, shapeStr, broadcastShapes, broadcastTo, sumTo, sameShape } from '../src/shape.js'
import { fail } from '../src/errors.js'
import { reshape } from './movement.js'

/**
 * a @ b. 2-D: (m, k) @ (k, n) → (m, n). Batched: leading dims broadcast, e.g.
 * (B, H, T, D) @ (B, H, D, T) → (B, H, T, T), or (B, T, C) @ (C, N) → (B, T, N). 1-D operands act as a row /
 * column.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const what = `${shapeStr(a.shape)} @ ${shapeStr(b.shape)}`
  if (a.ndim === 0 || b.ndim === 0) fail('matmul', `${what}: scalars cannot be multiplied as matrices`)
  const kA = a.shape[a.ndim - 1],
    kB = b.shape[Math.max(b.ndim - 2, 0)] // checked before 1-D operands are reshaped
  if (kA !== kB) fail('matmul', `${what}: inner dimensions ${kA} and ${kB} differ`)
  // a 1-D b first, so that (k) @ (k) ends as a scalar
  if (b.ndim === 1) return reshape(matmul(a, reshape(b, [b.shape[0], 1])), a.shape.slice(0, -1))
  if (a.ndim === 1)
    return reshape(matmul(reshape(a, [1, a.shape[0]]), b), [...b.shape.slice(0, -2), b.shape[b.ndim - 1]])
  const [m, k] = a.shape.slice(-2),
    n = b.shape[b.ndim - 1]
  const aBatch = a.shape.slice(0, -2),
    bBatch = b.shape.slice(0, -2)

  if (bBatch.length === 0) {
    // (..., m, k) @ (k, n): fold the batch into the rows, one kernel call
    const rows = sizeOf(a.shape.slice(0, -1)) // not a.size / k: an inner size of 0 gives zeros, as in PyTorch
    return fromOp(K.matmul(a.data, b.data, rows, k, n), [...aBatch, m, n], [a, b], (dy) => {
      if (a.requiresGrad) addGrad(a, K.matmul(dy, b.data, rows, n, k, { transB: true })) // dA = dy · Bᵀ
      if (b.requiresGrad) addGrad(b, K.matmul(a.data, dy, k, rows, n, { transA: true })) // dB = Aᵀ · dy
    })
  }
  const batch = broadcastShapes(`matmul: ${what}: batch dims`, aBatch, bBatch)
  const aFull = [...batch, m, k],
    bFull = [...batch, k, n]
  const ad = sameShape(a.shape, aFull) ? a.data : broadcastTo(a.data, a.shape, aFull)
  const bd = sameShape(b.shape, bFull) ? b.data : broadcastTo(b.data, b.shape, bFull)
  const count = sizeOf(batch)
  return fromOp(K.matmulBatched(ad, bd, count, m, k, n), [...batch, m, n], [a, b], (dy) => {
    const dA = () => K.matmulBatched(dy, bd, count, m, n, k, { transB: true }) // dA = dy · Bᵀ
    const dB = () => K.matmulBatched(ad, dy, count, k, m, n, { transA: true }) // dB = Aᵀ · dy
    if (a.requiresGrad) addGrad(a, sumTo(dA(), aFull, a.shape)) // summed over the batch dims a was broadcast along
    if (b.requiresGrad) addGrad(b, sumTo(dB(), bFull, b.shape))
  })
}

/**
 * y = x · wᵀ + b.   x: (..., in)   w: (out, in)   b: (out)   y: (..., out)
 * Fused: the composite add(matmul(x, transpose(w)), b) copies w and broadcasts b on every call.
 */
export function linear(x: Tensor, w: Tensor, b?: Tensor): Tensor {
  if (w.ndim !== 2) fail('linear', `weight must be 2-D (out, in), got ${shapeStr(w.shape)}`)
  const [nOut, nIn] = w.shape
  if (x.ndim === 0 || x.shape[x.ndim - 1] !== nIn)
    fail('linear', `input ${shapeStr(x.shape)} does not end in ${nIn}, the weight's in-features ${shapeStr(w.shape)}`)
  if (b && (b.ndim !== 1 || b.shape[0] !== nOut)) fail('linear', `bias ${shapeStr(b.shape)} must be (${nOut})`)
  const rows = sizeOf(x.shape.slice(0, -1)) // not x.size / nIn, which is NaN when nIn = 0
  const y = K.matmul(x.data, w.data, rows, nIn, nOut, { transB: true, bias: b?.data })
  return fromOp(y, [...x.shape.slice(0, -1), nOut], b ? [x, w, b] : [x, w], (dy) => {
    if (x.requiresGrad) addGrad(x, K.matmul(dy, w.data, rows, nOut, nIn)) // dx = dy · w
    if (w.requiresGrad) addGrad(w, K.matmul(dy, x.data, nOut, rows, nIn, { transA: true })) // dw = dyᵀ · x
    if (b?.requiresGrad) addGrad(b, K.sumAxis(dy, 1, rows, nOut)) // db = Σ_rows dy
  })
}
