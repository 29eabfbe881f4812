// Hugging Face model folders as bytes (browser-safe; pretrained-node.ts reads them from disk): config.json, the
// weights in model.safetensors or in shards listed by model.safetensors.index.json, and tokenizer.json. The one
// idea, as in checkpoint.ts: the tensors an architecture needs are known from its config alone, and every name,
// dtype and shape in the files is checked against them before a single weight is decoded. Then each tensor is
// decoded once, straight into the float32 array the model keeps, and nothing is drawn at random.
import { Tensor } from '../../src/tensor.js'
import { shapeStr, sameShape } from '../../src/shape.js'
import { fail, quote } from '../../src/errors.js'
import { parseJson } from '../../src/formats/bytes.js'
import { Linear } from '../linear.js'
import { Weights, tensorShapes } from '../weights.js'
import { LlamaForCausalLM } from '../llama.js'
import { GPT2LMHeadModel } from '../gpt2.js'
import { readConfig, type ArchConfig, type HFConfig } from './pretrained-config.js'
import { tokenizerFromFiles, TOKENIZER_FILES, type Tokenizer } from './tokenizer.js'

export type PretrainedModel = LlamaForCausalLM | GPT2LMHeadModel
/** What a folder loads to; `tokenizer` is null when the folder has no tokenizer.json. */
export type Pretrained = { model: PretrainedModel; tokenizer: Tokenizer | null; config: HFConfig }
/**
 * maxBytes: the most one weights file may hold and the most the model may take as float32 (default 8 GiB, a
 * 2B-parameter model). Checked from the headers before anything is read or allocated.
 */
export type PretrainedOptions = { maxBytes?: number }

export const DEFAULT_PRETRAINED_MAX_BYTES = 8 * 2 ** 30
/** config.json, the index and tokenizer.json are read whole: far above real ones (Llama 3's tokenizer is 9 MB). */
export const MAX_JSON_BYTES = 64 * 2 ** 20
// The reference Rust crate refuses safetensors headers over 100 MB, before reading them.
const MAX_HEADER_BYTES = 100_000_000
const BYTES: Record<string, number> = {
  ...{ BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1, I16: 2, U16: 2, F16: 2, BF16: 2 },
  ...{ I32: 4, U32: 4, F32: 4, I64: 8, U64: 8, F64: 8 },
}
const WEIGHT_DTYPES = ['F32', 'F16', 'BF16']

/**
 * A weights file read in pieces: bytes in memory, or (pretrained-node.ts) an open file. `read` fills `into` when
 * given; otherwise what it returns may be a reused buffer, valid until the next read.
 */
export type Shard = { name: string; size: number; read(begin: number, end: number, into?: Uint8Array): Uint8Array }
type Entry = { shard: Shard; dtype: string; shape: number[]; begin: number; end: number }

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Parse a JSON file's bytes (at most MAX_JSON_BYTES), failing in one line that names it. */
export function readJSON(op: string, name: string, bytes: Uint8Array): unknown {
  if (bytes.length > MAX_JSON_BYTES) fail(op, `${name} is ${bytes.length} bytes, over the ${MAX_JSON_BYTES}-byte cap`)
  try {
    return parseJson(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) // nesting capped: no config is deep
  } catch (err) {
    return fail(op, `${name} is not valid UTF-8 JSON (${quote(err instanceof Error ? err.message : err)})`)
  }
}

// ---- safetensors headers -----------------------------------------------------------------------------------------

/** A shard's header: every tensor's dtype, shape and absolute byte range, checked to tile the data section exactly. */
function readHeader(op: string, shard: Shard): Map<string, Entry> {
  const where = `${op}: ${shard.name}`
  if (shard.size < 8) fail(where, `${shard.size} bytes is shorter than the 8-byte header length`)
  const n = Number(new DataView(shard.read(0, 8).slice().buffer).getBigUint64(0, true))
  if (n > shard.size - 8 || n > MAX_HEADER_BYTES)
    fail(where, `header length ${n} does not fit the ${shard.size}-byte file (not a safetensors file, or truncated)`)
  const header = readJSON(op, `${shard.name}'s header`, shard.read(8, 8 + n))
  if (!isObject(header)) return fail(where, 'the header is not a JSON object')
  const entries = new Map<string, Entry>()
  const dataStart = 8 + n
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') continue
    const { dtype, shape, data_offsets: offsets } = isObject(value) ? value : {}
    const counts = (v: unknown): v is number[] =>
      Array.isArray(v) && v.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)
    if (typeof dtype !== 'string' || !Object.hasOwn(BYTES, dtype) || !counts(shape))
      fail(where, `${quote(name)} has dtype ${quote(dtype)} and shape ${quote(shape)}, not a safetensors tensor`)
    if (!counts(offsets) || offsets.length !== 2 || offsets[0] > offsets[1])
      fail(where, `${quote(name)} has data_offsets ${quote(offsets)}, expected [begin, end]`)
    const size = shape.reduce((a, d) => a * d, BYTES[dtype])
    if (offsets[1] - offsets[0] !== size)
      fail(
        where,
        `${quote(name)} is ${dtype} ${shapeStr(shape)} = ${size} bytes, but its data_offsets span another size`,
      )
    entries.set(name, { shard, dtype, shape, begin: dataStart + offsets[0], end: dataStart + offsets[1] })
  }
  // sorted by offset, the ranges must tile the data section: no gap, no overlap, nothing after
  let at = dataStart
  for (const [name, e] of [...entries].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end)) {
    if (e.begin !== at) fail(where, `${quote(name)} starts at byte ${e.begin - dataStart}, expected ${at - dataStart}`)
    at = e.end
  }
  if (at !== shard.size)
    fail(where, `the tensors cover ${at - dataStart} bytes of a ${shard.size - dataStart}-byte data section`)
  return entries
}

/** The shard names to read: model.safetensors, or the files model.safetensors.index.json maps tensors to. */
function shardNames(op: string, index: unknown): { files: string[]; map: Map<string, string> | null } {
  if (index === undefined) return { files: ['model.safetensors'], map: null }
  const weightMap = isObject(index) ? index.weight_map : undefined
  if (!isObject(weightMap)) return fail(op, `model.safetensors.index.json has no weight_map object`)
  const map = new Map<string, string>()
  for (const [name, file] of Object.entries(weightMap)) {
    // a file name, never a path: the index cannot send the loader elsewhere on disk
    if (typeof file !== 'string' || !/^[\w.-]+\.safetensors$/.test(file) || file.startsWith('.'))
      fail(op, `model.safetensors.index.json maps ${quote(name)} to ${quote(file)}, not a .safetensors file name`)
    map.set(name, file)
  }
  return { files: [...new Set(map.values())], map }
}

// ---- decoding ----------------------------------------------------------------------------------------------------

if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) throw new Error('pretrained: needs a little-endian machine')

let halfTable: Float32Array | null = null
/** Every IEEE half's float32 value, by its 16 bits: one lookup per weight. */
function halves(): Float32Array {
  if (halfTable) return halfTable
  halfTable = new Float32Array(65536)
  for (let h = 0; h < 65536; h++) {
    const exp = (h >> 10) & 0x1f,
      frac = h & 0x3ff,
      sign = h & 0x8000 ? -1 : 1
    if (exp === 0) halfTable[h] = sign * frac * 2 ** -24
    else if (exp === 31) halfTable[h] = frac ? NaN : sign * Infinity
    else halfTable[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15)
  }
  return halfTable
}

/**
 * One tensor's bytes → a fresh Float32Array; NaN or ±Infinity in a weight is refused (it would answer nothing).
 * NOTE: writing fresh memory is most of a load here: the first touch of each 4 KiB page costs ~4 µs on this VM,
 * ~2 s for SmolLM2-135M's 540 MB of float32, so nothing else is allocated per tensor (the reads reuse one buffer).
 */
function decode(op: string, name: string, e: Entry): Float32Array {
  const n = (e.end - e.begin) / BYTES[e.dtype]
  const out = new Float32Array(n)
  const bits = new Int32Array(out.buffer)
  let bad = -1
  if (e.dtype === 'F32') {
    e.shard.read(e.begin, e.end, new Uint8Array(out.buffer)) // straight into the array the model keeps
    for (let i = 0; i < n; i++) if ((bits[i] & 0x7f800000) === 0x7f800000) bad = i
  } else {
    const raw = e.shard.read(e.begin, e.end)
    const h = raw.byteOffset % 2 ? new Uint16Array(raw.slice().buffer) : new Uint16Array(raw.buffer, raw.byteOffset, n)
    // an all-ones exponent is ±Infinity or NaN: 8 bits in bfloat16 (0x7f80), 5 in IEEE half (0x7c00)
    if (e.dtype === 'BF16') {
      for (let i = 0; i < n; i++) {
        if ((h[i] & 0x7f80) === 0x7f80) bad = i
        bits[i] = h[i] << 16 // bfloat16 is a float32's top half
      }
    } else {
      const table = halves()
      for (let i = 0; i < n; i++) {
        if ((h[i] & 0x7c00) === 0x7c00) bad = i
        out[i] = table[h[i]]
      }
    }
  }
  if (bad >= 0) fail(op, `${e.shard.name}: ${name} holds ${out[bad]} at index ${bad}`)
  return out
}

// ---- the model ---------------------------------------------------------------------------------------------------

/** The architecture a config names, its tensors taken from `w`. */
function build(a: ArchConfig, w: Weights): PretrainedModel {
  return a.arch === 'llama' ? new LlamaForCausalLM(a.config, w) : new GPT2LMHeadModel(a.config, w)
}

/** Per architecture: the prefix a base model's file leaves out, and the buffers a file may carry (not weights). */
const ARCHS = {
  llama: {
    base: 'model.',
    ignored: /^(model\.)?layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/, // older transformers saved this buffer
  },
  gpt2: {
    base: 'transformer.',
    ignored: /^(transformer\.)?h\.\d+\.attn\.(masked_)?bias$/, // causal-mask buffers, as in the hub's own gpt2 file
  },
}

/**
 * Compare the files' tensors with what the architecture needs; return where each needed tensor is read from and
 * what is left over (a tied model's file may also hold lm_head.weight: checkTiedHead compares it).
 */
function plan(
  op: string,
  need: Map<string, number[]>,
  found: Map<string, Entry>,
  arch: keyof typeof ARCHS,
  tied: boolean,
) {
  const { base, ignored } = ARCHS[arch]
  const first = need.keys().next().value!
  // a base model saved alone (the hub's gpt2) leaves out the `transformer.` / `model.` prefix: all or nothing
  const bare = !found.has(first) && found.has(first.slice(base.length))
  const fileName = (k: string) => (bare && k.startsWith(base) ? k.slice(base.length) : k)
  const where = new Map<string, Entry>()
  for (const [k, shape] of need) {
    const e = found.get(fileName(k))
    if (!e) fail(op, `the weights have no ${fileName(k)} ${shapeStr(shape)}, which the config needs`)
    if (!WEIGHT_DTYPES.includes(e.dtype)) fail(op, `${fileName(k)} is ${e.dtype}; weights must be F32, F16 or BF16`)
    if (!sameShape(e.shape, shape))
      fail(op, `${fileName(k)} is ${shapeStr(e.shape)} in the weights, but the config needs ${shapeStr(shape)}`)
    where.set(k, e)
  }
  const used = new Set(where.values())
  const optional = (k: string) => ignored.test(k) || (tied && k === 'lm_head.weight')
  const extra = [...found].filter(([k, e]) => !used.has(e) && !optional(k)).map(([k]) => k)
  return { where, extra }
}

/**
 * A Hugging Face model folder's files by name (config.json, model.safetensors or its shards and
 * model.safetensors.index.json, tokenizer.json) → { model, tokenizer, config }, the model in eval mode.
 */
export function pretrainedFromFiles(
  files: Record<string, Uint8Array | ArrayBuffer>,
  options: PretrainedOptions = {},
): Pretrained {
  const op = 'pretrainedFromFiles'
  if (!isObject(files)) fail(op, `files must map file names to bytes, got ${quote(files)}`)
  const bytes = (name: string): Uint8Array | undefined => {
    const v = Object.hasOwn(files, name) ? files[name] : undefined
    if (v === undefined) return undefined
    if (v instanceof Uint8Array) return v
    if (v instanceof ArrayBuffer) return new Uint8Array(v)
    return fail(op, `${name} must be a Uint8Array or an ArrayBuffer, got ${quote(v)}`)
  }
  const shard = (name: string): Shard => {
    const b = bytes(name) ?? fail(op, `no ${name} among the files (${quote(Object.keys(files))})`)
    return {
      name,
      size: b.length,
      read(begin, end, into) {
        if (!into) return b.subarray(begin, end) // a view: nothing is copied until decode makes the float32 array
        into.set(b.subarray(begin, end))
        return into
      },
    }
  }
  return loadPretrainedWith(op, { file: bytes, shard }, options)
}

/** Where a loader gets a folder's files: small files whole (undefined when absent), weights files as Shards. */
export type Folder = { source?: string; file(name: string): Uint8Array | undefined; shard(name: string): Shard }

/** The loader both entries share: config, headers, the plan, the budget, then the model built from the files. */
export function loadPretrainedWith(
  op: string,
  folder: Folder,
  { maxBytes = DEFAULT_PRETRAINED_MAX_BYTES } = {},
): Pretrained {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0)
    fail(op, `maxBytes must be a non-negative integer, got ${quote(maxBytes)}`)
  const json = (name: string) => {
    const bytes = folder.file(name)
    return bytes && readJSON(op, name, bytes)
  }
  const hf = json('config.json')
  if (hf === undefined) fail(op, 'no config.json among the files')
  const archConfig = readConfig(op, hf)
  const { arch, config } = archConfig
  const { files, map } = shardNames(op, json('model.safetensors.index.json'))
  const found = new Map<string, Entry>()
  for (const name of files) {
    const shard = folder.shard(name)
    if (shard.size > maxBytes)
      fail(op, `${name} is ${shard.size} bytes, over the ${maxBytes}-byte cap (pass { maxBytes } to allow more)`)
    for (const [k, e] of readHeader(op, shard)) {
      if (found.has(k)) fail(op, `${k} is in both ${found.get(k)!.shard.name} and ${name}`)
      if (map && map.get(k) !== name)
        fail(op, `${name} holds ${k}, which model.safetensors.index.json maps to ${quote(map.get(k))}`)
      found.set(k, e)
    }
  }
  const layers = arch === 'llama' ? config.numHiddenLayers : config.nLayer
  // the names come from building the architecture with empty stand-ins: bounded first, so that a config claiming
  // 10⁹ layers cannot make that loop run 10⁹ times against a file of a few tensors
  if (layers > found.size)
    fail(op, `config.json's ${layers} layers need more tensors than the ${found.size} the weights hold`)
  const need = tensorShapes((w) => build(archConfig, w))
  const { where, extra } = plan(op, need, found, arch, config.tieWordEmbeddings)
  if (extra.length) fail(op, `the weights hold ${extra.length} tensor(s) the config has no place for: ${quote(extra)}`)
  const floats = [...need.values()].reduce((s, shape) => s + shape.reduce((a, d) => a * d, 4), 0)
  if (floats > maxBytes)
    fail(
      op,
      `the model needs ${floats} bytes as float32, over the ${maxBytes}-byte cap (pass { maxBytes } to allow more)`,
    )
  // every check passed: build the model, decoding each tensor as its layer asks for it
  const model = build(archConfig, new Weights((k, shape) => new Tensor(decode(op, k, where.get(k)!), shape, true)))
  checkTiedHead(op, model, found)
  const tokenizer = readTokenizer(op, folder, model.vocabSize)
  return { model: model.eval(), tokenizer, config: hf as HFConfig }
}

/** A tied model's file may also store the head: transformers then ties it anyway, so it must equal the embeddings. */
function checkTiedHead(op: string, model: PretrainedModel, found: Map<string, Entry>): void {
  const head = found.get('lm_head.weight')
  if (!head || !model.config.tieWordEmbeddings) return
  const emb = model.lm_head instanceof Linear ? model.lm_head.weight : undefined // the embeddings' own Tensor
  const data = decode(op, 'lm_head.weight', head)
  if (!emb || !sameShape(head.shape, emb.shape) || data.some((v, i) => v !== emb.data[i]))
    fail(op, 'lm_head.weight differs from the embeddings, but config.tie_word_embeddings is true')
}

/** The folder's tokenizer (nn/files/tokenizer.ts), or null without tokenizer.json; its ids must fit the model's. */
function readTokenizer(op: string, folder: Folder, vocabSize: number): Tokenizer | null {
  const files: Record<string, Uint8Array> = {}
  for (const name of TOKENIZER_FILES) {
    const bytes = folder.file(name)
    if (bytes) files[name] = bytes
  }
  if (!files['tokenizer.json']) return null
  const tokenizer = tokenizerFromFiles(files, { maxBytes: MAX_JSON_BYTES, source: folder.source })
  if (tokenizer.vocabSize > vocabSize)
    fail(op, `tokenizer.json has ids up to ${tokenizer.vocabSize - 1}, past config.vocab_size ${vocabSize}`)
  return tokenizer
}
