// Quantization as modules see it: pack a weight into codes, decode it back, and the quantized layer's op,
// y = x · Ŵᵀ + b against frozen packed weights. Ŵ is a constant of the graph, so the backward gives dx (and db)
// only; the codes never get a gradient and are never decoded whole. nn/ reaches the kernels only through here.
import { Tensor, fromOp, addGrad } from '../src/tensor.js'
import { K } from '../src/kernels/index.js'
import { unpackCodes, type QuantizedWeights, type QuantMode, type QuantizeOptions } from '../src/kernels/quant.js'
import { shapeStr } from '../src/shape.js'
import { fail } from '../src/errors.js'

export type { QuantizedWeights, QuantMode, QuantizeOptions }

/** Pack W (out, in) into codes (affine 2/4/8-bit, int8 or nf4). Defaults: affine, 4 bits, groups of 64 (MLX's). */
export function quantizeWeights(w: Tensor, options: QuantizeOptions = {}): QuantizedWeights {
  if (w.ndim !== 2) fail('quantizeWeights', `weight must be 2-D (out, in), got ${shapeStr(w.shape)}`)
  return K.quantize(w.data, w.shape[0], w.shape[1], options)
}

/** Ŵ (out, in) as floats, decoded from its codes; a constant (no gradient). */
export function dequantizeWeights(q: QuantizedWeights): Tensor {
  return new Tensor(K.dequantize(q), [q.rows, q.cols])
}

/** The integer code of every weight, row-major (affine and nf4 unpacked; int8 as is). */
export function quantCodes(q: QuantizedWeights): Int32Array {
  return unpackCodes(q)
}

/** y = x · Ŵᵀ + b.   x: (..., in)   Ŵ = dequantize(q): (out, in)   b: (out)   y: (..., out) */
export function quantizedLinear(x: Tensor, q: QuantizedWeights, b?: Tensor): Tensor {
  const nOut = q.rows,
    nIn = q.cols
  if (x.ndim === 0 || x.shape[x.ndim - 1] !== nIn)
    fail(
      'quantizedLinear',
      `input ${shapeStr(x.shape)} does not end in ${nIn}, the weight's in-features (${nOut},${nIn})`,
    )
  if (b && (b.ndim !== 1 || b.shape[0] !== nOut)) fail('quantizedLinear', `bias ${shapeStr(b.shape)} must be (${nOut})`)
  const rows = x.size / nIn
  const y = K.qmatmul(x.data, q, rows)
  if (b) K.addRowInPlace(y, b.data, rows, nOut)
  return fromOp(y, [...x.shape.slice(0, -1), nOut], b ? [x, b] : [x], (dy) => {
    if (x.requiresGrad) addGrad(x, K.qmatmulT(dy, q, rows)) // dx = dy · Ŵ
    if (b?.requiresGrad) addGrad(b, K.sumAxis(dy, 1, rows, nOut)) // db = Σ_rows dy
  })
}
