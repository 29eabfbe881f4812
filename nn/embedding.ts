// Embedding: a lookup table of learned vectors, one row per token id (or position).
import { Tensor, randn } from '../src/tensor.js'
import { embedding } from '../ops/nn.js'
import { Module } from './module.js'

/** ids (...) → weight rows (..., embeddingDim); weight (numEmbeddings, embeddingDim) ~ N(0, 1) as in PyTorch. */
export class Embedding extends Module {
  weight: Tensor // (numEmbeddings, embeddingDim)

  /** `given`: an exact (numEmbeddings, embeddingDim) weight instead of the random init (nothing is drawn). */
  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    given?: Tensor,
  ) {
    super()
    this.weight = given ?? randn([numEmbeddings, embeddingDim], { requiresGrad: true })
  }

  forward(ids: Tensor | Int32Array): Tensor {
    return embedding(ids, this.weight)
  }
}
