// QuantizedLinear: a frozen Linear stored as packed integer codes (affine 2/4/8-bit, int8, nf4), and
// quantize(model), which swaps a model's Linear layers for it in place. The float W is never kept:
// forward decodes a tile of rows at a time inside the kernel (src/kernels/quant.ts).
import { Tensor, noGrad } from '../src/tensor.js'
import { shapeStr, sameShape } from '../src/shape.js'
import { fail, quote } from '../src/errors.js'
import { add } from '../ops/elementwise.js'
import {
  quantizedLinear,
  quantizeWeights,
  dequantizeWeights,
  quantCodes,
  type QuantizedWeights,
  type QuantMode,
  type QuantizeOptions,
} from '../ops/quant.js'
import { Module } from './module.js'
import { Linear, Conv1D } from './linear.js'

export type { QuantMode, QuantizeOptions, QuantizedWeights }

/** How far Ŵ is from W: max and mean |W − Ŵ|, and ‖W − Ŵ‖_F / ‖W‖_F. */
export type QuantizationError = { maxAbs: number; meanAbs: number; relFrobenius: number }

/**
 * y = x · Ŵᵀ + b with Ŵ held as packed codes.   x: (..., in)   Ŵ: (out, in)   y: (..., out). Frozen: only dx
 * flows.
 */
export class QuantizedLinear extends Module {
  readonly inFeatures: number
  readonly outFeatures: number
  packed: QuantizedWeights // not a Tensor, so namedParameters() skips it; ownBuffers() exposes it to checkpoints
  bias: Tensor | null // (out), frozen like the codes

  constructor(packed: QuantizedWeights, bias: Tensor | null = null) {
    super()
    if (bias && (bias.ndim !== 1 || bias.shape[0] !== packed.rows))
      fail('QuantizedLinear', `bias ${shapeStr(bias.shape)} must be (${packed.rows})`)
    this.packed = packed
    this.outFeatures = packed.rows
    this.inFeatures = packed.cols
    this.bias = bias
    if (bias) bias.requiresGrad = false
  }

  /** Quantize a Linear's weight (a Conv1D's as (out, in)); the bias stays float. Default: affine 4-bit, groups of 64 */
  static fromLinear(layer: Linear | Conv1D, options: QuantizeOptions = {}): QuantizedLinear {
    const { weight, bias } = layer instanceof Conv1D ? layer.toLinear() : layer // W (out, in)
    return new QuantizedLinear(quantizeWeights(weight, options ?? {}), copy(bias))
  }

  get mode(): QuantMode {
    return this.packed.mode
  }

  /** Bits per code: the affine setting, 8 for int8, 4 for nf4. */
  get bits(): number {
    return this.packed.mode === 'affine' ? this.packed.bits : this.packed.mode === 'int8' ? 8 : 4
  }

  /** Weights sharing one scale: the group (affine) or block (nf4) size; a whole row for int8. */
  get groupSize(): number {
    return this.packed.mode === 'int8' ? this.inFeatures : this.packed.groupSize
  }

  forward(x: Tensor): Tensor {
    return quantizedLinear(x, this.packed, this.bias ?? undefined)
  }

  /** Bytes held: codes + scales (+ affine biases) + the float bias. */
  get nbytes(): number {
    const p = this.packed
    const scales = p.scales.byteLength + (p.mode === 'affine' ? p.biases.byteLength : 0)
    return p.codes.byteLength + scales + (this.bias ? this.bias.data.byteLength : 0)
  }

  /** A float Linear with Ŵ, frozen as this layer is. */
  dequantize(): Linear {
    return Linear.fromWeights(dequantizeWeights(this.packed), this.bias, { requiresGrad: false })
  }

  /**
   * Q(Ŵ + ΔW) with this layer's settings (mlx-lm's fuse into a quantized base), and what it kept of ΔW (out, in).
   */
  requantize(dW: Tensor): { layer: QuantizedLinear; report: FuseReport } {
    const merged = noGrad(() => add(dequantizeWeights(this.packed), dW)) // (out, in)
    const packed = quantizeWeights(merged, { mode: this.mode, bits: this.bits, groupSize: this.groupSize })
    return {
      layer: new QuantizedLinear(packed, copy(this.bias)),
      report: requantizeReport(this.packed, packed, dW.data),
    }
  }

  /** Compare Ŵ against the float weights it came from. */
  quantizationError(linear: Linear): QuantizationError {
    const w = linear.weight
    const own = `(${this.outFeatures},${this.inFeatures})`
    if (!sameShape(w.shape, [this.outFeatures, this.inFeatures]))
      fail('quantizationError', `Linear weight ${shapeStr(w.shape)} does not match this layer's ${own}`)
    const wq = dequantizeWeights(this.packed).data
    let [maxAbs, sumAbs, errSq, refSq] = [0, 0, 0, 0]
    for (let i = 0; i < wq.length; i++) {
      const e = Math.abs(w.data[i] - wq[i])
      maxAbs = Math.max(maxAbs, e)
      sumAbs += e
      errSq += e * e
      refSq += w.data[i] * w.data[i]
    }
    return { maxAbs, meanAbs: sumAbs / wq.length, relFrobenius: Math.sqrt(errSq / (refSq || 1)) }
  }
}

/** A frozen copy of a bias: a quantized layer owns its own. */
const copy = (bias: Tensor | null) => (bias ? new Tensor(bias.data.slice(), bias.shape) : null)

export type QuantizeModelOptions = QuantizeOptions & { filter?: (path: string, layer: Linear | Conv1D) => boolean }

/**
 * Swap every Linear and Conv1D in `model` (that `filter` accepts) for a QuantizedLinear, in place. Skipped, and
 * listed: layers whose in-features do not split into groups, and weights tied to another parameter (quantizing
 * one name would silently untie them).
 */
export function quantize(model: Module, settings: QuantizeModelOptions = {}): { paths: string[]; skipped: string[] } {
  const { filter = () => true, ...options } = settings ?? {}
  const { mode = 'affine', groupSize = 64 } = options
  // checked here, as the kernel would for a layer: a groupSize no layer divides by would otherwise skip them all
  if (mode !== 'affine' && mode !== 'int8' && mode !== 'nf4')
    fail('quantize', `unknown mode ${quote(mode)} (expected 'affine', 'int8' or 'nf4')`)
  if (mode !== 'int8' && !(Number.isInteger(groupSize) && groupSize > 0))
    fail('quantize', `groupSize must be a positive integer, got ${quote(groupSize)}`)
  const uses = new Map<Tensor, number>()
  for (const [, t] of model.namedParameters()) uses.set(t, (uses.get(t) ?? 0) + 1)
  const paths: string[] = [],
    skipped: string[] = []
  for (const [path, m] of [...model.namedModules()]) {
    if (!(m instanceof Linear || m instanceof Conv1D) || path === '' || !filter(path, m)) continue
    const fits = mode === 'int8' || m.inFeatures % groupSize === 0
    if (!fits || uses.get(m.weight)! > 1) {
      skipped.push(path)
      continue
    }
    model.setModule(path, QuantizedLinear.fromLinear(m, options))
    paths.push(path)
  }
  return { paths, skipped }
}

/** What requantizing W + ΔW kept of ΔW; see requantizeReport. */
export type FuseReport = {
  codesChanged: number
  normRatio: number
  retained: number
  groupsBelowHalfStep: number
  groups: number
}

/**
 * Compare `after` = Q(W + ΔW) with `before` = Q(W), given ΔW (out·in values): the fraction of codes that changed;
 * normRatio = ‖Q(W + ΔW) − Q(W)‖_F / ‖ΔW‖_F; retained = ⟨Q(W + ΔW) − Q(W), ΔW⟩ / ‖ΔW‖²_F, the
 * share of ΔW the
 * weights really moved along (1: kept; near 0: lost, even when normRatio looks fine because the group scales
 * shifted); and the fraction of groups whose largest |ΔW| is below half a quantization step there.
 */
export function requantizeReport(before: QuantizedWeights, after: QuantizedWeights, dw: Float32Array): FuseReport {
  const c0 = quantCodes(before),
    c1 = quantCodes(after)
  const w0 = dequantizeWeights(before).data,
    w1 = dequantizeWeights(after).data
  let [changed, moved, along, delta] = [0, 0, 0, 0]
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
  let normRatio = Math.sqrt(moved / delta)
  if (delta === 0) normRatio = moved === 0 ? 1 : Infinity
  return {
    codesChanged: changed / dw.length,
    normRatio,
    retained: delta === 0 ? 1 : along / delta,
    groupsBelowHalfStep: below / groups,
    groups,
  }
}
