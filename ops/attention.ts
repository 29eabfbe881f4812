// Causal self-attention as one fused op, next to the composite it replaces. The composite is the spec
// a student reads first; the fused op computes the same thing in one kernel call forward and one
// backward, with no head split/merge copies, no (T, T) mask tensor and no intermediate graph nodes.
import { Tensor, fromOp, addGrad } from '../src/tensor.js'
import { K } from '../src/kernels/index.js'
import { shapeStr, sameShape } from '../src/shape.js'
import { fail, quote } from '../src/errors.js'
import { mul, maskedFill } from './elementwise.js'
import { reshape, transpose } from './movement.js'
import { matmul } from './matmul.js'
import { softmax } from './nn.js'

/**
 * The readable spec: split heads, softmax(q·kᵀ/√hs, −∞ above the diagonal)·v, merge heads. (B, T, C) → (B,
 * T, C).
 */
export function attentionComposite(q: Tensor, k: Tensor, v: Tensor, nHead: number): Tensor {
  const [B, T, C] = q.shape
  const hs = C / nHead
  const heads = (t: Tensor) => transpose(reshape(t, [B, T, nHead, hs]), 1, 2) // (B, nHead, T, hs)
  const above = new Float32Array(T * T).map((_, n) => (n % T > Math.floor(n / T) ? 1 : 0)) // 1 where key > query
  const mask = new Tensor(above, [T, T])
  const att = mul(matmul(heads(q), transpose(heads(k))), 1 / Math.sqrt(hs)) // (B, nHead, T, T)
  const y = matmul(softmax(maskedFill(att, mask, -Infinity)), heads(v)) // (B, nHead, T, hs)
  return reshape(transpose(y, 1, 2), [B, T, C]) // (B, T, C)
}

/**
 * Fused causal attention, same math as attentionComposite.   q: (B, Tq, C)   k, v: (B, rows, C)   y: (B, Tq, C)
 * Only the first kvLength rows of k and v are used, and query i sees keys j ≤ i + kvLength − Tq; so with a
 * KV cache (k, v preallocated to blockSize rows) the new queries attend to every earlier position.
 */
export function causalAttention(q: Tensor, k: Tensor, v: Tensor, nHead: number, kvLength = k.shape[1]): Tensor {
  if (
    q.ndim !== 3 ||
    k.ndim !== 3 ||
    !sameShape(k.shape, v.shape) ||
    k.shape[0] !== q.shape[0] ||
    k.shape[2] !== q.shape[2]
  ) {
    const got = `q ${shapeStr(q.shape)}, k ${shapeStr(k.shape)}, v ${shapeStr(v.shape)}`
    fail('causalAttention', `expected q (B, Tq, C) and k, v (B, Tk, C), got ${got}`)
  }
  const [B, Tq, C] = q.shape,
    kvRows = k.shape[1]
  if (!Number.isInteger(nHead) || nHead < 1 || C % nHead !== 0)
    fail('causalAttention', `${C} channels do not split into ${quote(nHead)} heads`)
  if (!Number.isInteger(kvLength) || kvLength < Tq || kvLength > kvRows)
    fail('causalAttention', `kvLength ${quote(kvLength)} must be in [Tq = ${Tq}, ${kvRows}]`)
  const hs = C / nHead,
    scale = 1 / Math.sqrt(hs)
  const sizes = [B, Tq, kvLength, kvRows, nHead, hs, scale] as const
  const { y, probs } = K.attentionCausal(q.data, k.data, v.data, ...sizes)
  return fromOp(y, q.shape, [q, k, v], (dy) => {
    // one sweep gives all three: derivation in the kernel (dv = pᵀ·dy, ds = p ⊙ (dp − Σ p·dp), dq = ds·k, dk
    // = dsᵀ·q)
    const { dq, dk, dv } = K.attentionCausalBackward(dy, q.data, k.data, v.data, probs, ...sizes)
    if (q.requiresGrad) addGrad(q, dq)
    if (k.requiresGrad) addGrad(k, dk)
    if (v.requiresGrad) addGrad(v, dv)
  })
}
