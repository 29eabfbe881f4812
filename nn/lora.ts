// LoRA: a frozen layer plus trainable low-rank updates, y = base(x) + scale·(x·Aᵀ)·Bᵀ. B starts at zero, so a
// fresh adapter changes nothing; only A and B train, and forward never forms ΔW = scale·B·A: x goes through the
// rank-r bottleneck in two thin matmuls. Several named adapters can sit on one base and be mixed by strength.
// PiSSA (init 'pissa') instead starts A, B at W's top-r singular part and leaves the base only the rest of W.
import { Tensor, noGrad, rand, randn, zeros } from '../src/tensor.js'
import { K } from '../src/kernels/index.js'
import { unpackCodes, type QuantizedWeights } from '../src/kernels/quant.js'
import { add, mul, sub } from '../ops/elementwise.js'
import { linear, matmul } from '../ops/matmul.js'
import { concat } from '../ops/movement.js'
import { dropout } from '../ops/nn.js'
import { lowRank } from '../ops/linalg.js'
import { Module } from './module.js'
import { Linear } from './linear.js'
import { QuantizedLinear } from './quantized.js'

export type LoRAInit = 'lora' | 'gaussian' | 'pissa'

/** scale = alpha / rank, or alpha / √rank with useRslora, unless `scale` is given (MLX's convention; it wins over alpha). */
export type LoRAOptions = { rank?: number; alpha?: number; dropout?: number; init?: LoRAInit; useRslora?: boolean; scale?: number; name?: string }

/** One named adapter: A (rank, in), B (out, rank), its multiplier, the strength it is mixed in with; `pissa`: it started at W's top-r part. */
export type Adapter = { loraA: Tensor; loraB: Tensor; alpha: number; scale: number; strength: number; pissa?: boolean }

/** What requantizing W + ΔW kept of ΔW; see LoRALinear.fuse. */
export type FuseReport = { codesChanged: number; normRatio: number; retained: number; groupsBelowHalfStep: number; groups: number }

export type BaseLayer = Linear | QuantizedLinear

/** y = base(x) + Σ_adapters strength·scale·(dropout(x)·Aᵀ)·Bᵀ.   x: (..., in)   A: (rank, in)   B: (out, rank)   y: (..., out) */
export class LoRALinear extends Module {
  readonly inFeatures: number
  readonly outFeatures: number
  base: BaseLayer
  loraA!: Tensor // (rank, in): the active adapter's, kept in fields so parameters(), optimizers and saveAdapters see them
  loraB!: Tensor // (out, rank)
  dropout: number
  active = ''
  private readonly adapters = new Map<string, Adapter>() // every adapter on this layer, the active one included
  private principal: { A: Tensor; B: Tensor } | null = null // PiSSA: W_r = B·A, the part of the original W the base gave up

  constructor(base: BaseLayer, { dropout = 0, name = 'default', ...options }: LoRAOptions = {}) {
    super()
    if (!(base instanceof Linear || base instanceof QuantizedLinear)) throw new Error(`LoRALinear: base must be a Linear or QuantizedLinear, got ${describe(base)}`)
    if (!(dropout >= 0 && dropout < 1)) throw new Error(`LoRALinear: dropout must be in [0, 1), got ${dropout}`)
    this.inFeatures = base.inFeatures
    this.outFeatures = base.outFeatures
    this.base = base.freeze()
    this.dropout = dropout
    this.addAdapter(name, options)
  }

  /** Wrap (and freeze) `base`. Defaults: rank 8, alpha 16, init 'lora' (A ~ U(±1/√in), B = 0). */
  static fromLinear(base: BaseLayer, options: LoRAOptions = {}): LoRALinear {
    return new LoRALinear(base, options)
  }

  get rank(): number {
    return this.loraA.shape[0]
  }

  get scale(): number {
    return this.adapters.get(this.active)!.scale
  }

  forward(x: Tensor): Tensor {
    let y = this.base.forward(x) // (..., out)
    const xd = dropout(x, this.dropout, this.training) // (..., in): one mask shared by every adapter
    for (const a of this.adapters.values()) {
      if (a.strength === 0) continue
      const h = mul(linear(xd, a.loraA), a.strength * a.scale) // (..., rank): scaling the thin side is cheapest
      y = add(y, linear(h, a.loraB)) // (..., out)
    }
    const p = this.principalWeight()
    if (p !== 0) y = add(y, linear(mul(linear(x, this.principal!.A), p), this.principal!.B)) // (..., out): W_r back in, undropped like the base
    return y
  }

  /** How much of PiSSA's W_r forward adds back: 1 less the strength of the adapter that holds it (0 without PiSSA), so switched off the layer is W again. */
  private principalWeight(): number {
    if (!this.principal) return 0
    let w = 1
    for (const a of this.adapters.values()) if (a.pissa) w -= a.strength
    return w
  }

  /** Names of this layer's adapters. */
  adapterNames(): string[] {
    return [...this.adapters.keys()]
  }

  adapter(name: string): Adapter | undefined {
    return this.adapters.get(name)
  }

  /** Add a freshly initialised adapter and make it the active one (the one that trains); the others keep their strengths. */
  addAdapter(name: string, { rank = 8, alpha, init = 'lora', useRslora = false, scale }: Omit<LoRAOptions, 'dropout' | 'name'> = {}): Adapter {
    if (this.adapters.has(name)) throw new Error(`LoRALinear.addAdapter: this layer already has an adapter named '${name}'`)
    if (!Number.isInteger(rank) || rank < 1) throw new Error(`LoRALinear: rank must be a positive integer, got ${rank}`)
    if (init !== 'lora' && init !== 'gaussian' && init !== 'pissa') throw new Error(`LoRALinear: unknown init '${String(init)}' (expected 'lora', 'gaussian' or 'pissa')`)
    const root = useRslora ? Math.sqrt(rank) : rank // rsLoRA divides by √rank so larger ranks keep learning
    const s = scale ?? (alpha ?? 16) / root
    if (!Number.isFinite(s)) throw new Error(`LoRALinear: scale must be finite, got ${s}`)
    const bound = 1 / Math.sqrt(this.inFeatures)
    const { loraA, loraB } = init === 'pissa' ? this.pissa(name, rank, s) : {
      loraA: init === 'gaussian' ? randn([rank, this.inFeatures], { std: 1 / rank }) : rand([rank, this.inFeatures], { low: -bound, high: bound }),
      loraB: zeros([this.outFeatures, rank]),
    }
    const adapter: Adapter = { loraA, loraB, alpha: alpha ?? s * root, scale: s, strength: 1, ...(init === 'pissa' && { pissa: true }) }
    this.adapters.set(name, adapter)
    this.activate(name) // a new adapter is made to train, whatever the previous active one's flags were
    loraA.requiresGrad = loraB.requiresGrad = true
    return adapter
  }

  /**
   * PiSSA (Meng et al., 2024): split W = W_r + W_res, W_r = B·A from W's top-r singular triplets (linalg.lowRank).
   * The adapter starts at A/√scale, B/√scale (so scale·loraB·loraA = W_r) and the base becomes a new frozen Linear
   * holding W_res: the layer still computes W, but training moves W's principal directions first.
   */
  private pissa(name: string, rank: number, scale: number): { loraA: Tensor; loraB: Tensor } {
    const base = this.base, op = `LoRALinear: init 'pissa' (adapter '${name}')`, most = Math.min(this.outFeatures, this.inFeatures)
    if (this.adapters.size > 0) throw new Error(`${op} takes W's top-${rank} part out of the base, so it must be a layer's first adapter; this one already has ${this.adapterNames().map((n) => `'${n}'`).join(', ')}. Wrap the original Linear with init 'pissa' instead`)
    if (!(base instanceof Linear)) throw new Error(`${op} needs a float Linear base to split, got a ${describe(base)}; apply PiSSA first and quantize after (quantize() then packs the residual, as QPiSSA does)`)
    if (rank > most) throw new Error(`${op}: rank ${rank} exceeds min(out, in) = ${most} of the (${this.outFeatures},${this.inFeatures}) weight`)
    if (!(scale > 0)) throw new Error(`${op} splits W_r into factors scaled by 1/√scale, so scale must be > 0, got ${scale}`)
    return noGrad(() => {
      const { B, A } = lowRank(base.weight, rank) // B (out, r), A (r, in), W_r = B·A
      this.base = Linear.fromWeights(sub(base.weight, matmul(B, A)), base.bias, { requiresGrad: false }) // W_res; the caller's Linear is left as it was
      this.principal = { A, B }
      const k = 1 / Math.sqrt(scale)
      return { loraA: mul(A, k), loraB: mul(B, k) }
    })
  }

  /**
   * Adapter `name` as plain LoRA on the original W, for adapter files: itself, or for PiSSA (whose factors only make sense
   * on the residual base) PEFT's conversion ΔW = scale·(B·A − B₀·A₀) = scale·[B, −B₀]·[A; A₀], of rank 2r.
   */
  plainAdapter(name: string): Adapter | undefined {
    const a = this.adapters.get(name)
    if (!a?.pissa) return a
    const rank = a.loraA.shape[0], k = 1 / Math.sqrt(a.scale), P = this.principal!
    const alpha = Math.abs(a.scale - a.alpha / rank) <= 1e-9 * a.scale ? 2 * rank * a.scale // keep the alpha/rank (or alpha/√rank) rule true at rank 2r
      : Math.abs(a.scale - a.alpha / Math.sqrt(rank)) <= 1e-9 * a.scale ? Math.sqrt(2 * rank) * a.scale : a.alpha
    return noGrad(() => ({
      loraA: concat([a.loraA, mul(P.A, k)], 0), // (2r, in)
      loraB: concat([a.loraB, mul(P.B, -k)], 1), // (out, 2r)
      alpha, scale: a.scale, strength: a.strength,
    }))
  }

  /** Install given weights as adapter `name` (replacing one of that name; a replaced PiSSA adapter leaves W_r to the layer): active, trainable, strength 1. Loaders use this. */
  putAdapter(name: string, { loraA, loraB, rank, alpha, scale }: { loraA: Float32Array; loraB: Float32Array; rank: number; alpha: number; scale: number }): Adapter {
    if (loraA.length !== rank * this.inFeatures || loraB.length !== this.outFeatures * rank) {
      throw new Error(`LoRALinear.putAdapter: '${name}' of rank ${rank} needs A (${rank},${this.inFeatures}) and B (${this.outFeatures},${rank}), got ${loraA.length} and ${loraB.length} values`)
    }
    const old = this.adapters.get(name)
    const adapter: Adapter = {
      loraA: new Tensor(loraA.slice(), [rank, this.inFeatures], true),
      loraB: new Tensor(loraB.slice(), [this.outFeatures, rank], true),
      alpha, scale, strength: 1,
    }
    this.adapters.set(name, adapter)
    if (old && this.active === name) this.active = '' // the replaced tensors leave with the old entry
    this.activate(name)
    adapter.loraA.requiresGrad = adapter.loraB.requiresGrad = true
    return adapter
  }

  /** Run only `name`, at strength 1, and make it the active adapter; a layer without it runs as its base. */
  setAdapter(name: string): void {
    for (const [n, a] of this.adapters) a.strength = n === name ? 1 : 0
    if (this.adapters.has(name)) this.activate(name)
  }

  /** Mix adapters by strength, e.g. { cwk: 0.7, rj: 0.3 }; adapters not named are switched off. */
  setAdapters(strengths: Record<string, number>): void {
    for (const [n, a] of this.adapters) a.strength = strengths[n] ?? 0
  }

  /** Switch every adapter off: the layer computes its original W, exactly base(x) (after PiSSA: base(x) plus the W_r it gave up). */
  disableAdapters(): void {
    for (const a of this.adapters.values()) a.strength = 0
  }

  /** Only the active adapter trains: the newly active one takes over the old one's requiresGrad, the old one is frozen. */
  private activate(name: string): void {
    const prev = this.adapters.get(this.active), next = this.adapters.get(name)!
    if (prev && prev !== next) {
      next.loraA.requiresGrad = prev.loraA.requiresGrad
      next.loraB.requiresGrad = prev.loraB.requiresGrad
      prev.loraA.requiresGrad = prev.loraB.requiresGrad = false
    }
    this.active = name
    this.loraA = next.loraA
    this.loraB = next.loraB
  }

  /** ΔW = Σ strength·scale·B·A over the adapters in use (+ PiSSA's W_r at 1 − its strength): what forward adds to base(x), as one (out, in) matrix. */
  deltaWeight(): Tensor {
    return noGrad(() => {
      let dw = zeros([this.outFeatures, this.inFeatures])
      for (const a of this.adapters.values()) if (a.strength !== 0) dw = add(dw, mul(matmul(a.loraB, a.loraA), a.strength * a.scale)) // (out, in)
      const p = this.principalWeight()
      return p === 0 ? dw : add(dw, mul(matmul(this.principal!.B, this.principal!.A), p))
    })
  }

  /** W as the layer was wrapped (out, in): the base's weight, dequantized if quantized, plus W_r for a PiSSA layer. */
  originalWeight(): Tensor {
    const W = new Tensor(this.baseWeight(), [this.outFeatures, this.inFeatures])
    return this.principal ? noGrad(() => add(W, matmul(this.principal!.B, this.principal!.A))) : W
  }

  /** The base's weight as floats (dequantized for a quantized base). */
  private baseWeight(): Float32Array {
    return this.base instanceof QuantizedLinear ? K.dequantize(this.base.packed) : this.base.weight.data
  }

  /** A plain Linear with W + ΔW (W dequantized for a quantized base), frozen like the base. */
  merge(): Linear {
    const w = K.add(this.baseWeight(), this.deltaWeight().data)
    return Linear.fromWeights(w, this.base.bias, { shape: [this.outFeatures, this.inFeatures], requiresGrad: false })
  }

  /** The base back from a layer that merge() produced: W = W' − ΔW. */
  unmerge(merged: Linear): Linear {
    if (merged.inFeatures !== this.inFeatures || merged.outFeatures !== this.outFeatures) {
      throw new Error(`LoRALinear.unmerge: Linear (${merged.outFeatures},${merged.inFeatures}) does not match this layer's (${this.outFeatures},${this.inFeatures})`)
    }
    const w = K.sub(merged.weight.data, this.deltaWeight().data)
    return Linear.fromWeights(w, merged.bias, { shape: [this.outFeatures, this.inFeatures], requiresGrad: false })
  }

  /**
   * Fold the adapters into the base. A float base (or `dequantize: true`) gives merge()'s Linear. A quantized base
   * is requantized, Q(W + ΔW), with its own settings, and the report says what survived: the fraction of codes
   * that changed; normRatio = ‖Q(W + ΔW) − Q(W)‖_F / ‖ΔW‖_F; retained = ⟨Q(W + ΔW) − Q(W), ΔW⟩ / ‖ΔW‖²_F, the
   * share of ΔW that the weights really moved along (1: kept; near 0: the fine-tune is lost, even when
   * normRatio looks fine because the group scales shifted); and the fraction of groups whose largest |ΔW| is
   * below half a quantization step there.
   */
  fuse({ dequantize = false } = {}): { layer: Linear | QuantizedLinear; report: FuseReport | null } {
    const base = this.base
    if (!(base instanceof QuantizedLinear) || dequantize) return { layer: this.merge(), report: null }
    const dw = this.deltaWeight().data
    const target = K.add(K.dequantize(base.packed), dw)
    const packed = K.quantize(target, this.outFeatures, this.inFeatures, { mode: base.mode, bits: base.bits, groupSize: base.groupSize })
    return { layer: new QuantizedLinear(packed, base.bias ? new Tensor(base.bias.data.slice(), base.bias.shape) : null), report: fuseReport(base.packed, packed, dw) }
  }
}

function describe(m: unknown): string {
  return m instanceof Object ? m.constructor.name : String(m)
}

/** Compare requantized weights `after` = Q(W + ΔW) with `before` = Q(W), given ΔW. */
function fuseReport(before: QuantizedWeights, after: QuantizedWeights, dw: Float32Array): FuseReport {
  const c0 = unpackCodes(before), c1 = unpackCodes(after)
  const w0 = K.dequantize(before), w1 = K.dequantize(after)
  let changed = 0, moved = 0, along = 0, delta = 0
  for (let i = 0; i < dw.length; i++) {
    if (c0[i] !== c1[i]) changed++
    moved += (w1[i] - w0[i]) ** 2
    along += (w1[i] - w0[i]) * dw[i]
    delta += dw[i] ** 2
  }
  // a group's step: the affine or int8 scale; for nf4, absmax times the mean gap between its 16 levels (2/15)
  const size = before.mode === 'int8' ? before.cols : before.groupSize
  const groups = dw.length / size
  let below = 0
  for (let g = 0; g < groups; g++) {
    const step = before.mode === 'nf4' ? (before.scales[g] * 2) / 15 : before.scales[g]
    let biggest = 0
    for (let i = g * size; i < (g + 1) * size; i++) biggest = Math.max(biggest, Math.abs(dw[i]))
    if (biggest < step / 2) below++
  }
  const normRatio = delta === 0 ? (moved === 0 ? 1 : Infinity) : Math.sqrt(moved / delta)
  return { codesChanged: changed / dw.length, normRatio, retained: delta === 0 ? 1 : along / delta, groupsBelowHalfStep: below / groups, groups }
}
