// Checkpoints as .safetensors bytes (browser-safe; checkpoint-node.ts adds file paths): a GPT's weights, config
// and quantized layers' codes, and an optimizer's state. The one idea: check everything the file says against
// what the model needs before a single value is copied in, so a bad file changes nothing.
import { Tensor } from '../../src/tensor.js'
import { withoutInit } from '../../src/random.js'
import { fail, quote } from '../../src/errors.js'
import {
  serializeSafetensors,
  parseSafetensors,
  parseSafetensorsHeader,
  toTensor,
  DTYPE_BYTES,
  type StoredTensor,
  type StoredData,
  type TensorInfo,
  type LoadOptions,
  type Bytes,
} from '../../src/formats/safetensors.js'
import { dims, parseJson, sourceName } from '../../src/formats/bytes.js'
import { listed, named, shown } from './checks.js'
import { sameShape, sizeOf as count } from '../../src/shape.js'
import { Module } from '../module.js'
import { Linear } from '../linear.js'
import { QuantizedLinear } from '../quantized.js'
import { Embedding } from '../embedding.js'
import { LayerNorm } from '../layernorm.js'
import { Dropout } from '../dropout.js'
import { CausalSelfAttention } from '../attention.js'
import { GPT, Block, MLP, checkConfig, gptParameterShapes, type GPTConfig } from '../gpt.js'
import type { Optimizer, ParamState } from '../optim.js'

/** Throws naming `what` when `data` holds NaN or ±Infinity: a loaded NaN would not fail, it would answer nothing. */
export function assertFinite(what: string, data: ArrayLike<number>): void {
  for (let i = 0; i < data.length; i++)
    if (!Number.isFinite(data[i])) throw new Error(`${what} holds ${data[i]} at index ${i}`)
}

// ---- quantized layers' buffers ----------------------------------------------------------------------

/** A QuantizedLinear's packed arrays as stored tensors: codes and scales (+ affine biases), not parameters. */
function quantizedBuffers(layer: QuantizedLinear): Record<string, StoredTensor> {
  // stored as packed, so a checkpoint is as small as the layer: 32/bits codes per U32 word, or 2 nf4 codes per byte
  const p = layer.packed,
    out = layer.outFeatures
  if (p.mode === 'int8')
    return {
      codes: { dtype: 'I8', shape: [out, p.cols], data: p.codes },
      scales: { dtype: 'F32', shape: [out], data: p.scales },
    }
  const groups = [out, p.cols / p.groupSize]
  if (p.mode === 'nf4')
    return {
      codes: { dtype: 'U8', shape: [out, p.cols / 2], data: p.codes },
      scales: { dtype: 'F32', shape: groups, data: p.scales },
    }
  return {
    codes: { dtype: 'U32', shape: [out, (p.cols * p.bits) / 32], data: p.codes },
    scales: { dtype: 'F32', shape: groups, data: p.scales },
    biases: { dtype: 'F32', shape: groups, data: p.biases },
  }
}

/** Every quantized layer's buffers by dotted name (`blocks.0.attn.qProj.codes`, ...), saved beside the parameters. */
export function buffers(model: Module): Record<string, StoredTensor> {
  const out: Record<string, StoredTensor> = {}
  for (const [path, m] of model.namedModules()) {
    if (!(m instanceof QuantizedLinear)) continue
    for (const [k, v] of Object.entries(quantizedBuffers(m))) out[path ? `${path}.${k}` : k] = v
  }
  return out
}

function copyInto(dst: StoredData, src: StoredData): void {
  for (let i = 0; i < dst.length; i++) dst[i] = src[i]
}

/** Load what buffers() gave: a missing or unexpected name, or another mode, bits or group size, changes nothing. */
export function loadBuffers(model: Module, dict: Record<string, StoredTensor>): void {
  const own = buffers(model) // the model's own arrays, written into in place once every check has passed
  const unexpected = Object.keys(dict).filter((k) => !Object.hasOwn(own, k))
  if (unexpected.length) fail('loadBuffers', `unexpected buffer(s) ${listed(unexpected)}`)
  for (const [path, m] of model.namedModules()) {
    if (!(m instanceof QuantizedLinear)) continue
    for (const [k, cur] of Object.entries(quantizedBuffers(m))) {
      const key = path ? `${path}.${k}` : k,
        b = dict[key]
      if (!b) fail('loadBuffers', `missing buffer ${key}`)
      const layer = `QuantizedLinear '${path}' (${m.mode}, ${m.bits}-bit, group ${m.groupSize})`
      if (b.dtype !== cur.dtype || !sameShape(b.shape, cur.shape) || b.data.length !== cur.data.length)
        fail(
          'loadBuffers',
          `${layer}: buffer '${k}' is ${b.dtype} ${dims(b.shape)}, expected ${cur.dtype} ${dims(cur.shape)}`,
        )
    }
  }
  for (const [k, cur] of Object.entries(own)) copyInto(cur.data, dict[k].data)
}

// ---- GPT checkpoints --------------------------------------------------------------------------------

/** The modules a checkpoint knows how to rebuild from a config (plus the quantized layers its metadata lists). A
 * LoRALinear is not among them: its base and its adapter are two things, saved apart (saveAdapters) or merged. */
const REBUILDABLE = [GPT, Block, MLP, CausalSelfAttention, Linear, QuantizedLinear, Embedding, LayerNorm, Dropout]

/** Every parameter by name, minus the LM head when it is tied to the token embedding (the same Tensor). */
function checkpointTensors(model: GPT): Record<string, Tensor> {
  const dict = model.stateDict()
  if (model.config.tieWeights) delete dict['lmHead.weight'] // stored once; loading wte.weight fills both names
  return dict
}

/** A GPT as .safetensors bytes: weights, quantized codes, its config in the metadata (+ `metadata`: a tokenizer). */
export function checkpointToBytes(model: GPT, metadata: Record<string, string> = {}): Uint8Array {
  // which layers are quantized, and how: the loader must build a QuantizedLinear there before its codes fit
  const quantized: Record<string, { mode: string; bits: number; groupSize: number }> = {}
  for (const [name, m] of model.namedModules()) {
    if (m instanceof QuantizedLinear) quantized[name] = { mode: m.mode, bits: m.bits, groupSize: m.groupSize }
    else if (!REBUILDABLE.some((C) => m instanceof C)) {
      const advice = 'merge LoRA layers first (mergeLoRA) or save the adapters apart (saveAdapters)'
      fail('checkpointToBytes', `'${name}' is a ${m.constructor.name}, which a checkpoint cannot rebuild; ${advice}`)
    }
  }
  // as loading requires
  for (const [k, t] of Object.entries(model.stateDict())) assertFinite(`checkpointToBytes: ${k}`, t.data)
  const meta: Record<string, string> = { ...metadata, config: JSON.stringify(model.config), format: 'tenny-gpt' }
  if (Object.keys(quantized).length) meta.quantized = JSON.stringify(quantized)
  return serializeSafetensors({ ...checkpointTensors(model), ...buffers(model) }, meta)
}

type QuantSpec = { mode: 'affine' | 'int8' | 'nf4'; bits: number; groupSize: number }

/** A JSON object from the metadata entry `key`, or a one-line error naming it. */
function metadataObject(metadata: Record<string, string>, key: string, missing: string): Record<string, unknown> {
  if (metadata[key] === undefined) throw new Error(missing)
  let value: unknown
  try {
    value = parseJson(metadata[key])
  } catch (err) {
    throw new Error(`the metadata ${key} is not valid JSON (${err instanceof Error ? err.message : String(err)})`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error(`the metadata ${key} is not an object, got ${quote(value)}`)
  return value as Record<string, unknown>
}

const CONFIG_KEYS = { vocabSize: 'number', blockSize: 'number', nLayer: 'number', nHead: 'number', nEmbd: 'number' }
const OPTIONAL_KEYS = { dropout: 'number', bias: 'boolean', tieWeights: 'boolean' }

/** The config a checkpoint's metadata holds: only GPTConfig's keys, each of its type, then the model's own checks. */
function readConfig(metadata: Record<string, string>): GPTConfig {
  const config = metadataObject(metadata, 'config', `no 'config' in the metadata (was it written by saveCheckpoint?)`)
  const types: Record<string, string> = { ...CONFIG_KEYS, ...OPTIONAL_KEYS }
  for (const [key, value] of Object.entries(config)) {
    if (!Object.hasOwn(types, key)) throw new Error(`the metadata config has an unknown key ${quote(key)}`)
    if (typeof value !== types[key])
      throw new Error(`the metadata config.${key} must be a ${types[key]}, got ${quote(value)}`)
  }
  checkConfig('the metadata', config as GPTConfig) // positive integers, heads dividing the width: before building
  return config as GPTConfig
}

/** The metadata's map of quantized layers (path → { mode, bits, groupSize }); checkHeader checks each is a Linear. */
function readQuantized(metadata: Record<string, string>): Map<string, QuantSpec> {
  const where = `the metadata 'quantized'`
  if (metadata.quantized === undefined) return new Map()
  const spec = metadataObject(metadata, 'quantized', '')
  return new Map(
    Object.entries(spec).map(([path, opts]) => {
      const { mode, bits, groupSize } =
        typeof opts === 'object' && opts !== null ? (opts as Record<string, unknown>) : {}
      if (
        (mode !== 'affine' && mode !== 'int8' && mode !== 'nf4') ||
        typeof bits !== 'number' ||
        typeof groupSize !== 'number'
      )
        throw new Error(
          `${where}: ${named(path)} must be { mode: 'affine' | 'int8' | 'nf4', bits, groupSize }, got ${quote(opts)}`,
        )
      return [path, { mode, bits, groupSize }]
    }),
  )
}

const FLOATS = new Set(['F32', 'F16', 'BF16'])

const notLinear = (path: string) =>
  new Error(`the metadata 'quantized' names ${named(path)}, which is not a Linear layer of this config`)

/**
 * Every tensor the config needs, checked against the file's header (names, dtypes, shapes) before anything is
 * decoded or built: a small file may claim a huge model, and is refused for what it lacks. A quantized layer's codes
 * are checked here for size (at least 2 bits a weight), and exactly once the layer is built.
 */
function checkHeader(config: GPTConfig, quantized: Map<string, QuantSpec>, file: Record<string, TensorInfo>): void {
  const has = (k: string) => Object.hasOwn(file, k)
  const belong = new Set<string>(),
    missing: string[] = [],
    linears = new Set<string>()
  for (const [name, shape] of gptParameterShapes(config)) {
    if (missing.length > 5) break // the config may claim 10⁹ blocks: a few names say enough
    if (name === 'lmHead.weight' && config.tieWeights) continue // stored once, as wte.weight
    const path = name.replace(/\.weight$/, '')
    if (quantized.has(path)) {
      // codes and scales (+ affine biases) stand for the weight
      if (shape.length !== 2 || path === 'wte' || path === 'wpe') throw notLinear(path)
      linears.add(path)
      for (const k of ['codes', 'scales', 'biases']) if (has(`${path}.${k}`)) belong.add(`${path}.${k}`)
      const codes = has(`${path}.codes`) ? file[`${path}.codes`] : undefined
      if (!codes || 4 * count(codes.shape) * DTYPE_BYTES[codes.dtype] < count(shape))
        missing.push(`${path}.codes (at least 2 bits for each of ${count(shape)} weights)`)
    } else if (!has(name)) {
      missing.push(`${name} ${dims(shape)}`)
    } else {
      const t = file[name]
      if (!FLOATS.has(t.dtype))
        throw new Error(`'${name}' is stored as ${t.dtype}; only F32, F16 or BF16 load as weights`)
      if (!sameShape(t.shape, shape))
        throw new Error(`${name} has shape ${dims(t.shape)} in the file but ${dims(shape)} in the model`)
      belong.add(name)
    }
  }
  if (missing.length)
    throw new Error(
      `missing tensor(s) ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}` +
        ` (config ${quote(config)})`,
    )
  for (const path of quantized.keys()) if (!linears.has(path)) throw notLinear(path)
  const unexpected = Object.keys(file).filter((k) => !belong.has(k))
  if (unexpected.length) throw new Error(`unexpected tensor(s) ${listed(unexpected)}`)
}

/** Swap the layers the metadata lists as quantized for QuantizedLinear with those settings; their codes load next. */
function requantize(model: GPT, quantized: Map<string, QuantSpec>): void {
  for (const [path, spec] of quantized) {
    try {
      model.setModule(path, QuantizedLinear.fromLinear(model.getModule(path) as Linear, spec)) // checkHeader: a Linear
    } catch (err) {
      throw new Error(`the metadata 'quantized': ${named(path)}: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
}

/**
 * Rebuild the GPT that checkpointToBytes wrote, quantized layers included. The header is checked against the
 * config first, so a file is refused for what it lacks before a single tensor is decoded or a layer allocated, and
 * the model is built without drawing the random init its weights then replace (seconds for a large model).
 */
export function checkpointFromBytes(bytes: Bytes, source = '<bytes>', options: LoadOptions = {}): GPT {
  const name = sourceName('checkpointFromBytes', source)
  try {
    const header = parseSafetensorsHeader(bytes, name, options)
    const config = readConfig(header.metadata)
    const quantized = readQuantized(header.metadata)
    checkHeader(config, quantized, header.tensors)
    const { tensors } = parseSafetensors(bytes, name, options)
    for (const [k, t] of Object.entries(tensors)) if (t.data instanceof Float32Array) assertFinite(k, t.data)
    const model = withoutInit(() => new GPT(config))
    requantize(model, quantized) // now the model has the file's layout: every name and shape can be compared
    const own = checkpointTensors(model),
      bufs = buffers(model)
    for (const [k, b] of Object.entries(bufs)) {
      const t = Object.hasOwn(tensors, k) ? tensors[k] : undefined
      if (!t) throw new Error(`missing tensor(s) ${k}`)
      if (t.dtype !== b.dtype || !sameShape(t.shape, b.shape))
        throw new Error(`${k} is ${t.dtype} ${dims(t.shape)} in the file but ${b.dtype} ${dims(b.shape)} in the model`)
    }
    const weights = Object.fromEntries(Object.keys(own).map((k) => [k, toTensor(tensors[k], k)]))
    model.loadStateDict(weights, { strict: false }) // all but a tied head's second name, which wte.weight fills
    loadBuffers(model, Object.fromEntries(Object.keys(bufs).map((k) => [k, tensors[k]])))
    return model
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err) // every error names the file it came from
    throw new Error(message.startsWith('safetensors:') ? message : `checkpointFromBytes: ${name}: ${message}`)
  }
}

// ---- optimizer state --------------------------------------------------------------------------------

/** An optimizer's state as .safetensors bytes: buffers as '<index>.<name>', class, lr and steps in the metadata. */
export function optimizerToBytes(opt: Optimizer): Uint8Array {
  const { lr, state } = opt.stateDict()
  const tensors: Record<string, Tensor> = {}
  for (const [i, st] of Object.entries(state))
    for (const [b, data] of Object.entries(st.buffers)) tensors[`${i}.${b}`] = new Tensor(data, [data.length])
  for (const [k, t] of Object.entries(tensors)) assertFinite(`optimizerToBytes: '${k}'`, t.data) // as loading requires
  const steps = Object.fromEntries(Object.entries(state).map(([i, st]) => [i, st.step])) // for Adam's bias correction
  // safetensors metadata holds only strings: lr and the steps go in as text, checked again when read
  return serializeSafetensors(tensors, {
    format: 'tenny-optimizer',
    optimizer: opt.constructor.name,
    lr: String(lr),
    steps: JSON.stringify(steps),
  })
}

/** Restore what optimizerToBytes wrote into `opt` (same class and parameters), all of it checked before it is used. */
export function loadOptimizerBytes(opt: Optimizer, bytes: Bytes, source = '<bytes>', options: LoadOptions = {}): void {
  const op = `${opt.constructor.name}.load`
  const { tensors, metadata } = parseSafetensors(bytes, source, options)
  if (metadata.format !== 'tenny-optimizer')
    fail(op, `${source} is not an optimizer state file (format ${quote(metadata.format, 60)})`)
  if (metadata.optimizer !== opt.constructor.name)
    fail(op, `${source} holds ${shown(metadata.optimizer ?? 'no')} state, not ${opt.constructor.name}`)
  let steps: unknown
  try {
    steps = parseJson(metadata.steps ?? '')
  } catch {
    fail(op, `${source} has no readable 'steps' in its metadata`)
  }
  if (typeof steps !== 'object' || steps === null || Array.isArray(steps))
    return fail(op, `${source}: 'steps' must map parameter indices to step counts, got ${quote(steps)}`)
  // Number('') is 0 and Number('Infinity') is not a learning rate: only a plain decimal number is read as one (by a
  // pattern with one way to match each digit: /\d+\.?\d*/ took minutes on a megabyte of 9s)
  if (!/^(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i.test(metadata.lr ?? ''))
    fail(op, `${source}: lr ${quote(metadata.lr, 60)} is not a number ≥ 0`)
  const state = new Map(Object.entries(steps).map(([i, step]): [string, ParamState] => [i, { step, buffers: {} }]))
  for (const [key, t] of Object.entries(tensors)) {
    // '<parameter index>.<buffer name>', e.g. '3.m'
    const m = /^(\d+)\.(\w+)$/.exec(key),
      st = m && state.get(m[1])
    if (!m || !st || !(t.data instanceof Float32Array))
      return fail(op, `${source}: tensor ${named(key)} is not '<index>.<buffer>' of a parameter in 'steps' (as F32)`)
    assertFinite(`${op}: ${source}: ${named(key)}`, t.data)
    // a computed key is an own property, even '__proto__': checked, not lost
    st.buffers = { ...st.buffers, [m[2]]: t.data }
  }
  // loadStateDict validates indices, steps, buffer names and sizes
  opt.loadStateDict({ lr: Number(metadata.lr), state: Object.fromEntries(state) })
}
