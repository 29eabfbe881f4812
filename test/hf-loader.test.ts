// The Hugging Face loader's refusals, each from a hand-made bad folder: one line naming the field or tensor and the
// value, and nothing read past the headers or allocated for the model before every tensor has been checked.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { parseSafetensors, serializeSafetensors, type StoredTensor } from '../src/formats/safetensors'
import { pretrainedFromFiles, loadPretrainedWith, type Shard } from '../nn/files/pretrained'
import { loadPretrained } from '../nn/files/pretrained-node'
import { withDir } from './fixtures'

const ROOT = 'test/fixtures/hf'
type Files = Record<string, Uint8Array>

function files(name: string): Files {
  const dir = join(ROOT, name)
  return Object.fromEntries(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]))
}
const text = (s: string) => new TextEncoder().encode(s)
const configOf = (f: Files) => JSON.parse(new TextDecoder().decode(f['config.json'])) as Record<string, unknown>
const withConfig = (f: Files, change: Record<string, unknown>): Files => ({
  ...f,
  'config.json': text(JSON.stringify({ ...configOf(f), ...change })),
})
/** The folder with `edit` applied to the tensors of one weights file (re-written as F32 where decoded). */
function withTensors(f: Files, edit: (t: Record<string, StoredTensor>) => void, file = 'model.safetensors'): Files {
  const { tensors } = parseSafetensors(f[file])
  edit(tensors)
  return { ...f, [file]: serializeSafetensors(tensors) }
}

/** pretrainedFromFiles refuses `f` with one line: `pretrainedFromFiles: ` then something matching `pattern`. */
function refuses(f: Record<string, unknown>, pattern: RegExp, options = {}): void {
  try {
    pretrainedFromFiles(f as Files, options)
  } catch (err) {
    const message = (err as Error).message
    assert.ok(message.startsWith('pretrainedFromFiles: '), message)
    assert.match(message, pattern)
    assert.not.match(message, /\n/)
    assert.ok(message.length < 500, `${message.length} characters`)
    return
  }
  assert.unreachable(`loaded, expected a refusal matching ${pattern}`)
}

test('unknown model_type, rope_scaling type or activation: refused naming the field and the value', () => {
  const llama = files('llama-tied-f32'),
    gpt2 = files('gpt2-f32')
  refuses(withConfig(llama, { model_type: 'bert' }), /config\.model_type "bert" is not supported \(supported: gpt2,/)
  refuses(
    withConfig(llama, { rope_scaling: { rope_type: 'yarn', factor: 4 } }),
    /config\.rope_scaling\.rope_type "yarn" is not supported \(supported: default, linear, llama3\)/,
  )
  refuses(withConfig(llama, { rope_scaling: { type: 'dynamic', factor: 2 } }), /config\.rope_scaling\.type "dynamic"/)
  refuses(withConfig(llama, { rope_scaling: { rope_type: 'llama3', factor: 8 } }), /rope_scaling\.low_freq_factor/)
  refuses(withConfig(llama, { hidden_act: 'gelu' }), /config\.hidden_act "gelu" is not supported \(supported: silu\)/)
  refuses(withConfig(gpt2, { activation_function: 'relu' }), /config\.activation_function "relu" is not supported/)
  refuses(withConfig(gpt2, { scale_attn_by_inverse_layer_idx: true }), /scale_attn_by_inverse_layer_idx true/)
})

test('config fields of the wrong type or out of range: refused naming the field, quoting at most 200 characters', () => {
  const llama = files('llama-tied-f32')
  refuses(withConfig(llama, { hidden_size: '32' }), /config\.hidden_size must be a positive integer, got "32"/)
  refuses(withConfig(llama, { num_key_value_heads: 3 }), /num_key_value_heads 3 must divide num_attention_heads 4/)
  refuses(withConfig(llama, { rms_norm_eps: -1 }), /config\.rms_norm_eps must be a number > 0, got -1/)
  refuses(withConfig(llama, { tie_word_embeddings: 'yes' }), /config\.tie_word_embeddings must be true or false/)
  refuses(withConfig(llama, { model_type: 'x'.repeat(100_000) }), /config\.model_type "x{150,}…/)
  let deep = '1' // 5,000 levels of nesting: no stack overflow, one line
  for (let i = 0; i < 5000; i++) deep = `[${deep}]`
  refuses({ ...llama, 'config.json': text(`{"model_type": ${deep}}`) }, /config\.json .*nests deeper than 64 levels/)
  refuses(withConfig(llama, { model_type: [[['llama']]] }), /config\.model_type \[\[\["llama"\]\]\] is not supported/)
  refuses({ ...llama, 'config.json': text('{"model_type": "llama",') }, /config\.json is not valid UTF-8 JSON/)
  refuses({ ...llama, 'config.json': text('[1, 2]') }, /config\.json must hold a JSON object, got \[1, 2\]/)
})

test('missing, extra, wrong-shape and wrong-dtype tensors: refused naming the tensor, its shape and the need', () => {
  const llama = files('llama-tied-f32')
  refuses(
    withTensors(llama, (t) => delete t['model.layers.1.mlp.up_proj.weight']),
    /the weights have no model\.layers\.1\.mlp\.up_proj\.weight \(48,32\), which the config needs/,
  )
  refuses(
    withTensors(llama, (t) => (t['model.layers.2.mlp.up_proj.weight'] = t['model.layers.1.mlp.up_proj.weight'])),
    /1 tensor\(s\) the config has no place for: \["model\.layers\.2\.mlp\.up_proj\.weight"\]/,
  )
  refuses(
    withConfig(llama, { intermediate_size: 64 }),
    /model\.layers\.0\.mlp\.gate_proj\.weight is \(48,32\) in the weights, but the config needs \(64,32\)/,
  )
  refuses(
    withTensors(llama, (t) => (t['model.norm.weight'] = { dtype: 'I32', shape: [32], data: new Int32Array(32) })),
    /model\.norm\.weight is I32; weights must be F32, F16 or BF16/,
  )
  refuses(withConfig(llama, { tie_word_embeddings: false }), /the weights have no lm_head\.weight \(320,32\)/)
  refuses(
    withTensors(llama, (t) => ((t['model.layers.0.mlp.up_proj.weight'].data as Float32Array)[5] = NaN)),
    /model\.safetensors: model\.layers\.0\.mlp\.up_proj\.weight holds NaN at index 5/,
  )
})

test('a tied model`s file may hold lm_head.weight too, if it equals the embeddings', () => {
  const llama = files('llama-tied-f32')
  const same = withTensors(llama, (t) => (t['lm_head.weight'] = t['model.embed_tokens.weight']))
  assert.ok(pretrainedFromFiles(same).model.config.tieWordEmbeddings)
  const other = withTensors(llama, (t) => {
    const e = t['model.embed_tokens.weight']
    t['lm_head.weight'] = { ...e, data: (e.data as Float32Array).map((v) => v + 1) }
  })
  refuses(other, /lm_head\.weight differs from the embeddings, but config\.tie_word_embeddings is true/)
})

test('a tokenizer with ids past config.vocab_size is refused; a bad tokenizer.json fails naming it', () => {
  const f = files('gpt2-f32')
  const tok = JSON.parse(new TextDecoder().decode(f['tokenizer.json']))
  tok.added_tokens.push({
    id: 400,
    content: '<|extra|>',
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  })
  refuses(
    { ...f, 'tokenizer.json': text(JSON.stringify(tok)) },
    /tokenizer\.json has ids up to 400, past config\.vocab_size 320/,
  )
  assert.throws(() => pretrainedFromFiles({ ...f, 'tokenizer.json': text('{') }), /^Tokenizer: tokenizer\.json/)
})

test('a config far bigger than its file is refused at once, with nothing allocated for it', () => {
  const llama = files('llama-tied-f32')
  const t0 = performance.now()
  refuses(withConfig(llama, { num_hidden_layers: 1e9 }), /1000000000 layers need more tensors than the 20 the weights/)
  refuses(
    withConfig(llama, { hidden_size: 2 ** 20, vocab_size: 2 ** 20 }),
    /model\.embed_tokens\.weight is \(320,32\) in the weights, but the config needs \(1048576,1048576\)/,
  )
  assert.ok(performance.now() - t0 < 1000, `${performance.now() - t0} ms`)
})

test('every tensor is checked before any weight is read: a bad last tensor leaves only the headers read', () => {
  const f = withTensors(files('llama-tied-f32'), (t) => {
    t['model.norm.weight'] = { dtype: 'F32', shape: [31], data: new Float32Array(31) } // the last tensor built
  })
  const reads: [number, number][] = []
  const shard: Shard = {
    name: 'model.safetensors',
    size: f['model.safetensors'].length,
    read(begin, end) {
      reads.push([begin, end])
      return f['model.safetensors'].slice(begin, end)
    },
  }
  const folder = { file: (n: string) => f[n], shard: () => shard }
  assert.throws(() => loadPretrainedWith('test', folder), /model\.norm\.weight is \(31\) in the weights/)
  const headerEnd = 8 + Number(new DataView(f['model.safetensors'].buffer).getBigUint64(0, true))
  assert.ok(reads.length > 0 && reads.every(([, end]) => end <= headerEnd), JSON.stringify(reads))
})

test('maxBytes caps each weights file and the float32 model, from the headers, saying how to allow more', () => {
  const f = files('mistral-bf16')
  const size = f['model.safetensors'].length
  refuses(f, new RegExp(`model\\.safetensors is ${size} bytes, over the 1000-byte cap \\(pass \\{ maxBytes \\}`), {
    maxBytes: 1000,
  })
  // BF16 doubles as float32: a cap between the file's size and the model's
  refuses(f, /the model needs \d+ bytes as float32, over the \d+-byte cap/, { maxBytes: size + 100 })
  refuses(f, /maxBytes must be a non-negative integer, got -1/, { maxBytes: -1 })
  assert.ok(pretrainedFromFiles(f, { maxBytes: 4 * size }).model)
})

test('shards: a missing shard, an index naming a path or the wrong shard, a truncated file: refused', () => {
  const f = files('llama-untied-bf16-sharded')
  const { 'model-00002-of-00002.safetensors': _, ...missing } = f
  refuses(missing, /no model-00002-of-00002\.safetensors among the files/)
  const index = JSON.parse(new TextDecoder().decode(f['model.safetensors.index.json']))
  const withIndex = (weightMap: Record<string, string>) => ({
    ...f,
    'model.safetensors.index.json': text(JSON.stringify({ ...index, weight_map: weightMap })),
  })
  const first = 'model.embed_tokens.weight' // in the first shard
  refuses(
    withIndex({ ...index.weight_map, [first]: '../../etc/model.safetensors' }),
    /maps "model\.embed_tokens\.weight" to "\.\.\/\.\.\/etc\/model\.safetensors", not a \.safetensors file name/,
  )
  refuses(
    withIndex({ ...index.weight_map, [first]: 'model-00002-of-00002.safetensors' }),
    /model-00001-of-00002\.safetensors holds model\.embed_tokens\.weight, which model\.safetensors\.index\.json maps to "model-00002-of-00002\.safetensors"/,
  )
  refuses({ ...f, 'model.safetensors.index.json': text('{}') }, /model\.safetensors\.index\.json has no weight_map/)
  const shard = f['model-00001-of-00002.safetensors']
  refuses(
    { ...f, 'model-00001-of-00002.safetensors': shard.slice(0, shard.length - 10) },
    /the tensors cover \d+ bytes of a \d+-byte data section/,
  )
  refuses(
    { ...f, 'model-00001-of-00002.safetensors': shard.slice(0, 100) },
    /header length \d+ does not fit the 100-byte file/,
  )
})

test('the files themselves: no config.json, no weights, a value that is not bytes', () => {
  const f = files('gpt2-f32')
  const { 'config.json': _, ...noConfig } = f
  refuses(noConfig, /no config\.json among the files/)
  const { 'model.safetensors': __, ...noWeights } = f
  refuses(noWeights, /no model\.safetensors among the files/)
  refuses(
    { ...f, 'model.safetensors': 'bytes' },
    /model\.safetensors must be a Uint8Array or an ArrayBuffer, got "bytes"/,
  )
  refuses(null as unknown as Files, /files must map file names to bytes, got null/)
})

test('loadPretrained: a folder without config.json, or with only PyTorch .bin weights, is refused naming it', () => {
  withDir((dir) => {
    assert.throws(
      () => loadPretrained(dir),
      /^loadPretrained: .* has no config\.json \(is it a Hugging Face model folder\?\)$/,
    )
    writeFileSync(join(dir, 'config.json'), readFileSync(join(ROOT, 'gpt2-f32', 'config.json')))
    writeFileSync(join(dir, 'pytorch_model.bin'), 'pickle')
    assert.throws(
      () => loadPretrained(dir),
      /has no model\.safetensors or model\.safetensors\.index\.json: only pytorch_model\.bin/,
    )
    mkdirSync(join(dir, 'model.safetensors'))
    assert.throws(() => loadPretrained(dir), /model\.safetensors is not a regular file/)
  })
})

test.run()
