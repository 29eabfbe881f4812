// The quantized layer's op: y = x · Ŵᵀ + b against frozen packed weights. Ŵ is a constant of the graph,
// so the backward gives dx (and db) only; the codes never get a gradient and are never decoded whole.
import { Tensor, fromOp, addGrad } from '../src/tensor.js'
import { K } from '../src/kernels/index.js'
import type { QuantizedWeights } from '../src/kernels/quant.js'
import { shapeStr } from '../src/shape.js'

/** y = x · Ŵᵀ + b.   x: (..., in)   Ŵ = dequantize(q): (out, in)   b: (out)   y: (..., out) */
export function quantizedLinear(x: Tensor, q: QuantizedWeights, b?: Tensor): Tensor {
  const nOut = q.rows, nIn = q.cols
  if (x.ndim === 0 || x.shape[x.ndim - 1] !== nIn) throw new Error(`quantizedLinear: input ${shapeStr(x.shape)} does not end in ${nIn}, the weight's in-features (${nOut},${nIn})`)
  if (b && (b.ndim !== 1 || b.shape[0] !== nOut)) throw new Error(`quantizedLinear: bias ${shapeStr(b.shape)} must be (${nOut})`)
  const rows = x.size / nIn
  const y = K.qmatmul(x.data, q, rows)
  if (b) K.addRowInPlace(y, b.data, rows, nOut)
  return fromOp(y, [...x.shape.slice(0, -1), nOut], b ? [x, b] : [x], (dy) => {
    if (x.requiresGrad) addGrad(x, K.qmatmulT(dy, q, rows))        // dx = dy · Ŵ
    if (b?.requiresGrad) addGrad(b, K.sumAxis(dy, 1, rows, nOut))  // db = Σ_rows dy
  })
}
