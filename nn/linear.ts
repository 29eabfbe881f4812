// Linear: the layer LoRA wraps and quantization compresses.
import { Tensor, rand, randn, zeros } from '../src/tensor.js'
import { shapeStr, sameShape } from '../src/shape.js'
import { linear, matmul } from '../ops/matmul.js'
import { add } from '../ops/elementwise.js'
import { Module } from './module.js'

/** Anything that maps (..., in) → (..., out) like a Linear: LoRA and quantized layers stand in for one. */
export interface LinearLike extends Module {
  readonly inFeatures: number
  readonly outFeatures: number
  forward(x: Tensor): Tensor
}

/** y = x · Wᵀ + b, with W stored (out, in) as in PyTorch and MLX; PyTorch's init U(±1/√in). */
export class Linear extends Module {
  weight: Tensor // (out, in)
  bias: Tensor | null // (out)

  /** `given`: exact tensors instead of the random init (nothing is drawn); Linear.fromWeights checks and copies them. */
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    { bias = true } = {},
    given?: { weight: Tensor; bias: Tensor | null },
  ) {
    super()
    const bound = inFeatures > 0 ? 1 / Math.sqrt(inFeatures) : 0 // no inputs: a zero bias, as PyTorch, not U(±∞) = NaN
    this.weight = given
      ? given.weight
      : rand([outFeatures, inFeatures], { low: -bound, high: bound, requiresGrad: true })
    this.bias = given ? given.bias : bias ? rand([outFeatures], { low: -bound, high: bound, requiresGrad: true }) : null
  }

  /**
   * A Linear holding copies of the given weight (out, in) and bias (out): a Tensor, or a flat Float32Array with
   * { shape: [out, in] }. Draws nothing from the random stream, so seeded code around it is not shifted.
   */
  static fromWeights(
    weight: Tensor | Float32Array,
    bias: Tensor | Float32Array | null = null,
    { shape, requiresGrad = true }: { shape?: readonly [number, number]; requiresGrad?: boolean } = {},
  ): Linear {
    const w = weight instanceof Tensor ? weight.data : weight
    const given = weight instanceof Tensor ? weight.shape : shape
    if (!given)
      throw new Error(`Linear.fromWeights: a flat Float32Array weight (${w.length} values) needs { shape: [out, in] }`)
    if (given.length !== 2 || (shape && !sameShape(shape, given))) {
      throw new Error(
        `Linear.fromWeights: weight must be (out, in), got shape ${shapeStr(given)}${shape ? ` with { shape: ${shapeStr(shape)} }` : ''}`,
      )
    }
    const [outFeatures, inFeatures] = given
    if (w.length !== outFeatures * inFeatures)
      throw new Error(
        `Linear.fromWeights: weight has ${w.length} values, shape ${shapeStr(given)} needs ${outFeatures * inFeatures}`,
      )
    const b = bias instanceof Tensor ? bias.data : bias
    if (b && (b.length !== outFeatures || (bias instanceof Tensor && bias.ndim !== 1))) {
      throw new Error(
        `Linear.fromWeights: bias must be (${outFeatures}) for a (${outFeatures},${inFeatures}) weight, got ${bias instanceof Tensor ? shapeStr(bias.shape) : `${b.length} values`}`,
      )
    }
    return new Linear(
      inFeatures,
      outFeatures,
      { bias: b !== null },
      {
        weight: new Tensor(w.slice(), [outFeatures, inFeatures], requiresGrad),
        bias: b ? new Tensor(b.slice(), [outFeatures], requiresGrad) : null,
      },
    )
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias ?? undefined)
  }
}

/**
 * GPT-2's layer layout (Hugging Face's Conv1D): y = x · W + b with W stored (in, out), the transpose of a Linear's.
 * Init as transformers': W ~ N(0, 0.02²), b = 0. `given`: exact tensors instead (nothing is drawn).
 */
export class Conv1D extends Module {
  weight: Tensor // (in, out)
  bias: Tensor // (out)

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    given?: { weight: Tensor; bias: Tensor },
  ) {
    super()
    this.weight = given ? given.weight : randn([inFeatures, outFeatures], { std: 0.02, requiresGrad: true })
    this.bias = given ? given.bias : zeros([outFeatures], { requiresGrad: true })
  }

  forward(x: Tensor): Tensor {
    return add(matmul(x, this.weight), this.bias) // (..., in) · (in, out) → (..., out)
  }
}
