// Gradient checkpointing (mlx-lm's --grad-checkpoint): each decoder layer of a Hugging Face model keeps only its
// input for the backward pass and runs again, this time recording its graph, when the gradient reaches it. One
// layer's activations are alive at a time instead of every layer's, for one more forward pass per step.
import { Tensor, fromOp, addGrad, noGrad, isGradEnabled } from '../../src/tensor'
import { rngState, setRngState } from '../../src/random'
import { nn } from '../../src/node'

type Layer = nn.LlamaDecoderLayer | nn.GPT2Block
type Forward = (x: Tensor, ...rest: never[]) => Tensor

/** The model's decoder layers: Llama's model.layers, GPT-2's transformer.h. */
export function decoderLayers(model: nn.LlamaForCausalLM | nn.GPT2LMHeadModel): Layer[] {
  return model instanceof nn.LlamaForCausalLM ? model.model.layers : model.transformer.h
}

/** Make every decoder layer of `model` checkpointed; returns how many. */
export function checkpointLayers(model: nn.LlamaForCausalLM | nn.GPT2LMHeadModel): number {
  const layers = decoderLayers(model)
  for (const layer of layers) {
    const forward = layer.forward.bind(layer) as Forward
    layer.forward = ((x: Tensor, ...rest: never[]) => checkpointed(layer, forward, x, rest)) as Layer['forward']
  }
  return layers.length
}

/**
 * y = layer(x) computed without a graph; its backward recomputes the layer from x with one (the same dropout masks:
 * the random stream is rewound for it) and sends dy through it, to x and to the layer's trainable parameters.
 */
function checkpointed(layer: Layer, forward: Forward, x: Tensor, rest: never[]): Tensor {
  const params = layer.trainableParameters()
  if (!isGradEnabled() || (!x.requiresGrad && params.length === 0)) return forward(x, ...rest) // nothing to train
  const before = rngState()
  const y = noGrad(() => forward(x, ...rest)) // (B, T, C), and no activations kept
  return fromOp(y.data, y.shape, [x, ...params], (dy) => {
    const after = rngState()
    setRngState(before) // the recomputation draws what the forward drew
    const input = new Tensor(x.data, x.shape, x.requiresGrad) // a leaf standing for x: its grad is x's
    forward(input, ...rest).backward(dy) // the layer's parameters (leaves) accumulate their gradients here
    setRngState(after)
    if (input.grad) addGrad(x, input.grad.data)
  })
}
