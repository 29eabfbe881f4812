// SwiGLU, the Llama family's MLP activation: silu(gate) ⊙ up. Fused (one kernel forward, one backward) beside the
// composite it replaces, the spec to read first: the composite keeps silu(gate) for the backward and runs three
// passes each way (bench/profile-hf.ts measured them at 7% of a SmolLM2-shaped step).
import { Tensor, fromOp, addGrad } from '../src/tensor.js'
import { K } from '../src/kernels/index.js'
import { shapeStr, sameShape } from '../src/shape.js'
import { fail } from '../src/errors.js'
import { mul, silu } from './elementwise.js'

/** The readable spec: h = silu(gate) ⊙ up. */
export function swigluComposite(gate: Tensor, up: Tensor): Tensor {
  return mul(silu(gate), up)
}

/** h = silu(gate) ⊙ up = gate · σ(gate) · up.   gate, up, h: the same shape (…, I). */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  if (!sameShape(gate.shape, up.shape))
    fail('swiglu', `gate ${shapeStr(gate.shape)} and up ${shapeStr(up.shape)} must have the same shape`)
  return fromOp(K.swiglu(gate.data, up.data), gate.shape, [gate, up], (dh) => {
    const { dg, du } = K.swigluBackward(gate.data, up.data, dh, gate.requiresGrad, up.requiresGrad)
    if (dg) addGrad(gate, dg) // dgate = dh · up · σ(g)(1 + g(1 − σ(g)))
    if (du) addGrad(up, du) // dup = dh · silu(g)
  })
}
