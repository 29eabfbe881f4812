// RMSNorm, the Llama family's normalisation: scale each row by the inverse of its root mean square, then by a
// learned weight. Fused (one kernel forward, one backward) beside the composite it replaces, the spec to read first.
import { Tensor, fromOp, addGrad } from '../src/tensor.js'
import { K } from '../src/kernels/index.js'
import { shapeStr } from '../src/shape.js'
import { fail } from '../src/errors.js'
import { add, mul, div, sqrt } from './elementwise.js'
import { mean } from './reduce.js'

/** The readable spec: y = x / √(mean(x², last axis) + eps) · w. */
export function rmsNormComposite(x: Tensor, weight: Tensor, eps = 1e-6): Tensor {
  const meanSquare = mean(mul(x, x), -1, true) // (..., 1)
  return mul(div(x, sqrt(add(meanSquare, eps))), weight) // (..., C)
}

/** y = x · rsqrt(mean(x²) + eps) · w over the last axis.   x: (..., C)   weight: (C)   y: (..., C) */
export function rmsNorm(x: Tensor, weight: Tensor, eps = 1e-6): Tensor {
  if (x.ndim < 1) fail('rmsNorm', `input must have a feature axis, got a scalar ${shapeStr(x.shape)}`)
  const cols = x.shape[x.ndim - 1],
    rows = x.size / cols
  if (weight.ndim !== 1 || weight.size !== cols)
    fail('rmsNorm', `weight ${shapeStr(weight.shape)} must be (${cols}) for input ${shapeStr(x.shape)}`)
  if (!(eps >= 0)) fail('rmsNorm', `eps must be a number ≥ 0, got ${eps}`)
  const { y, rstd } = K.rmsNormRows(x.data, weight.data, rows, cols, eps)
  return fromOp(y, x.shape, [x, weight], (dy) => {
    // derivation in the kernel: dx = rstd · (dy⊙w − x̂ · mean(dy⊙w⊙x̂)), dw = Σ_rows dy ⊙ x̂
    const { dx, dw } = K.rmsNormRowsBackward(dy, x.data, weight.data, rstd, rows, cols, weight.requiresGrad)
    if (x.requiresGrad) addGrad(x, dx)
    if (weight.requiresGrad) addGrad(weight, dw)
  })
}
