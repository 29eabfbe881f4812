// PiSSA (Meng et al., 2024): start LoRA at W's principal part instead of at zero. W = W_r + W_res with
// W_r = B₀·A₀ from W's top-r singular triplets; the adapter starts at B₀, A₀ and the base keeps only W_res, so
// the layer still computes W, but training moves W's principal directions first.
import { Tensor, noGrad } from '../src/tensor.js'
import { rngState, setRngState } from '../src/random.js'
import { fail, quote } from '../src/errors.js'
import { shapeStr } from '../src/shape.js'
import { add, mul } from '../ops/elementwise.js'
import { matmul } from '../ops/matmul.js'
import { concat } from '../ops/movement.js'
import { lowRank } from '../ops/linalg.js'
import { typeName } from './module.js'
import { Linear, Conv1D } from './linear.js'
import { LoRALinear, asLinear, withDelta, loraScale, type BaseLayer, type LoRAOptions } from './lora.js'

/** A LoRALinear over W_res whose adapter starts at W_r; `principal` keeps W_r = B·A for switching the adapter off. */
export class PiSSALinear extends LoRALinear {
  readonly principal: { A: Tensor; B: Tensor } // A (r, in), B (out, r): not fields, so never trained or saved

  private constructor(residual: BaseLayer, principal: { A: Tensor; B: Tensor }, options: LoRAOptions) {
    super(residual, { ...options, init: 'lora' })
    this.principal = principal
  }

  /** Split `base` (left as it was) into a new frozen W_res of its layout and an adapter with scale·B·A = W_r. */
  static override fromLinear(base: BaseLayer, options: LoRAOptions = {}): PiSSALinear {
    const { rank = 8, name = 'default' } = options ?? {},
      op = `PiSSALinear (adapter '${name}')`
    if (!(base instanceof Linear || base instanceof Conv1D)) {
      const after = 'apply PiSSA first and quantize after (quantize() then packs the residual, as QPiSSA does)'
      fail(op, `needs a float Linear or Conv1D base to split, got a ${typeName(base)}; ${after}`)
    }
    const W = asLinear(base).weight // (out, in)
    const most = Math.min(...W.shape)
    if (!Number.isInteger(rank) || rank > most)
      fail(op, `rank ${quote(rank)} exceeds min(out, in) = ${most} of the ${shapeStr(W.shape)} weight`)
    const { B, A } = noGrad(() => lowRank(W, rank)) // B (out, r), A (r, in), W_r = B·A
    const Wr = noGrad(() => matmul(B, A)) // (out, in)
    const residual = withDelta(base, Wr, -1) // W_res = W − W_r, in the base's layout
    const stream = rngState() // the random init is overwritten at once: leave the stream as it was
    const layer = new PiSSALinear(residual, { A, B }, options)
    setRngState(stream)
    if (!(layer.scale > 0))
      fail(op, `splits W_r into factors scaled by 1/√scale, so scale must be > 0, got ${quote(layer.scale)}`)
    const k = 1 / Math.sqrt(layer.scale) // so that scale·loraB·loraA = W_r
    layer.loraA.data.set(mul(A, k).data)
    layer.loraB.data.set(mul(B, k).data)
    return layer
  }
}

/** W as the layer was wrapped (out, in): the base's weight (dequantized or transposed), plus W_r for PiSSA. */
export function originalWeight(layer: LoRALinear): Tensor {
  const W = asLinear(layer.base).weight
  if (!(layer instanceof PiSSALinear)) return W
  return noGrad(() => add(W, matmul(layer.principal.B, layer.principal.A)))
}

/**
 * An adapter as plain LoRA on the original W, for files and reports: its own factors, or for PiSSA (whose factors
 * only make sense on the residual base) PEFT's conversion ΔW = scale·(B·A − B₀·A₀) = scale·[B, −B₀]·[A;
 * A₀], rank
 * 2r, with the alpha that keeps its scale's rule true at rank 2r.
 */
export function plainLoRA(layer: LoRALinear): Pick<LoRALinear, 'loraA' | 'loraB' | 'alpha' | 'scale' | 'rule'> {
  const { loraA, loraB, alpha, scale, rule } = layer
  if (!(layer instanceof PiSSALinear)) return { loraA, loraB, alpha, scale, rule }
  const k = 1 / Math.sqrt(scale),
    { A, B } = layer.principal
  return noGrad(() => ({
    loraA: concat([loraA, mul(A, k)], 0), // (2r, in)
    loraB: concat([loraB, mul(B, -k)], 1), // (out, 2r)
    alpha: rule === 'given' ? alpha : loraScale(2 * layer.rank, rule, { scale }).alpha,
    scale,
    rule,
  }))
}
