// The Llama family in one file, from small pieces to the whole: RMSNorm, rotary embeddings, attention with
// grouped-query heads, the SwiGLU MLP, the decoder layer, the model. One architecture covers Llama 2 and 3,
// SmolLM2, TinyLlama, Mistral and Qwen2 (which adds q/k/v biases). Fields carry Hugging Face's names
// (`model.layers.0.self_attn.q_proj`), so the state-dict keys are the checkpoint's, and LoRA targets and exported
// adapters use the names PEFT and mlx-lm expect. Built from a checkpoint's tensors (nn/files/pretrained.ts).
import { Tensor } from '../src/tensor.js'
import { fail } from '../src/errors.js'
import { add } from '../ops/elementwise.js'
import { swiglu } from '../ops/swiglu.js'
import { reshape, expand } from '../ops/movement.js'
import { crossEntropy } from '../ops/nn.js'
import { causalAttention } from '../ops/attention.js'
import { rmsNorm } from '../ops/rmsnorm.js'
import { rotary, type RotaryTables } from '../ops/rotary.js'
import { Module } from './module.js'
import { Linear, type LinearLike } from './linear.js'
import type { Embedding } from './embedding.js'
import { KVCache } from './attention.js'
import { Weights, initWeights } from './weights.js'
import { generate, type CausalLM, type GenerateOptions } from './generate.js'

/** Stretched rotary frequencies for contexts longer than pretraining's: `linear` divides them all by `factor`;
 * `llama3` (Llama 3.1, 3.2) divides only the low ones, blending across a middle band. */
export type RopeScaling =
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3'
      factor: number
      lowFreqFactor: number
      highFreqFactor: number
      originalMaxPositionEmbeddings: number
    }

/** A config.json's fields, camelCased (nn/files/pretrained.ts reads and checks them). */
export type LlamaConfig = {
  modelType: 'llama' | 'mistral' | 'qwen2'
  vocabSize: number
  hiddenSize: number
  intermediateSize: number
  numHiddenLayers: number
  numAttentionHeads: number
  numKeyValueHeads: number
  headDim: number
  maxPositionEmbeddings: number
  rmsNormEps: number
  ropeTheta: number
  ropeScaling: RopeScaling | null
  tieWordEmbeddings: boolean
  qkvBias: boolean // Qwen2, or Llama's attention_bias
  oBias: boolean // Llama's attention_bias
  mlpBias: boolean
  slidingWindow: number | null // Mistral's (and Qwen2's use_sliding_window) local attention span
}

/** y = x · rsqrt(mean(x²) + eps) · weight over the last axis, in float32 as Hugging Face computes it. */
export class RMSNorm extends Module {
  constructor(
    public weight: Tensor, // (dim)
    readonly eps: number,
  ) {
    super()
  }

  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps)
  }
}

/** The inverse frequencies 1 / θ^(2i/d) of rotary embeddings, i < d/2, stretched as `scaling` says. */
export function ropeFrequencies(theta: number, headDim: number, scaling: RopeScaling | null): Float32Array {
  // float32 at each step, as PyTorch computes them: the angles then match transformers' to the last bit or so
  const inv = Float32Array.from(
    { length: headDim / 2 },
    (_, i) => 1 / Math.fround(theta ** Math.fround((2 * i) / headDim)),
  )
  if (!scaling) return inv
  if (scaling.type === 'linear') return inv.map((f) => f / scaling.factor)
  const { factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositionEmbeddings: old } = scaling
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f
    if (wavelen < old / high) return f // high frequencies: kept
    if (wavelen > old / low) return f / factor // low frequencies: stretched by factor
    const smooth = (old / wavelen - low) / (high - low) // in between: blended
    return (1 - smooth) * (f / factor) + smooth * f
  })
}

/** cos and sin of the angles position · frequency for positions start … start + T − 1: (T, headDim/2) tables. */
export function ropeTables(freqs: Float32Array, start: number, T: number): RotaryTables {
  const half = freqs.length
  const cos = new Float32Array(T * half),
    sin = new Float32Array(T * half)
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround((start + t) * freqs[i])
      cos[t * half + i] = Math.cos(angle)
      sin[t * half + i] = Math.sin(angle)
    }
  }
  return { cos, sin, positions: T }
}

/**
 * Each of nKv heads (B, T, nKv·hd) repeated `rep` times side by side → (B, T, nKv·rep·hd): grouped-query
 * attention.
 */
function repeatKV(x: Tensor, nKv: number, rep: number): Tensor {
  if (rep === 1) return x
  const [B, T, C] = x.shape
  const hd = C / nKv
  const copies = expand(reshape(x, [B, T, nKv, 1, hd]), [B, T, nKv, rep, hd]) // (B, T, nKv, rep, hd)
  return reshape(copies, [B, T, nKv * rep * hd]) // (B, T, nHead·hd): query head h reads kv head ⌊h / rep⌋
}

/** Causal self-attention with rotary positions and numKeyValueHeads ≤ numAttentionHeads shared key/value heads. */
export class LlamaAttention extends Module {
  q_proj: LinearLike
  k_proj: LinearLike
  v_proj: LinearLike
  o_proj: LinearLike
  readonly nHead: number
  readonly nKvHead: number

  constructor(c: LlamaConfig, w: Weights) {
    super()
    const { hiddenSize: C, headDim: hd } = c
    this.nHead = c.numAttentionHeads
    this.nKvHead = c.numKeyValueHeads
    this.q_proj = w.at('q_proj').linear(C, this.nHead * hd, { bias: c.qkvBias })
    this.k_proj = w.at('k_proj').linear(C, this.nKvHead * hd, { bias: c.qkvBias })
    this.v_proj = w.at('v_proj').linear(C, this.nKvHead * hd, { bias: c.qkvBias })
    this.o_proj = w.at('o_proj').linear(this.nHead * hd, C, { bias: c.oBias })
  }

  /**
   * x (B, T, C) → (B, T, C). With a cache (inference only), x holds the positions after cache.length earlier ones.
   */
  forward(x: Tensor, rope: RotaryTables, cache?: KVCache): Tensor {
    const rep = this.nHead / this.nKvHead
    const q = rotary(this.q_proj.forward(x), rope, this.nHead) // (B, T, nHead·hd)
    const k = repeatKV(rotary(this.k_proj.forward(x), rope, this.nKvHead), this.nKvHead, rep) // (B, T, nHead·hd)
    const v = repeatKV(this.v_proj.forward(x), this.nKvHead, rep) // (B, T, nHead·hd)
    let y: Tensor
    if (cache) {
      // NOTE: the cache copies k and v, so no gradient could reach the projections through it
      if (k.requiresGrad || v.requiresGrad) fail('LlamaAttention', 'a KV cache is for inference; run it under noGrad()')
      cache.append(k, v) // keys are cached after their rotation, at their own positions
      y = causalAttention(q, cache.k, cache.v, this.nHead, cache.length) // (B, T, nHead·hd)
    } else {
      y = causalAttention(q, k, v, this.nHead) // (B, T, nHead·hd), scaled by 1/√hd
    }
    return this.o_proj.forward(y) // (B, T, C): o_proj mixes the heads
  }
}

/** SwiGLU feed-forward: down(silu(gate(x)) ⊙ up(x)), C → intermediateSize → C. */
export class LlamaMLP extends Module {
  gate_proj: LinearLike
  up_proj: LinearLike
  down_proj: LinearLike

  constructor(c: LlamaConfig, w: Weights) {
    super()
    const { hiddenSize: C, intermediateSize: I, mlpBias: bias } = c
    this.gate_proj = w.at('gate_proj').linear(C, I, { bias })
    this.up_proj = w.at('up_proj').linear(C, I, { bias })
    this.down_proj = w.at('down_proj').linear(I, C, { bias })
  }

  forward(x: Tensor): Tensor {
    const h = swiglu(this.gate_proj.forward(x), this.up_proj.forward(x)) // (B, T, I): silu(gate) ⊙ up, fused
    return this.down_proj.forward(h) // (B, T, C)
  }
}

/** Pre-norm decoder layer: x + attn(norm(x)), then x + mlp(norm(x)). */
export class LlamaDecoderLayer extends Module {
  self_attn: LlamaAttention
  mlp: LlamaMLP
  input_layernorm: RMSNorm
  post_attention_layernorm: RMSNorm

  constructor(c: LlamaConfig, w: Weights) {
    super()
    const C = c.hiddenSize
    this.self_attn = new LlamaAttention(c, w.at('self_attn'))
    this.mlp = new LlamaMLP(c, w.at('mlp'))
    this.input_layernorm = new RMSNorm(w.get('input_layernorm.weight', [C]), c.rmsNormEps)
    this.post_attention_layernorm = new RMSNorm(w.get('post_attention_layernorm.weight', [C]), c.rmsNormEps)
  }

  forward(x: Tensor, rope: RotaryTables, cache?: KVCache): Tensor {
    x = add(x, this.self_attn.forward(this.input_layernorm.forward(x), rope, cache)) // (B, T, C)
    return add(x, this.mlp.forward(this.post_attention_layernorm.forward(x))) // (B, T, C)
  }
}

/** Token embeddings, the decoder layers and a final norm: ids (B, T) → hidden states (B, T, C). */
export class LlamaModel extends Module {
  embed_tokens: Embedding
  layers: LlamaDecoderLayer[]
  norm: RMSNorm

  constructor(c: LlamaConfig, w: Weights) {
    super()
    this.embed_tokens = w.at('embed_tokens').embedding(c.vocabSize, c.hiddenSize)
    this.layers = Array.from({ length: c.numHiddenLayers }, (_, i) => new LlamaDecoderLayer(c, w.at(`layers.${i}`)))
    this.norm = new RMSNorm(w.get('norm.weight', [c.hiddenSize]), c.rmsNormEps)
  }
}

/** A Llama-family language model: idx (B, T) → logits (B, T, vocabSize), its tensors from `w` (default: an init). */
export class LlamaForCausalLM extends Module implements CausalLM {
  /** The folder or hub name it was loaded from (transformers' name_or_path), which exported adapters name. */
  nameOrPath: string | null = null
  readonly config: LlamaConfig
  model: LlamaModel
  lm_head: LinearLike
  private readonly freqs: Float32Array // rotary inverse frequencies (headDim/2)

  constructor(config: LlamaConfig, w: Weights = initWeights()) {
    super()
    this.config = config
    const { vocabSize: V, hiddenSize: C } = config
    this.model = new LlamaModel(config, w.at('model'))
    // tied: one Tensor under two names, as in the checkpoint, which stores it once (model.embed_tokens.weight)
    const tied = { weight: this.model.embed_tokens.weight, bias: null }
    this.lm_head = config.tieWordEmbeddings ? new Linear(C, V, { bias: false }, tied) : w.at('lm_head').linear(C, V)
    this.freqs = ropeFrequencies(config.ropeTheta, config.headDim, config.ropeScaling)
  }

  /** Positions generate() keeps: max_position_embeddings, or the sliding window when that is shorter. */
  get contextSize(): number {
    return Math.min(this.config.maxPositionEmbeddings, this.config.slidingWindow ?? Infinity)
  }

  get vocabSize(): number {
    return this.config.vocabSize
  }

  /** Final hidden states (B, T, C). With caches (one per layer), idx follows caches[0].length earlier positions. */
  hidden(idx: Tensor, caches?: KVCache[]): Tensor {
    if (idx.ndim !== 2) fail('LlamaForCausalLM', `idx must be (B, T) token ids, got shape (${idx.shape.join(',')})`)
    const T = idx.shape[1]
    const start = caches ? caches[0].length : 0
    const window = this.config.slidingWindow
    if (window !== null && start + T > window)
      fail('LlamaForCausalLM', `${start + T} positions exceed sliding_window ${window}, which is not implemented`)
    const rope = ropeTables(this.freqs, start, T) // the angles of positions start … start + T − 1
    let x = this.model.embed_tokens.forward(idx) // (B, T, C)
    for (const [i, layer] of this.model.layers.entries()) x = layer.forward(x, rope, caches?.[i]) // (B, T, C)
    return this.model.norm.forward(x) // (B, T, C)
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
    // keys and values are cached after repeatKV, as wide as the queries: nothing is repeated per generated token
    const width = this.config.numAttentionHeads * this.config.headDim
    return this.model.layers.map(() => new KVCache(batch, capacity, width))
  }

  /** Extend idx (B, T) by maxNewTokens tokens with a KV cache (nn/generate.ts). */
  generate(idx: Tensor, maxNewTokens: number, options: GenerateOptions = {}): Tensor {
    return generate(this, idx, maxNewTokens, options)
  }
}
