// LoRA (Hu et al., 2021): a frozen layer plus a trainable low-rank update, y = base(x) + scale·(x·Aᵀ)·Bᵀ.
// B starts at zero, so a fresh adapter changes nothing, and forward never forms ΔW = scale·B·A: x goes through
// the rank-r bottleneck in two thin matmuls. A base may itself be a LoRALinear: named adapters stack that way.
import { Tensor, noGrad, rand, randn, zeros } from '../src/tensor.js'
import { add, mul, sub } from '../ops/elementwise.js'
import { linear, matmul } from '../ops/matmul.js'
import { dropout } from '../ops/nn.js'
import { quantizeWeights } from '../ops/quant.js'
import { Module, typeName } from './module.js'
import { Linear } from './linear.js'
import { QuantizedLinear, requantizeReport, type FuseReport } from './quantized.js'

export type LoRAInit = 'lora' | 'gaussian' | 'pissa'
export type LoRAOptions = {
  rank?: number
  alpha?: number
  scale?: number
  useRslora?: boolean
  dropout?: number
  init?: LoRAInit
  name?: string
}
export type BaseLayer = Linear | QuantizedLinear | LoRALinear

/** LoRA's one multiplier rule: `scale` when given (MLX's way), else alpha/rank, or alpha/√rank with useRslora (rsLoRA). */
export function loraScale({
  rank,
  alpha = 16,
  useRslora = false,
  scale,
}: {
  rank: number
  alpha?: number
  useRslora?: boolean
  scale?: number
}): number {
  return scale ?? alpha / (useRslora ? Math.sqrt(rank) : rank)
}

/** Which rule gave `scale` from alpha and rank: printTrainable shows it, and exports keep it true. */
export function scaleRule({
  rank,
  alpha,
  scale,
}: {
  rank: number
  alpha: number
  scale: number
}): 'alpha/rank' | 'alpha/√rank' | 'given' {
  const near = (v: number) => Math.abs(scale - v) <= 1e-9 * Math.abs(scale)
  if (near(alpha / rank)) return 'alpha/rank'
  return near(alpha / Math.sqrt(rank)) ? 'alpha/√rank' : 'given'
}

/** y = base(x) + strength·scale·(dropout(x)·Aᵀ)·Bᵀ.   x: (..., in)   A: (rank, in)   B: (out, rank)   y: (..., out) */
export class LoRALinear extends Module {
  base: BaseLayer // frozen
  loraA: Tensor // (rank, in)
  loraB: Tensor // (out, rank)
  readonly inFeatures: number
  readonly outFeatures: number
  readonly name: string
  readonly scale: number
  readonly alpha: number
  dropout: number
  strength = 1 // how much of the update forward adds: 1 trains it, lora-model.ts mixes named adapters with it

  /** Wrap (and freeze) `base`. Defaults: rank 8, alpha 16, init 'lora' (A ~ U(±1/√in), B = 0); 'gaussian': A ~ N(0, 1/rank²). */
  constructor(
    base: BaseLayer,
    { rank = 8, alpha, scale, useRslora = false, dropout = 0, init = 'lora', name = 'default' }: LoRAOptions = {},
  ) {
    super()
    if (!(base instanceof Linear || base instanceof QuantizedLinear || base instanceof LoRALinear))
      throw new Error(`LoRALinear: base must be a Linear, QuantizedLinear or LoRALinear, got ${typeName(base)}`)
    if (!Number.isInteger(rank) || rank < 1) throw new Error(`LoRALinear: rank must be a positive integer, got ${rank}`)
    if (!(dropout >= 0 && dropout < 1)) throw new Error(`LoRALinear: dropout must be in [0, 1), got ${dropout}`)
    if (init === 'pissa')
      throw new Error(
        `LoRALinear: init 'pissa' splits W, so it makes a PiSSALinear: PiSSALinear.fromLinear(base, …) or applyLoRA(model, { init: 'pissa' })`,
      )
    if (init !== 'lora' && init !== 'gaussian')
      throw new Error(`LoRALinear: unknown init '${String(init)}' (expected 'lora', 'gaussian' or 'pissa')`)
    this.scale = loraScale({ rank, alpha, useRslora, scale })
    if (!Number.isFinite(this.scale)) throw new Error(`LoRALinear: scale must be finite, got ${this.scale}`)
    this.alpha = alpha ?? (scale === undefined ? 16 : scale * (useRslora ? Math.sqrt(rank) : rank))
    this.inFeatures = base.inFeatures
    this.outFeatures = base.outFeatures
    this.base = base.freeze()
    this.name = name
    this.dropout = dropout
    const bound = 1 / Math.sqrt(this.inFeatures)
    this.loraA =
      init === 'gaussian'
        ? randn([rank, this.inFeatures], { std: 1 / rank, requiresGrad: true })
        : rand([rank, this.inFeatures], { low: -bound, high: bound, requiresGrad: true })
    this.loraB = zeros([this.outFeatures, rank], { requiresGrad: true })
  }

  static fromLinear(base: BaseLayer, options: LoRAOptions = {}): LoRALinear {
    return new LoRALinear(base, options)
  }

  get rank(): number {
    return this.loraA.shape[0]
  }

  forward(x: Tensor): Tensor {
    const y = this.base.forward(x) // (..., out)
    if (this.strength === 0) return y
    const h = linear(dropout(x, this.dropout, this.training), this.loraA) // (..., rank)
    return add(y, linear(mul(h, this.strength * this.scale), this.loraB)) // (..., out); scaling the thin side is cheapest
  }

  /** ΔW = strength·scale·B·A (out, in): what forward adds to base(x), as one matrix. */
  deltaWeight(): Tensor {
    return noGrad(() => mul(matmul(this.loraB, this.loraA), this.strength * this.scale))
  }

  /** The base as one frozen float Linear: itself, dequantized, or with the adapters under this one merged. */
  baseLinear(): Linear {
    if (this.base instanceof Linear) return this.base
    return this.base instanceof QuantizedLinear ? this.base.dequantize() : this.base.merge()
  }

  /** A frozen Linear with W + ΔW, mlx-lm's fuse(dequantize=True). */
  merge(): Linear {
    const b = this.baseLinear()
    return Linear.fromWeights(
      noGrad(() => add(b.weight, this.deltaWeight())),
      b.bias,
      { requiresGrad: false },
    )
  }

  /** The base back from a layer that merge() produced: W = W' − ΔW. */
  unmerge(merged: Linear): Linear {
    if (merged.inFeatures !== this.inFeatures || merged.outFeatures !== this.outFeatures) {
      throw new Error(
        `LoRALinear.unmerge: Linear (${merged.outFeatures},${merged.inFeatures}) does not match this layer's (${this.outFeatures},${this.inFeatures})`,
      )
    }
    return Linear.fromWeights(
      noGrad(() => sub(merged.weight, this.deltaWeight())),
      merged.bias,
      { requiresGrad: false },
    )
  }

  /** merge(); a quantized base (unless `dequantize`) is requantized with its settings, Q(W + ΔW), and reported on. */
  fuse({ dequantize = false } = {}): { layer: Linear | QuantizedLinear; report: FuseReport | null } {
    const base = this.base,
      merged = this.merge()
    if (!(base instanceof QuantizedLinear) || dequantize) return { layer: merged, report: null }
    const packed = quantizeWeights(merged.weight, { mode: base.mode, bits: base.bits, groupSize: base.groupSize })
    return {
      layer: new QuantizedLinear(packed, merged.bias),
      report: requantizeReport(base.packed, packed, this.deltaWeight().data),
    }
  }
}
