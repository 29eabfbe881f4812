// Where a pretrained architecture's tensors come from while it is built: the Hugging Face loader's checked file
// tensors, or a fresh init. Layers ask for each tensor by its dotted name and shape, so one description of the
// architecture (its constructors) gives both the model and, before anything is allocated, the list of the
// tensors it needs (tensorShapes).
import { Tensor } from '../src/tensor.js'
import { randomNormal } from '../src/random.js'
import { sizeOf, shapeStr, sameShape } from '../src/shape.js'
import { fail } from '../src/errors.js'
import { Linear, Conv1D } from './linear.js'
import { LayerNorm } from './layernorm.js'
import { Embedding } from './embedding.js'

/** Gives the tensor named `name` with exactly `shape`. */
export type TensorSource = (name: string, shape: readonly number[]) => Tensor

/** A TensorSource seen from one module path: `w.at('model.layers.0').get('input_layernorm.weight', [C])`. */
export class Weights {
  constructor(
    private readonly source: TensorSource,
    private readonly prefix = '',
  ) {}

  get(name: string, shape: readonly number[]): Tensor {
    const t = this.source(this.prefix + name, shape)
    // a source must give exactly what was asked for (tensorShapes' empty stand-ins, never used, excepted)
    if (!sameShape(t.shape, shape) && t.size !== 0)
      fail('Weights', `${this.prefix + name} came as ${shapeStr(t.shape)}, expected ${shapeStr(shape)}`)
    return t
  }

  at(path: string): Weights {
    return new Weights(this.source, `${this.prefix}${path}.`)
  }

  /** y = x·Wᵀ (+ b) with W (out, in) and b (out) from here: `weight` and `bias`. */
  linear(inFeatures: number, outFeatures: number, { bias = false } = {}): Linear {
    const weight = this.get('weight', [outFeatures, inFeatures])
    return new Linear(
      inFeatures,
      outFeatures,
      { bias },
      { weight, bias: bias ? this.get('bias', [outFeatures]) : null },
    )
  }

  /** GPT-2's layout, y = x·W + b with W (in, out): `weight` and `bias` from here. */
  conv1d(inFeatures: number, outFeatures: number): Conv1D {
    const weight = this.get('weight', [inFeatures, outFeatures])
    return new Conv1D(inFeatures, outFeatures, {}, { weight, bias: this.get('bias', [outFeatures]) })
  }

  layerNorm(dim: number, eps: number): LayerNorm {
    return Object.assign(new LayerNorm(dim, { eps }), {
      weight: this.get('weight', [dim]),
      bias: this.get('bias', [dim]),
    })
  }

  embedding(numEmbeddings: number, embeddingDim: number): Embedding {
    return new Embedding(numEmbeddings, embeddingDim, this.get('weight', [numEmbeddings, embeddingDim]))
  }
}

/**
 * A fresh init as transformers draws one: N(0, std²) matrices and embeddings, ones for 1-D weights (norms), zeros
 * for biases. Every tensor is a trainable parameter.
 */
export function initWeights(std = 0.02): Weights {
  return new Weights((name, shape) => {
    const data = new Float32Array(sizeOf(shape))
    if (name.endsWith('bias')) data.fill(0)
    else if (shape.length === 1) data.fill(1)
    else for (let i = 0; i < data.length; i++) data[i] = std * randomNormal()
    return new Tensor(data, shape, true)
  })
}

/**
 * The name and shape of every tensor `build` asks for, learned without allocating any of them: each request gets an
 * empty stand-in, and the half-built model is dropped. Shared tensors (a tied head) are asked for once.
 */
export function tensorShapes(build: (w: Weights) => unknown): Map<string, number[]> {
  const shapes = new Map<string, number[]>()
  const empty = new Tensor(new Float32Array(0), [0])
  build(
    new Weights((name, shape) => {
      if (shapes.has(name)) fail('tensorShapes', `${name} is asked for twice`)
      shapes.set(name, [...shape])
      return empty
    }),
  )
  return shapes
}
