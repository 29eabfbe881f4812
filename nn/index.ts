// nn: modules that own tensors and call ops. `import { nn } from 'tenny'` then `new nn.Linear(4, 2)`.
// Browser-safe: files by path come from index-node.ts, the `nn` of the node entry.
export { Module } from './module.js'
export { Linear, Conv1D, type LinearLike } from './linear.js'
export { Embedding } from './embedding.js'
export { LayerNorm } from './layernorm.js'
export { Dropout } from './dropout.js'
export { CausalSelfAttention, KVCache } from './attention.js'
export { MLP, Block, GPT, type GPTConfig } from './gpt.js'
export { sampleNext, type SampleOptions } from './sampling.js'
export { QuantizedLinear, quantize, type QuantizeModelOptions, type QuantizationError } from './quantized.js'
export { type FuseReport } from './quantized.js'
export { type QuantMode, type QuantizeOptions, type QuantizedWeights } from '../ops/quant.js'
export { LoRALinear, loraScale, type LoRAOptions, type LoRAInit, type BaseLayer, type ScaleRule } from './lora.js'
export { PiSSALinear } from './pissa.js'
export { DoRALinear } from './dora.js'
export { NamedAdapters, applyLoRA, addAdapter, mergeLoRA, printTrainable, loraLayers } from './lora-model.js'
export { setAdapters, setAdapter, disableAdapters, loraAdapters, adapterStack, adapterNames } from './lora-model.js'
export { getAdapter, activeAdapter, type ApplyLoRAOptions, type AdapterOptions, type Targets } from './lora-model.js'
export { type Adapted, type Applied, type Merged } from './lora-model.js'
export { loraReport, adapterReport, subspaceSimilarity, type LoRALayerReport } from './files/lora-report.js'
export { adapterFiles, loadAdapterFiles, baseHash, type AdapterFiles } from './files/adapters.js'
export { peftFiles, importPEFTFiles, mlxFiles, importMLXFiles } from './files/interop.js'
export { checkpointToBytes, checkpointFromBytes, optimizerToBytes, loadOptimizerBytes } from './files/checkpoint.js'
export { LlamaForCausalLM, LlamaModel, LlamaDecoderLayer, LlamaAttention, LlamaMLP, RMSNorm } from './llama.js'
export { type LlamaConfig, type RopeScaling } from './llama.js'
export { GPT2LMHeadModel, GPT2Model, GPT2Block, GPT2Attention, GPT2MLP, type GPT2Config } from './gpt2.js'
export { Weights, initWeights, tensorShapes, type TensorSource } from './weights.js'
export { generate, type CausalLM, type GenerateOptions } from './generate.js'
export {
  pretrainedFromFiles,
  type Pretrained,
  type PretrainedModel,
  type PretrainedOptions,
} from './files/pretrained.js'
export {
  Tokenizer,
  tokenizerFromFiles,
  TOKENIZER_FILES,
  type ChatMessage,
  type ChatOptions,
  type TokenizerOptions,
} from './files/tokenizer.js'
