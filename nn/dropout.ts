// Dropout: active only in training mode (module.train() / module.eval()).
import { Tensor } from '../src/tensor.js'
import { fail, quote } from '../src/errors.js'
import { dropout } from '../ops/nn.js'
import { Module } from './module.js'

/** Zero each element with probability p and scale the rest by 1/(1 − p) while training; identity in eval mode. */
export class Dropout extends Module {
  constructor(readonly p: number) {
    super()
    if (!(p >= 0 && p < 1)) fail('Dropout', `p must be in [0, 1), got ${quote(p)}`)
  }

  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training) // scaled by 1/(1 − p): eval's expected activations equal training's
  }
}
