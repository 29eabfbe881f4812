// Linear and GPT-2's Conv1D: the layers LoRA wraps and quantization compresses. Both compute y = x·Wᵀ + b with
// W (out, in); Conv1D stores W transposed, (in, out), as transformers' GPT-2 does, so its checkpoints load as they are.
import { Tensor, noGrad, rand, randn, zeros } from '../src/tensor.js'
import { shapeStr, sameShape } from '../src/shape.js'
import { fail } from '../src/errors.js'
import { add } from '../ops/elementwise.js'
import { linear, matmul } from '../ops/matmul.js'
import { transpose } from '../ops/movement.js'
import { Module } from './module.js'

/** Anything that maps (..., in) → (..., out) like a Linear: LoRA and quantized layers stand in for one. */
export interface LinearLike extends Module {
  readonly inFeatures: number
  readonly outFeatures: number
  forward(x: Tensor): Tensor
}

type Given = { weight: Tensor; bias: Tensor | null }
/** Weights as given to fromWeights: a Tensor, or a flat Float32Array with { shape }. */
type Weights = Tensor | Float32Array

/** (a, b) → (b, a), a copy outside the graph: how one layout's weight becomes the other's. */
const transposed = (w: Tensor) => noGrad(() => transpose(w))
type FromWeightsOptions = { shape?: readonly [number, number]; requiresGrad?: boolean }

/**
 * Copies of a 2-D weight (a Tensor, or a flat Float32Array with { shape }) and a bias of `out` values, checked;
 * `layout` names the weight's dims for messages and says which of them is out.
 */
function copyWeights(
  op: string,
  layout: 'out, in' | 'in, out',
  weight: Weights,
  bias: Weights | null,
  { shape, requiresGrad = true }: FromWeightsOptions,
): Given {
  const w = weight instanceof Tensor ? weight.data : weight
  const dims = weight instanceof Tensor ? weight.shape : shape
  if (!(w instanceof Float32Array)) fail(op, `weight must be a Tensor or a Float32Array, got ${typeof weight}`)
  if (!dims) fail(op, `a flat Float32Array weight (${w.length} values) needs { shape: [${layout}] }`)
  if (dims.length !== 2 || (shape && !sameShape(shape, dims))) {
    const given = shape ? ` with { shape: ${shapeStr(shape)} }` : ''
    fail(op, `weight must be (${layout}), got shape ${shapeStr(dims)}${given}`)
  }
  if (w.length !== dims[0] * dims[1])
    fail(op, `weight has ${w.length} values, shape ${shapeStr(dims)} needs ${dims[0] * dims[1]}`)
  const out = layout === 'out, in' ? dims[0] : dims[1]
  const b = bias instanceof Tensor ? bias.data : bias
  if (b && (b.length !== out || (bias instanceof Tensor && bias.ndim !== 1))) {
    const got = bias instanceof Tensor ? shapeStr(bias.shape) : `${b.length} values`
    fail(op, `bias must be (${out}) for a ${shapeStr(dims)} weight, got ${got}`)
  }
  return {
    weight: new Tensor(w.slice(), dims, requiresGrad),
    bias: b ? new Tensor(b.slice(), [out], requiresGrad) : null,
  }
}

/** y = x · Wᵀ + b, with W stored (out, in) as in PyTorch and MLX; PyTorch's init U(±1/√in). */
export class Linear extends Module {
  weight: Tensor // (out, in)
  bias: Tensor | null // (out)

  /** `given`: exact tensors instead of the random init (nothing is drawn); fromWeights checks and copies them. */
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    { bias = true } = {},
    given?: Given,
  ) {
    super()
    // no inputs: a zero bias, as PyTorch, not U(±∞) = NaN
    const bound = inFeatures > 0 ? 1 / Math.sqrt(inFeatures) : 0
    const uniform = (shape: number[]) => rand(shape, { low: -bound, high: bound, requiresGrad: true })
    this.weight = given ? given.weight : uniform([outFeatures, inFeatures])
    this.bias = given ? given.bias : bias ? uniform([outFeatures]) : null
  }

  /**
   * A Linear holding copies of the given weight (out, in) and bias (out): a Tensor, or a flat Float32Array with
   * { shape: [out, in] }. Draws nothing from the random stream, so seeded code around it is not shifted.
   */
  static fromWeights(weight: Weights, bias: Weights | null = null, options: FromWeightsOptions = {}): Linear {
    const given = copyWeights('Linear.fromWeights', 'out, in', weight, bias, options ?? {})
    const [outFeatures, inFeatures] = given.weight.shape
    return new Linear(inFeatures, outFeatures, { bias: given.bias !== null }, given)
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias ?? undefined) // (..., in) → (..., out)
  }
}

/**
 * y = x · W + b with W stored (in, out): transformers' Conv1D, GPT-2's c_attn, c_proj and c_fc. The same function
 * as a Linear whose weight is Wᵀ; initialised as GPT-2 does, W ~ N(0, 0.02²) and b = 0.
 */
export class Conv1D extends Module {
  weight: Tensor // (in, out)
  bias: Tensor | null // (out)

  /** `given`: exact tensors instead of the random init (nothing is drawn); fromWeights checks and copies them. */
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    { bias = true } = {},
    given?: Given,
  ) {
    super()
    this.weight = given ? given.weight : randn([inFeatures, outFeatures], { std: 0.02, requiresGrad: true })
    this.bias = given ? given.bias : bias ? zeros([outFeatures], { requiresGrad: true }) : null
  }

  /** A Conv1D holding copies of the weight (in, out), as a Hugging Face GPT-2 checkpoint stores it, and bias (out). */
  static fromWeights(weight: Weights, bias: Weights | null = null, options: FromWeightsOptions = {}): Conv1D {
    const given = copyWeights('Conv1D.fromWeights', 'in, out', weight, bias, options ?? {})
    const [inFeatures, outFeatures] = given.weight.shape
    return new Conv1D(inFeatures, outFeatures, { bias: given.bias !== null }, given)
  }

  /** The Conv1D computing what `linear` does: its weight (out, in) transposed to (in, out); copies. */
  static fromLinear(l: Linear, { requiresGrad = true } = {}): Conv1D {
    return Conv1D.fromWeights(transposed(l.weight), l.bias, { requiresGrad })
  }

  /** The Linear computing what this layer does: W transposed to (out, in); copies, frozen as this layer is. */
  toLinear(): Linear {
    return Linear.fromWeights(transposed(this.weight), this.bias, { requiresGrad: this.weight.requiresGrad })
  }

  forward(x: Tensor): Tensor {
    const y = matmul(x, this.weight) // (..., in) · (in, out) → (..., out)
    return this.bias ? add(y, this.bias) : y
  }
}
