// nn: modules that own tensors and call ops. `import { nn } from 'tenny'` then `new nn.Linear(4, 2)`.
export { Module } from './module'
export { Linear, type LinearLike } from './linear'
export { Embedding } from './embedding'
export { LayerNorm } from './layernorm'
export { Dropout } from './dropout'
export { CausalSelfAttention, KVCache } from './attention'
export { MLP, Block, GPT, type GPTConfig } from './gpt'
export { sampleNext, type SampleOptions } from './sampling'
