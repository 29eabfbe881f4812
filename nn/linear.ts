// Linear: the layer LoRA wraps and quantization compresses.
import { Tensor, rand } from '../src/tensor'
import { linear } from '../ops/matmul'
import { Module } from './module'

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

  constructor(readonly inFeatures: number, readonly outFeatures: number, { bias = true } = {}) {
    super()
    const bound = 1 / Math.sqrt(inFeatures)
    this.weight = rand([outFeatures, inFeatures], { low: -bound, high: bound, requiresGrad: true })
    this.bias = bias ? rand([outFeatures], { low: -bound, high: bound, requiresGrad: true }) : null
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias ?? undefined)
  }
}
