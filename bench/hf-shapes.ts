// The real model sizes the Hugging Face rows measure, as config.json objects: SmolLM2-135M's (its published
// config) and GPT-2 small's. writeRandomFolder writes a Hugging Face folder of that shape with random weights,
// stored as the hub stores each (SmolLM2 in BF16, GPT-2 in F32), one tensor at a time.
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { manualSeed, fastStream } from '../src/random'
import { tensorShapes } from '../nn/weights'
import { readConfig } from '../nn/files/pretrained-config'
import { LlamaForCausalLM } from '../nn/llama'
import { GPT2LMHeadModel } from '../nn/gpt2'

export const HF_SHAPES = {
  smollm2: {
    label: 'SmolLM2-135M shape (Llama: 576 wide, 30 layers, 9 heads / 3 kv, vocab 49,152, tied)',
    dtype: 'BF16',
    config: {
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      hidden_size: 576,
      intermediate_size: 1536,
      num_hidden_layers: 30,
      num_attention_heads: 9,
      num_key_value_heads: 3,
      vocab_size: 49152,
      max_position_embeddings: 8192,
      rms_norm_eps: 1e-5,
      rope_theta: 100000,
      rope_scaling: null,
      hidden_act: 'silu',
      tie_word_embeddings: true,
      torch_dtype: 'bfloat16',
    },
  },
  gpt2: {
    label: 'GPT-2 small shape (768 wide, 12 layers, 12 heads, vocab 50,257, tied)',
    dtype: 'F32',
    config: {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      vocab_size: 50257,
      n_positions: 1024,
      n_embd: 768,
      n_layer: 12,
      n_head: 12,
      activation_function: 'gelu_new',
      layer_norm_epsilon: 1e-5,
      resid_pdrop: 0.1,
      embd_pdrop: 0.1,
      attn_pdrop: 0.1,
    },
  },
} as const
export type HFShape = keyof typeof HF_SHAPES

/** Write config.json and model.safetensors: uniform weights of std ≈ 0.02, ones for norms, zeros for biases. */
export function writeRandomFolder(dir: string, shape: HFShape, seed = 1): void {
  const { config, dtype } = HF_SHAPES[shape]
  const arch = readConfig('writeRandomFolder', config)
  const shapes = tensorShapes((w) =>
    arch.arch === 'llama' ? new LlamaForCausalLM(arch.config, w) : new GPT2LMHeadModel(arch.config, w),
  )
  const bytesPer = dtype === 'BF16' ? 2 : 4
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } }
  let offset = 0
  for (const [name, s] of shapes) {
    const size = s.reduce((a, d) => a * d, bytesPer)
    header[name] = { dtype, shape: s, data_offsets: [offset, offset + size] }
    offset += size
  }
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2))
  let json = JSON.stringify(header)
  json += ' '.repeat((8 - (json.length % 8)) % 8)
  const fd = openSync(join(dir, 'model.safetensors'), 'w')
  try {
    const head = new Uint8Array(8)
    new DataView(head.buffer).setBigUint64(0, BigInt(json.length), true)
    writeSync(fd, head)
    writeSync(fd, new TextEncoder().encode(json))
    manualSeed(seed)
    const next = fastStream()
    for (const [name, s] of shapes) {
      const values = new Float32Array(s.reduce((a, d) => a * d, 1))
      if (name.endsWith('bias')) values.fill(0)
      else if (s.length === 1) values.fill(1)
      else for (let i = 0; i < values.length; i++) values[i] = 0.035 * (next() / 2 ** 31 - 1) // U(±0.035): std 0.02
      let bytes: Uint8Array = new Uint8Array(values.buffer)
      if (dtype === 'BF16') {
        const bits = new Uint32Array(values.buffer),
          half = new Uint16Array(values.length)
        for (let i = 0; i < half.length; i++) half[i] = bits[i] >>> 16 // bfloat16: the top half (truncated)
        bytes = new Uint8Array(half.buffer)
      }
      writeSync(fd, bytes)
    }
  } finally {
    closeSync(fd)
  }
}
