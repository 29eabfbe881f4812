// Rotary position embeddings (RoPE): each head's query and key vectors are turned by angles proportional to their
// position, so q·k depends on how far apart two positions are. Hugging Face's `rotate_half` layout pairs element i
// of a head with element i + D/2. Fused beside the composite it replaces, the spec to read first.
import { Tensor, fromOp, addGrad } from '../src/tensor.js'
import { K } from '../src/kernels/index.js'
import { shapeStr } from '../src/shape.js'
import { fail } from '../src/errors.js'
import { add, mul, neg } from './elementwise.js'
import { reshape, slice, concat } from './movement.js'

/** cos and sin of every (position, frequency) angle: (T, D/2) tables for positions start … start + T − 1. */
export type RotaryTables = { cos: Float32Array; sin: Float32Array; positions: number }

/** The readable spec: x·cos + rotate_half(x)·sin per head, rotate_half(x) = (−x₂, x₁).   x: (B, T, nHead·D) */
export function rotaryComposite(x: Tensor, { cos, sin, positions }: RotaryTables, nHead: number): Tensor {
  const [B, T, C] = x.shape
  const D = C / nHead
  const full = (half: Float32Array) => {
    // (T, D/2) → (T, 1, D): both halves of a head turn by the same angles
    const t = new Tensor(half, [positions, 1, D / 2])
    return concat([t, t], 2)
  }
  const heads = reshape(x, [B, T, nHead, D]) // (B, T, nHead, D)
  const x1 = slice(heads, 3, 0, D / 2),
    x2 = slice(heads, 3, D / 2) // (B, T, nHead, D/2) each
  const rotated = concat([neg(x2), x1], 3) // (B, T, nHead, D)
  const y = add(mul(heads, full(cos)), mul(rotated, full(sin))) // (B, T, nHead, D)
  return reshape(y, [B, T, C]) // (B, T, nHead·D)
}

/** Rotate each head of x (B, T, nHead·D) by its position's angles; tables (T, D/2). Same math as rotaryComposite. */
export function rotary(x: Tensor, tables: RotaryTables, nHead: number): Tensor {
  const { cos, sin, positions } = tables
  if (x.ndim !== 3) fail('rotary', `x must be (B, T, nHead·headDim), got ${shapeStr(x.shape)}`)
  const [B, T, C] = x.shape
  if (!Number.isInteger(nHead) || nHead < 1 || C % nHead !== 0 || (C / nHead) % 2 !== 0)
    fail('rotary', `${C} channels do not split into ${nHead} heads of an even width`)
  const half = C / nHead / 2
  if (positions !== T || cos.length !== T * half || sin.length !== T * half)
    fail(
      'rotary',
      `tables for ${positions} positions × ${cos.length / Math.max(positions, 1)} do not fit ${T} × ${half}`,
    )
  const y = K.rotaryRows(x.data, cos, sin, B, T, nHead, 2 * half)
  return fromOp(y, x.shape, [x], (dy) => {
    addGrad(x, K.rotaryRows(dy, cos, sin, B, T, nHead, 2 * half, -1)) // dx = Rᵀ·dy: the rotation by −angle
  })
}
