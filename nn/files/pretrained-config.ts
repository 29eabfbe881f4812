// A Hugging Face config.json read into the config of the architecture it names, every field checked: a wrong type
// or an unknown model_type, rope_scaling type or activation is one line naming the field and the value. Defaults
// are transformers' (LlamaConfig, MistralConfig, Qwen2Config, GPT2Config) for fields a file leaves out.
import { fail, quote } from '../../src/errors.js'
import type { LlamaConfig, RopeScaling } from '../llama.js'
import type { GPT2Config } from '../gpt2.js'

export type HFConfig = Record<string, unknown>
export type ArchConfig = { arch: 'llama'; config: LlamaConfig } | { arch: 'gpt2'; config: GPT2Config }

const LLAMA_TYPES = ['llama', 'mistral', 'qwen2'] as const
// transformers' defaults per model_type for the fields that differ
const CONTEXT = { llama: 2048, mistral: 4096 * 32, qwen2: 32768 }
const EPS = { llama: 1e-6, mistral: 1e-6, qwen2: 1e-6 }

/** Typed reads of one JSON object, each failing with `op: <where>.<key> must be …, got <value>`. */
function fields(op: string, where: string, json: Record<string, unknown>) {
  const has = (key: string) => Object.hasOwn(json, key) && json[key] !== null && json[key] !== undefined
  const bad = (key: string, what: string): never => fail(op, `${where}.${key} must be ${what}, got ${quote(json[key])}`)
  return {
    has,
    int(key: string, fallback?: number): number {
      if (!has(key)) return fallback ?? bad(key, 'a positive integer')
      const v = json[key]
      return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : bad(key, 'a positive integer')
    },
    number(key: string, fallback: number, { min = 0, below = Infinity } = {}): number {
      if (!has(key)) return fallback
      const v = json[key]
      return typeof v === 'number' && v >= min && v < below ? v : bad(key, `a number in [${min}, ${below})`)
    },
    positive(key: string, fallback?: number): number {
      if (!has(key)) return fallback ?? bad(key, 'a number > 0')
      const v = json[key]
      return typeof v === 'number' && v > 0 && v < Infinity ? v : bad(key, 'a number > 0')
    },
    bool(key: string, fallback: boolean): boolean {
      if (!has(key)) return fallback
      const v = json[key]
      return typeof v === 'boolean' ? v : bad(key, 'true or false')
    },
    string(key: string, fallback: string): string {
      if (!has(key)) return fallback
      const v = json[key]
      return typeof v === 'string' ? v : bad(key, 'a string')
    },
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** rope_scaling (or transformers 5's rope_parameters): none, `linear` or `llama3`; any other type is refused. */
function ropeScaling(op: string, json: HFConfig): { theta: number | null; scaling: RopeScaling | null } {
  const key = isObject(json.rope_parameters) ? 'rope_parameters' : 'rope_scaling'
  const spec = json[key]
  if (spec === undefined || spec === null) return { theta: null, scaling: null }
  if (!isObject(spec)) fail(op, `config.${key} must be an object or null, got ${quote(spec)}`)
  const f = fields(op, `config.${key}`, spec)
  const theta = f.has('rope_theta') ? f.positive('rope_theta') : null
  const typeKey = f.has('rope_type') ? 'rope_type' : 'type'
  const type = f.string(typeKey, 'default')
  if (type === 'default') return { theta, scaling: null }
  if (type === 'linear') return { theta, scaling: { type, factor: f.positive('factor') } }
  if (type === 'llama3') {
    const scaling = {
      type,
      factor: f.positive('factor'),
      lowFreqFactor: f.positive('low_freq_factor'),
      highFreqFactor: f.positive('high_freq_factor'),
      originalMaxPositionEmbeddings: f.int('original_max_position_embeddings'),
    } as const
    if (!(scaling.highFreqFactor > scaling.lowFreqFactor))
      fail(op, `config.${key}: high_freq_factor ${scaling.highFreqFactor} must exceed low_freq_factor`)
    return { theta, scaling }
  }
  return fail(op, `config.${key}.${typeKey} ${quote(type)} is not supported (supported: default, linear, llama3)`)
}

function llamaConfig(op: string, json: HFConfig, modelType: LlamaConfig['modelType']): LlamaConfig {
  const f = fields(op, 'config', json)
  const hiddenSize = f.int('hidden_size')
  const numAttentionHeads = f.int('num_attention_heads')
  const numKeyValueHeads = f.int('num_key_value_heads', numAttentionHeads)
  if (numAttentionHeads % numKeyValueHeads !== 0)
    fail(op, `config.num_key_value_heads ${numKeyValueHeads} must divide num_attention_heads ${numAttentionHeads}`)
  if (!f.has('head_dim') && hiddenSize % numAttentionHeads !== 0)
    fail(op, `config.hidden_size ${hiddenSize} must split evenly into num_attention_heads ${numAttentionHeads}`)
  const headDim = f.int('head_dim', hiddenSize / numAttentionHeads)
  if (headDim % 2 !== 0) fail(op, `config.head_dim ${headDim} must be even for rotary embeddings`)
  const act = f.string('hidden_act', 'silu')
  if (act !== 'silu' && act !== 'swish') fail(op, `config.hidden_act ${quote(act)} is not supported (supported: silu)`)
  const { theta, scaling } = ropeScaling(op, json)
  const attentionBias = modelType === 'llama' && f.bool('attention_bias', false)
  const window = modelType === 'mistral' || (modelType === 'qwen2' && f.bool('use_sliding_window', false))
  return {
    modelType,
    vocabSize: f.int('vocab_size'),
    hiddenSize,
    intermediateSize: f.int('intermediate_size'),
    numHiddenLayers: f.int('num_hidden_layers'),
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    maxPositionEmbeddings: f.int('max_position_embeddings', CONTEXT[modelType]),
    rmsNormEps: f.positive('rms_norm_eps', EPS[modelType]),
    ropeTheta: theta ?? f.positive('rope_theta', 10000),
    ropeScaling: scaling,
    tieWordEmbeddings: f.bool('tie_word_embeddings', false),
    qkvBias: modelType === 'qwen2' || attentionBias,
    oBias: attentionBias,
    mlpBias: modelType === 'llama' && f.bool('mlp_bias', false),
    // MistralConfig's default window is 4096; an explicit null (Mistral v0.2 on) means none
    slidingWindow: !window || json.sliding_window === null ? null : f.int('sliding_window', 4096),
  }
}

const GELU = { gelu_new: 'tanh', gelu_pytorch_tanh: 'tanh', gelu_fast: 'tanh', gelu: 'none' } as const

function gpt2Config(op: string, json: HFConfig): GPT2Config {
  const f = fields(op, 'config', json)
  const nEmbd = f.int('n_embd', 768),
    nHead = f.int('n_head', 12)
  if (nEmbd % nHead !== 0) fail(op, `config.n_embd ${nEmbd} must split evenly into n_head ${nHead}`)
  const act = f.string('activation_function', 'gelu_new')
  if (!Object.hasOwn(GELU, act))
    fail(op, `config.activation_function ${quote(act)} is not supported (supported: ${Object.keys(GELU).join(', ')})`)
  // the variants transformers offers that change the math: refused rather than computed otherwise
  if (!f.bool('scale_attn_weights', true)) fail(op, 'config.scale_attn_weights false is not supported')
  if (f.bool('scale_attn_by_inverse_layer_idx', false))
    fail(op, 'config.scale_attn_by_inverse_layer_idx true is not supported')
  if (f.bool('add_cross_attention', false)) fail(op, 'config.add_cross_attention true is not supported')
  return {
    vocabSize: f.int('vocab_size', 50257),
    nPositions: f.int('n_positions', 1024),
    nEmbd,
    nLayer: f.int('n_layer', 12),
    nHead,
    nInner: f.int('n_inner', 4 * nEmbd),
    gelu: GELU[act as keyof typeof GELU],
    layerNormEpsilon: f.positive('layer_norm_epsilon', 1e-5),
    residPdrop: f.number('resid_pdrop', 0.1, { below: 1 }),
    embdPdrop: f.number('embd_pdrop', 0.1, { below: 1 }),
    attnPdrop: f.number('attn_pdrop', 0.1, { below: 1 }),
    tieWordEmbeddings: f.bool('tie_word_embeddings', true),
  }
}

/** config.json's parsed object → the architecture it names and that architecture's checked config. */
export function readConfig(op: string, json: unknown): ArchConfig {
  if (!isObject(json)) return fail(op, `config.json must hold a JSON object, got ${quote(json)}`)
  const type = json.model_type
  if (type === 'gpt2') return { arch: 'gpt2', config: gpt2Config(op, json) }
  const llama = LLAMA_TYPES.find((t) => t === type)
  if (llama) return { arch: 'llama', config: llamaConfig(op, json, llama) }
  return fail(op, `config.model_type ${quote(type)} is not supported (supported: gpt2, ${LLAMA_TYPES.join(', ')})`)
}
