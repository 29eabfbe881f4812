// LoRA (Hu et al., 2021): a frozen layer plus a trainable low-rank update, y = base(x) + scale·(x·Aᵀ)·Bᵀ, in the
// shape of mlx-lm's LoRALinear. B starts at zero, so a fresh adapter changes nothing, and forward never forms
// ΔW = scale·B·A: x goes through the rank-r bottleneck in two thin matmuls. Named adapters, their mixing and
// applying LoRA to a model live in lora-model.ts.
import { Tensor, noGrad, rand, randn, zeros } from '../src/tensor.js'
import { fail, quote } from '../src/errors.js'
import { add, mul, sub } from '../ops/elementwise.js'
import { linear, matmul } from '../ops/matmul.js'
import { dropout } from '../ops/nn.js'
import { Module, typeName } from './module.js'
import { Linear, Conv1D } from './linear.js'
import { QuantizedLinear, type FuseReport } from './quantized.js'

/** What LoRA can wrap: a float layer in either layout, or a quantized one (QLoRA). */
export type BaseLayer = Linear | Conv1D | QuantizedLinear
export type LoRAInit = 'lora' | 'gaussian'
/** Where a layer's scale came from: alpha/rank (LoRA), alpha/√rank (rsLoRA), or given as is (mlx-lm's `scale`). */
export type ScaleRule = 'alpha/rank' | 'alpha/√rank' | 'given'
type AlphaOrScale = { alpha: number } | { scale: number }
export type LoRAOptions = {
  rank?: number
  alpha?: number // default 16: scale = alpha / rank, or alpha / √rank with useRslora
  useRslora?: boolean
  scale?: number // instead of alpha: used as given; `rule` records where it came from (default 'given')
  rule?: ScaleRule
  dropout?: number
  init?: LoRAInit
  name?: string
}

/**
 * LoRA's one rule between alpha and scale, either way round: scale = alpha / rank, or alpha / √rank under rsLoRA.
 * A 'given' scale converts as alpha/rank does (the alpha that PEFT's files need for it).
 */
export function loraScale(rank: number, rule: ScaleRule, given: AlphaOrScale): { alpha: number; scale: number } {
  const d = rule === 'alpha/√rank' ? Math.sqrt(rank) : rank
  return 'alpha' in given
    ? { alpha: given.alpha, scale: given.alpha / d }
    : { alpha: given.scale * d, scale: given.scale }
}

export const isBaseLayer = (m: unknown): m is BaseLayer =>
  m instanceof Linear || m instanceof Conv1D || m instanceof QuantizedLinear

/** The base as a float Linear (out, in): itself, transposed from Conv1D's (in, out), or dequantized. */
export function asLinear(base: BaseLayer): Linear {
  if (base instanceof Linear) return base
  return base instanceof Conv1D ? base.toLinear() : base.dequantize()
}

/** A frozen float layer in the base's own layout (a Linear for a quantized base) holding W + ΔW; ΔW: (out, in). */
export function withDelta(base: BaseLayer, dW: Tensor, sign: 1 | -1 = 1): Linear | Conv1D {
  const { weight, bias } = asLinear(base)
  const W = noGrad(() => (sign > 0 ? add(weight, dW) : sub(weight, dW))) // (out, in)
  const merged = Linear.fromWeights(W, bias, { requiresGrad: false })
  return base instanceof Conv1D ? Conv1D.fromLinear(merged, { requiresGrad: false }) : merged
}

/** A's init: 'lora' U(±1/√in), PyTorch's Linear init as PEFT uses it, or 'gaussian' N(0, 1/rank²). A (rank, in). */
function initA(op: string, init: LoRAInit, rank: number, inFeatures: number): Tensor {
  const bound = 1 / Math.sqrt(inFeatures)
  if (init === 'lora') return rand([rank, inFeatures], { low: -bound, high: bound, requiresGrad: true })
  if (init === 'gaussian') return randn([rank, inFeatures], { std: 1 / rank, requiresGrad: true })
  fail(op, `unknown init ${quote(init)} (expected 'lora' or 'gaussian'; PiSSA: PiSSALinear.fromLinear)`)
}

/** y = base(x) + scale·(dropout(x)·Aᵀ)·Bᵀ.   x: (..., in)   A: (rank, in)   B: (out, rank)   y: (..., out) */
export class LoRALinear extends Module {
  base: BaseLayer // frozen
  loraA: Tensor // (rank, in)
  loraB: Tensor // (out, rank)
  readonly inFeatures: number
  readonly outFeatures: number
  readonly alpha: number
  readonly scale: number
  readonly rule: ScaleRule
  readonly name: string
  dropout: number

  /** Wrap (and freeze) `base`. Defaults: rank 8, alpha 16, init 'lora'. */
  constructor(base: BaseLayer, options: LoRAOptions = {}) {
    super()
    const { rank = 8, alpha, scale, useRslora = false, dropout = 0, init = 'lora', name = 'default' } = options ?? {}
    const op = new.target.name // DoRALinear and PiSSALinear name themselves
    if (!isBaseLayer(base)) fail(op, `base must be a Linear, Conv1D or QuantizedLinear, got ${typeName(base)}`)
    if (!Number.isInteger(rank) || rank < 1) fail(op, `rank must be a positive integer, got ${quote(rank)}`)
    if (!(dropout >= 0 && dropout < 1)) fail(op, `dropout must be in [0, 1), got ${quote(dropout)}`)
    this.rule = scale === undefined ? (useRslora ? 'alpha/√rank' : 'alpha/rank') : (options?.rule ?? 'given')
    const given = loraScale(rank, this.rule, scale === undefined ? { alpha: alpha ?? 16 } : { scale })
    ;[this.alpha, this.scale] = [alpha ?? given.alpha, given.scale]
    if (!Number.isFinite(this.scale)) fail(op, `scale must be finite, got ${quote(this.scale)}`)
    ;[this.base, this.inFeatures, this.outFeatures] = [base.freeze(), base.inFeatures, base.outFeatures]
    ;[this.name, this.dropout] = [name, dropout]
    this.loraA = initA(op, init, rank, this.inFeatures) // (rank, in)
    this.loraB = zeros([this.outFeatures, rank], { requiresGrad: true }) // (out, rank): ΔW starts at 0
  }

  static fromLinear(base: BaseLayer, options: LoRAOptions = {}): LoRALinear {
    return new LoRALinear(base, options)
  }

  get rank(): number {
    return this.loraA.shape[0]
  }

  forward(x: Tensor): Tensor {
    return add(this.base.forward(x), this.update(x)) // (..., out)
  }

  /** The adapter path, what forward adds to base(x): scale·(dropout(x)·Aᵀ)·Bᵀ (..., out). */
  update(x: Tensor): Tensor {
    const h = linear(dropout(x, this.dropout, this.training), this.loraA) // (..., rank)
    return linear(mul(h, this.scale), this.loraB) // (..., out); scaling the thin side is cheapest
  }

  /** ΔW = scale·B·A (out, in): what forward adds to base(x), as one matrix. */
  deltaWeight(): Tensor {
    return noGrad(() => mul(matmul(this.loraB, this.loraA), this.scale))
  }

  /** A frozen layer with W + ΔW in the base's layout (a Linear for a quantized base): mlx-lm's fuse(dequantize). */
  merge(): Linear | Conv1D {
    return withDelta(this.base, this.deltaWeight())
  }

  /** The base back from a layer that merge() produced: W = W' − ΔW. */
  unmerge(merged: Linear | Conv1D): Linear | Conv1D {
    const [o, i] = [this.outFeatures, this.inFeatures]
    if (merged?.inFeatures !== i || merged?.outFeatures !== o)
      fail('LoRALinear.unmerge', `${typeName(merged)} does not match this layer's (${o},${i})`)
    return withDelta(merged, this.deltaWeight(), -1)
  }

  /** merge(); on a quantized base (unless `dequantize`) Q(W + ΔW) with its settings, and what that kept of ΔW. */
  fuse({ dequantize = false } = {}): { layer: Linear | Conv1D | QuantizedLinear; report: FuseReport | null } {
    if (this.base instanceof QuantizedLinear && !dequantize) return this.base.requantize(this.deltaWeight())
    return { layer: this.merge(), report: null }
  }
}
