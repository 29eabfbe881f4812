// QuantizedLinear: a frozen Linear stored as packed integer codes (affine 2/4/8-bit, int8, nf4), and
// quantize(model), which swaps a model's Linear layers for it in place. The float W is never kept:
// forward decodes a tile of rows at a time inside the kernel (src/kernels/quant.ts).
import { Tensor } from '../src/tensor.js'
import { K } from '../src/kernels/index.js'
import type { QuantizedWeights, QuantMode, QuantizeOptions } from '../src/kernels/quant.js'
import type { StoredTensor, StoredData } from '../src/safetensors.js'
import { shapeStr, sameShape } from '../src/shape.js'
import { quantizedLinear } from '../ops/quant.js'
import { Module } from './module.js'
import { Linear } from './linear.js'

export type { QuantMode, QuantizeOptions, QuantizedWeights }

/** How far Ŵ is from W: max and mean |W − Ŵ|, and ‖W − Ŵ‖_F / ‖W‖_F. */
export type QuantizationError = { maxAbs: number; meanAbs: number; relFrobenius: number }

/** y = x · Ŵᵀ + b with Ŵ held as packed codes.   x: (..., in)   Ŵ: (out, in)   y: (..., out). Frozen: only dx flows back. */
export class QuantizedLinear extends Module {
  readonly inFeatures: number
  readonly outFeatures: number
  packed: QuantizedWeights // not a Tensor, so namedParameters() skips it; ownBuffers() exposes it to checkpoints
  bias: Tensor | null // (out), frozen like the codes

  constructor(packed: QuantizedWeights, bias: Tensor | null = null) {
    super()
    if (bias && (bias.ndim !== 1 || bias.shape[0] !== packed.rows)) throw new Error(`QuantizedLinear: bias ${shapeStr(bias.shape)} must be (${packed.rows})`)
    this.packed = packed
    this.outFeatures = packed.rows
    this.inFeatures = packed.cols
    this.bias = bias
    if (bias) bias.requiresGrad = false
  }

  /** Quantize a Linear's weight (its bias stays float). Defaults: affine, 4 bits, groups of 64. */
  static fromLinear(linear: Linear, options: QuantizeOptions = {}): QuantizedLinear {
    const packed = K.quantize(linear.weight.data, linear.outFeatures, linear.inFeatures, options)
    return new QuantizedLinear(packed, linear.bias ? new Tensor(linear.bias.data.slice(), linear.bias.shape) : null)
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
    return p.codes.byteLength + p.scales.byteLength + (p.mode === 'affine' ? p.biases.byteLength : 0) + (this.bias ? this.bias.data.byteLength : 0)
  }

  /** A float Linear with Ŵ, frozen as this layer is. */
  dequantize(): Linear {
    return Linear.fromWeights(K.dequantize(this.packed), this.bias, { shape: [this.outFeatures, this.inFeatures], requiresGrad: false })
  }

  /** Compare Ŵ against the float weights it came from. */
  quantizationError(linear: Linear): QuantizationError {
    const w = linear.weight
    if (!sameShape(w.shape, [this.outFeatures, this.inFeatures])) {
      throw new Error(`quantizationError: Linear weight ${shapeStr(w.shape)} does not match this layer's (${this.outFeatures},${this.inFeatures})`)
    }
    const wq = K.dequantize(this.packed)
    let maxAbs = 0, sumAbs = 0, errSq = 0, refSq = 0
    for (let i = 0; i < wq.length; i++) {
      const e = Math.abs(w.data[i] - wq[i])
      maxAbs = Math.max(maxAbs, e)
      sumAbs += e
      errSq += e * e
      refSq += w.data[i] * w.data[i]
    }
    return { maxAbs, meanAbs: sumAbs / wq.length, relFrobenius: Math.sqrt(errSq / (refSq || 1)) }
  }

  override ownBuffers(): Record<string, StoredTensor> {
    const p = this.packed, out = this.outFeatures
    if (p.mode === 'int8') return { codes: { dtype: 'I8', shape: [out, p.cols], data: p.codes }, scales: { dtype: 'F32', shape: [out], data: p.scales } }
    const groups = [out, p.cols / p.groupSize]
    if (p.mode === 'nf4') return { codes: { dtype: 'U8', shape: [out, p.cols / 2], data: p.codes }, scales: { dtype: 'F32', shape: groups, data: p.scales } }
    return {
      codes: { dtype: 'U32', shape: [out, (p.cols * p.bits) / 32], data: p.codes },
      scales: { dtype: 'F32', shape: groups, data: p.scales },
      biases: { dtype: 'F32', shape: groups, data: p.biases },
    }
  }

  /** Accept buffers of exactly this layer's mode, bits and group size (same dtypes and shapes). */
  override loadOwnBuffers(buffers: Record<string, StoredTensor>): () => void {
    const own = this.ownBuffers()
    for (const [name, cur] of Object.entries(own)) {
      const b = buffers[name]
      if (b.dtype !== cur.dtype || !sameShape(b.shape, cur.shape) || b.data.length !== cur.data.length) {
        throw new Error(`QuantizedLinear (${this.mode}, ${this.bits}-bit, group ${this.groupSize}): buffer '${name}' is ${b.dtype} ${shapeStr(b.shape)}, expected ${cur.dtype} ${shapeStr(cur.shape)}`)
      }
    }
    return () => {
      for (const [name, cur] of Object.entries(own)) copyInto(cur.data, buffers[name].data)
    }
  }
}

function copyInto(dst: StoredData, src: StoredData): void {
  for (let i = 0; i < dst.length; i++) dst[i] = src[i]
}

export type QuantizeModelOptions = QuantizeOptions & { filter?: (path: string, layer: Linear) => boolean }

/**
 * Swap every Linear in `model` (that `filter` accepts) for a QuantizedLinear, in place. Skipped, and listed:
 * layers whose in-features do not split into groups, and weights tied to another parameter (quantizing one
 * name would silently untie them).
 */
export function quantize(model: Module, { filter = () => true, ...options }: QuantizeModelOptions = {}): { paths: string[]; skipped: string[] } {
  const { mode = 'affine', groupSize = 64 } = options
  const uses = new Map<Tensor, number>()
  for (const [, t] of model.namedParameters()) uses.set(t, (uses.get(t) ?? 0) + 1)
  const paths: string[] = [], skipped: string[] = []
  for (const [path, m] of [...model.namedModules()]) {
    if (!(m instanceof Linear) || path === '' || !filter(path, m)) continue
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
