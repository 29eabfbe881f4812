// LayerNorm over the last axis, with a learned scale and shift.
import { Tensor, ones, zeros } from '../src/tensor.js'
import { fail, quote } from '../src/errors.js'
import { layerNorm } from '../ops/nn.js'
import { Module } from './module.js'

/** y = (x − mean) / √(var + eps) · weight + bias over the last axis (dim); weight starts at 1, bias at 0. */
export class LayerNorm extends Module {
  weight: Tensor // (dim)
  bias: Tensor // (dim)
  readonly eps: number

  constructor(
    readonly dim: number,
    options: { eps?: number } = {},
  ) {
    super()
    const { eps = 1e-5 } = options ?? {}
    if (!Number.isInteger(dim) || dim < 1) fail('LayerNorm', `dim must be a positive integer, got ${quote(dim)}`)
    if (!(eps >= 0 && Number.isFinite(eps))) fail('LayerNorm', `eps must be a finite number ≥ 0, got ${quote(eps)}`)
    this.eps = eps
    this.weight = ones([dim], { requiresGrad: true })
    this.bias = zeros([dim], { requiresGrad: true })
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps)
  }
}
