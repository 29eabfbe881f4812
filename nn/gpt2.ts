// GPT-2 as Hugging Face stores it, in one file from small pieces to the whole: attention, MLP, block, model.
// Fields carry transformers' names (`transformer.h.0.attn.c_attn`), so state-dict keys are the checkpoint's and
// LoRA targets and exported adapters use the names PEFT expects. Its layers are Conv1D: weights stored (in, out).
// NOTE: attn_pdrop is not applied (the fused attention has no dropout on its probabilities); embd_pdrop and
// resid_pdrop are, in training mode.
import { Tensor } from '../src/tensor.js'
import { fail } from '../src/errors.js'
import { add, gelu } from '../ops/elementwise.js'
import { split } from '../ops/movement.js'
import { crossEntropy } from '../ops/nn.js'
import { causalAttention } from '../ops/attention.js'
import { Module } from './module.js'
import { Linear, type LinearLike } from './linear.js'
import type { Embedding } from './embedding.js'
import type { LayerNorm } from './layernorm.js'
import { Dropout } from './dropout.js'
import { KVCache } from './attention.js'
import { Weights, initWeights } from './weights.js'
import { generate, type CausalLM, type GenerateOptions } from './generate.js'

/** A config.json's fields, camelCased (nn/files/pretrained-config.ts reads and checks them). */
export type GPT2Config = {
  vocabSize: number
  nPositions: number
  nEmbd: number
  nLayer: number
  nHead: number
  nInner: number
  gelu: 'tanh' | 'none' // gelu_new (and gelu_pytorch_tanh, gelu_fast) is the tanh form; gelu the exact one
  layerNormEpsilon: number
  residPdrop: number
  embdPdrop: number
  attnPdrop: number
  tieWordEmbeddings: boolean
}

/** Multi-head causal self-attention with q, k, v packed in one projection, c_attn: (C) → (3C) in that order. */
export class GPT2Attention extends Module {
  c_attn: LinearLike
  c_proj: LinearLike
  resid_dropout: Dropout
  readonly nHead: number

  constructor(c: GPT2Config, w: Weights) {
    super()
    this.nHead = c.nHead
    this.c_attn = w.at('c_attn').conv1d(c.nEmbd, 3 * c.nEmbd)
    this.c_proj = w.at('c_proj').conv1d(c.nEmbd, c.nEmbd)
    this.resid_dropout = new Dropout(c.residPdrop)
  }

  /**
   * x (B, T, C) → (B, T, C). With a cache (inference only), x holds the positions after cache.length earlier ones.
   */
  forward(x: Tensor, cache?: KVCache): Tensor {
    const C = x.shape[2]
    const [q, k, v] = split(this.c_attn.forward(x), C, 2) // (B, T, 3C) → 3 × (B, T, C)
    let y: Tensor
    if (cache) {
      // NOTE: the cache copies k and v, so no gradient could reach c_attn through it
      if (k.requiresGrad || v.requiresGrad) fail('GPT2Attention', 'a KV cache is for inference; run it under noGrad()')
      cache.append(k, v)
      y = causalAttention(q, cache.k, cache.v, this.nHead, cache.length) // (B, T, C)
    } else {
      y = causalAttention(q, k, v, this.nHead) // (B, T, C), scaled by 1/√(C/nHead)
    }
    return this.resid_dropout.forward(this.c_proj.forward(y)) // (B, T, C)
  }
}

/** The feed-forward half of a block: c_proj(gelu(c_fc(x))), C → nInner → C. */
export class GPT2MLP extends Module {
  c_fc: LinearLike
  c_proj: LinearLike
  dropout: Dropout
  readonly approximate: GPT2Config['gelu']

  constructor(c: GPT2Config, w: Weights) {
    super()
    this.c_fc = w.at('c_fc').conv1d(c.nEmbd, c.nInner)
    this.c_proj = w.at('c_proj').conv1d(c.nInner, c.nEmbd)
    this.dropout = new Dropout(c.residPdrop)
    this.approximate = c.gelu
  }

  forward(x: Tensor): Tensor {
    const h = gelu(this.c_fc.forward(x), { approximate: this.approximate }) // (B, T, nInner)
    return this.dropout.forward(this.c_proj.forward(h)) // (B, T, C)
  }
}

/** Pre-LayerNorm block: x + attn(ln_1(x)), then x + mlp(ln_2(x)). */
export class GPT2Block extends Module {
  ln_1: LayerNorm
  attn: GPT2Attention
  ln_2: LayerNorm
  mlp: GPT2MLP

  constructor(c: GPT2Config, w: Weights) {
    super()
    this.ln_1 = w.at('ln_1').layerNorm(c.nEmbd, c.layerNormEpsilon)
    this.attn = new GPT2Attention(c, w.at('attn'))
    this.ln_2 = w.at('ln_2').layerNorm(c.nEmbd, c.layerNormEpsilon)
    this.mlp = new GPT2MLP(c, w.at('mlp'))
  }

  forward(x: Tensor, cache?: KVCache): Tensor {
    x = add(x, this.attn.forward(this.ln_1.forward(x), cache)) // (B, T, C)
    return add(x, this.mlp.forward(this.ln_2.forward(x))) // (B, T, C)
  }
}

/** Token and learned position embeddings, the blocks and a final LayerNorm. */
export class GPT2Model extends Module {
  wte: Embedding
  wpe: Embedding
  drop: Dropout
  h: GPT2Block[]
  ln_f: LayerNorm

  constructor(c: GPT2Config, w: Weights) {
    super()
    this.wte = w.at('wte').embedding(c.vocabSize, c.nEmbd)
    this.wpe = w.at('wpe').embedding(c.nPositions, c.nEmbd)
    this.drop = new Dropout(c.embdPdrop)
    this.h = Array.from({ length: c.nLayer }, (_, i) => new GPT2Block(c, w.at(`h.${i}`)))
    this.ln_f = w.at('ln_f').layerNorm(c.nEmbd, c.layerNormEpsilon)
  }
}

/** GPT-2 with its language-model head: idx (B, T) → logits (B, T, vocabSize); tensors from `w` (default: an init). */
export class GPT2LMHeadModel extends Module implements CausalLM {
  /** The folder or hub name it was loaded from (transformers' name_or_path), which exported adapters name. */
  nameOrPath: string | null = null
  readonly config: GPT2Config
  transformer: GPT2Model
  lm_head: LinearLike

  constructor(config: GPT2Config, w: Weights = initWeights()) {
    super()
    this.config = config
    const { vocabSize: V, nEmbd: C } = config
    this.transformer = new GPT2Model(config, w.at('transformer'))
    // tied (GPT-2's own checkpoints): the head is wte's Tensor under a second name, stored once in the file
    const tied = { weight: this.transformer.wte.weight, bias: null }
    this.lm_head = config.tieWordEmbeddings ? new Linear(C, V, { bias: false }, tied) : w.at('lm_head').linear(C, V)
  }

  get contextSize(): number {
    return this.config.nPositions
  }

  get vocabSize(): number {
    return this.config.vocabSize
  }

  /** Final hidden states (B, T, C). With caches (one per block), idx follows caches[0].length earlier positions. */
  hidden(idx: Tensor, caches?: KVCache[]): Tensor {
    if (idx.ndim !== 2) fail('GPT2LMHeadModel', `idx must be (B, T) token ids, got shape (${idx.shape.join(',')})`)
    const T = idx.shape[1]
    const start = caches ? caches[0].length : 0
    if (start + T > this.config.nPositions)
      fail('GPT2LMHeadModel', `${start + T} positions exceed n_positions ${this.config.nPositions}`)
    const pos = Int32Array.from({ length: T }, (_, t) => start + t)
    let x = add(this.transformer.wte.forward(idx), this.transformer.wpe.forward(pos)) // (B, T, C) + (T, C)
    x = this.transformer.drop.forward(x)
    for (const [i, block] of this.transformer.h.entries()) x = block.forward(x, caches?.[i]) // (B, T, C)
    return this.transformer.ln_f.forward(x) // (B, T, C)
  }

  head(h: Tensor): Tensor {
    return this.lm_head.forward(h) // (B, T, vocabSize)
  }

  /** idx (B, T) token ids → logits (B, T, vocabSize). */
  forward(idx: Tensor): Tensor {
    return this.head(this.hidden(idx))
  }

  /** Mean cross-entropy of logits against targets (B, T) (already shifted; −100 ignored) → scalar. */
  loss(idx: Tensor, targets: Tensor): Tensor {
    return crossEntropy(this.forward(idx), targets)
  }

  newCaches(batch: number, capacity: number): KVCache[] {
    return this.transformer.h.map(() => new KVCache(batch, capacity, this.config.nEmbd))
  }

  /** Extend idx (B, T) by maxNewTokens tokens with a KV cache (nn/generate.ts). */
  generate(idx: Tensor, maxNewTokens: number, options: GenerateOptions = {}): Tensor {
    return generate(this, idx, maxNewTokens, options)
  }
}
