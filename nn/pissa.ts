// PiSSA (Meng et al., 2024): start LoRA at W's principal part instead of at zero. W = W_r + W_res with
// W_r = B₀·A₀ from W's top-r singular triplets; the adapter starts at B₀, A₀ and the base keeps only W_res, so
// the layer still computes W, but training moves W's principal directions first.
import { Tensor, noGrad } from '../src/tensor.js'
import { rngState, setRngState } from '../src/random.js'
import { add, mul, sub } from '../ops/elementwise.js'
import { linear, matmul } from '../ops/matmul.js'
import { concat } from '../ops/movement.js'
import { lowRank } from '../ops/linalg.js'
import { Linear } from './linear.js'
import { LoRALinear, scaleRule, type BaseLayer, type LoRAOptions } from './lora.js'

/** A LoRALinear over W_res whose adapter starts at W_r; `principal` keeps W_r = B·A for switching the adapter off. */
export class PiSSALinear extends LoRALinear {
  readonly principal: { A: Tensor; B: Tensor } // A (r, in), B (out, r): not fields of their own, so never trained or saved

  private constructor(residual: Linear, principal: { A: Tensor; B: Tensor }, options: LoRAOptions) {
    super(residual, { ...options, init: 'lora' })
    this.principal = principal
  }

  /** Split `base` (left as it was) into a new frozen Linear W_res and an adapter with scale·loraB·loraA = W_r. */
  static override fromLinear(base: BaseLayer, options: LoRAOptions = {}): PiSSALinear {
    const { rank = 8, name = 'default' } = options,
      op = `LoRALinear: init 'pissa' (adapter '${name}')`
    if (base instanceof LoRALinear) {
      const names: string[] = []
      for (let m: BaseLayer = base; m instanceof LoRALinear; m = m.base) names.unshift(`'${m.name}'`)
      throw new Error(
        `${op} takes W's top-${rank} part out of the base, so it must be a layer's first adapter; this one already has ${names.join(', ')}. Wrap the original Linear with init 'pissa' instead`,
      )
    }
    if (!(base instanceof Linear))
      throw new Error(
        `${op} needs a float Linear base to split, got a ${base.constructor.name}; apply PiSSA first and quantize after (quantize() then packs the residual, as QPiSSA does)`,
      )
    const most = Math.min(base.outFeatures, base.inFeatures)
    if (rank > most)
      throw new Error(
        `${op}: rank ${rank} exceeds min(out, in) = ${most} of the (${base.outFeatures},${base.inFeatures}) weight`,
      )
    const { B, A } = noGrad(() => lowRank(base.weight, rank)) // B (out, r), A (r, in), W_r = B·A
    const residual = Linear.fromWeights(
      noGrad(() => sub(base.weight, matmul(B, A))),
      base.bias,
      { requiresGrad: false },
    )
    const stream = rngState() // the random init is overwritten at once: leave the stream as it was
    const layer = new PiSSALinear(residual, { A, B }, options)
    setRngState(stream)
    if (!(layer.scale > 0))
      throw new Error(`${op} splits W_r into factors scaled by 1/√scale, so scale must be > 0, got ${layer.scale}`)
    const k = 1 / Math.sqrt(layer.scale) // so that scale·loraB·loraA = W_r
    layer.loraA.data.set(mul(A, k).data)
    layer.loraB.data.set(mul(B, k).data)
    return layer
  }

  /** base(x) + strength·scale·x·Aᵀ·Bᵀ + (1 − strength)·x·W_rᵀ: switched off (strength 0) the layer is W again. */
  override forward(x: Tensor): Tensor {
    const y = super.forward(x) // (..., out)
    if (this.strength === 1) return y
    const { A, B } = this.principal
    return add(y, linear(mul(linear(x, A), 1 - this.strength), B)) // (..., out): W_r·x, undropped like the base
  }

  override deltaWeight(): Tensor {
    const { A, B } = this.principal
    return noGrad(() => add(super.deltaWeight(), mul(matmul(B, A), 1 - this.strength))) // (out, in)
  }
}

/** W as the layer was wrapped (out, in): the base's weight (dequantized, adapters below merged), plus W_r for PiSSA. */
export function originalWeight(layer: LoRALinear): Tensor {
  const W = layer.baseLinear().weight
  if (!(layer instanceof PiSSALinear)) return W
  return noGrad(() => add(W, matmul(layer.principal.B, layer.principal.A)))
}

/** The alpha that keeps scale's rule (alpha/rank or alpha/√rank) true at rank `to`; a given scale keeps its alpha. */
function alphaAt(to: number, layer: LoRALinear): number {
  const rule = scaleRule(layer)
  if (rule === 'given') return layer.alpha
  return (rule === 'alpha/rank' ? to : Math.sqrt(to)) * layer.scale
}

/**
 * An adapter as plain LoRA on the original W, for files and reports: its own factors, or for PiSSA (whose factors
 * only make sense on the residual base) PEFT's conversion ΔW = scale·(B·A − B₀·A₀) = scale·[B, −B₀]·[A; A₀], rank 2r.
 */
export function plainLoRA(layer: LoRALinear): { loraA: Tensor; loraB: Tensor; alpha: number; scale: number } {
  const { loraA, loraB, alpha, scale } = layer
  if (!(layer instanceof PiSSALinear)) return { loraA, loraB, alpha, scale }
  const k = 1 / Math.sqrt(scale),
    { A, B } = layer.principal,
    rank = layer.rank
  return noGrad(() => ({
    loraA: concat([loraA, mul(A, k)], 0), // (2r, in)
    loraB: concat([loraB, mul(B, -k)], 1), // (out, 2r)
    alpha: alphaAt(2 * rank, layer),
    scale,
  }))
}
