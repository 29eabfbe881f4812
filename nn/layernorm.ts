// LayerNorm over the last axis, with a learned scale and shift.
import { Tensor, ones, zeros } from '../src/tensor.js'
import { layerNorm } from '../ops/nn.js'
import { Module } from './module.js'

/** y = (x − mean) / √(var + eps) · weight + bias over the last axis (dim); weight starts at 1, bias at 0. */
export class LayerNorm extends Module {
  weight: Tensor // (dim)
  bias: Tensor // (dim)
  readonly eps: number

  constructor(
    readonly dim: number,
    { eps = 1e-5 } = {},
  ) {
    super()
    this.eps = eps
    this.weight = ones([dim], { requiresGrad: true })
    this.bias = zeros([dim], { requiresGrad: true })
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps)
  }
}
