// Checkpoints as .safetensors bytes (browser-safe; checkpoint-node.ts adds file paths): a GPT's weights, config
// and quantized layers' codes, and an optimizer's state. The one idea: check everything the file says against
// what the model needs before a single value is copied in, so a bad file changes nothing.
import { Tensor } from '../../src/tensor.js'
import { rngState, setRngState } from '../../src/random.js'
import {
  serializeSafetensors,
  parseSafetensors,
  toTensor,
  type StoredTensor,
  type StoredData,
  type LoadOptions,
} from '../../src/formats/safetensors.js'
import { shapeStr, sameShape } from '../../src/shape.js'
import { Module } from '../module.js'
import { Linear } from '../linear.js'
import { QuantizedLinear } from '../quantized.js'
import { Embedding } from '../embedding.js'
import { LayerNorm } from '../layernorm.js'
import { Dropout } from '../dropout.js'
import { CausalSelfAttention } from '../attention.js'
import { GPT, Block, MLP, checkConfig, type GPTConfig } from '../gpt.js'
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

/** Every quantized layer's buffers by dotted name (`blocks.0.attn.qProj.codes`, ...); a checkpoint saves them beside the parameters. */
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

/** Load what buffers() gave: a missing or unexpected name, or another mode, bits or group size, is an error before anything changes. */
export function loadBuffers(model: Module, dict: Record<string, StoredTensor>): void {
  const own = buffers(model) // the model's own arrays, written into in place once every check has passed
  const unexpected = Object.keys(dict).filter((k) => !Object.hasOwn(own, k))
  if (unexpected.length) throw new Error(`loadBuffers: unexpected buffer(s) ${unexpected.join(', ')}`)
  for (const [path, m] of model.namedModules()) {
    if (!(m instanceof QuantizedLinear)) continue
    for (const [k, cur] of Object.entries(quantizedBuffers(m))) {
      const key = path ? `${path}.${k}` : k,
        b = dict[key]
      if (!b) throw new Error(`loadBuffers: missing buffer ${key}`)
      if (b.dtype !== cur.dtype || !sameShape(b.shape, cur.shape) || b.data.length !== cur.data.length) {
        throw new Error(
          `loadBuffers: QuantizedLinear '${path}' (${m.mode}, ${m.bits}-bit, group ${m.groupSize}): buffer '${k}' is ${b.dtype} ${shapeStr(b.shape)}, expected ${cur.dtype} ${shapeStr(cur.shape)}`,
        )
      }
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

/** A GPT as .safetensors bytes: weights, quantized codes, and in the metadata its config (+ `metadata`, e.g. a tokenizer). */
export function checkpointToBytes(model: GPT, metadata: Record<string, string> = {}): Uint8Array {
  // which layers are quantized, and how: the loader must build a QuantizedLinear there before its codes fit
  const quantized: Record<string, { mode: string; bits: number; groupSize: number }> = {}
  for (const [name, m] of model.namedModules()) {
    if (m instanceof QuantizedLinear) quantized[name] = { mode: m.mode, bits: m.bits, groupSize: m.groupSize }
    else if (!REBUILDABLE.some((C) => m instanceof C)) {
      throw new Error(
        `checkpointToBytes: '${name}' is a ${m.constructor.name}, which a checkpoint cannot rebuild; merge LoRA layers first (mergeLoRA) or save the adapters apart (saveAdapters)`,
      )
    }
  }
  for (const [k, t] of Object.entries(model.stateDict())) assertFinite(`checkpointToBytes: ${k}`, t.data) // as loading requires
  const meta: Record<string, string> = { ...metadata, config: JSON.stringify(model.config), format: 'tenny-gpt' }
  if (Object.keys(quantized).length) meta.quantized = JSON.stringify(quantized)
  return serializeSafetensors({ ...checkpointTensors(model), ...buffers(model) }, meta)
}

/** Swap the Linear layers the metadata lists as quantized for QuantizedLinear with the same settings; their codes load next. */
function requantize(model: GPT, listed: string | undefined): void {
  if (listed === undefined) return
  let spec: unknown
  try {
    spec = JSON.parse(listed)
  } catch {
    throw new Error(`the metadata 'quantized' is not valid JSON`)
  }
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec))
    throw new Error(`the metadata 'quantized' must map layer paths to { mode, bits, groupSize }, got ${listed}`)
  for (const [path, opts] of Object.entries(spec)) {
    // only a Linear the config built can be quantized: a path naming anything else is a damaged file
    const layer = [...model.namedModules()].find(([p]) => p === path)?.[1]
    if (!(layer instanceof Linear))
      throw new Error(`the metadata 'quantized' names '${path}', which is not a Linear layer of this config`)
    const { mode, bits, groupSize } = typeof opts === 'object' && opts !== null ? (opts as Record<string, unknown>) : {}
    if (
      (mode !== 'affine' && mode !== 'int8' && mode !== 'nf4') ||
      typeof bits !== 'number' ||
      typeof groupSize !== 'number'
    ) {
      throw new Error(
        `the metadata 'quantized': '${path}' must be { mode: 'affine' | 'int8' | 'nf4', bits, groupSize }, got ${JSON.stringify(opts)}`,
      )
    }
    try {
      model.setModule(path, QuantizedLinear.fromLinear(layer, { mode, bits, groupSize }))
    } catch (err) {
      throw new Error(`the metadata 'quantized': '${path}': ${err instanceof Error ? err.message : String(err)}`)
    }
  }
}

/** The config a checkpoint's metadata holds, checked. */
function readConfig(metadata: Record<string, string>): GPTConfig {
  if (metadata.config === undefined) throw new Error(`no 'config' in the metadata (was it written by saveCheckpoint?)`)
  let config: unknown
  try {
    config = JSON.parse(metadata.config)
  } catch {
    throw new Error(`the metadata config is not valid JSON`)
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config))
    throw new Error(`the metadata config is not an object`)
  // the checks the GPT constructor makes, run before anything is built from the config
  checkConfig('the metadata', config as GPTConfig)
  return config as GPTConfig
}

/** The config's sizes against the file, tensor by tensor, before a model is built from it: a small file may claim a huge one. */
function checkSizes(c: GPTConfig, tensors: Record<string, StoredTensor>): void {
  const need = (k: string, shape: number[], fits = (t: StoredTensor) => sameShape(t.shape, shape)): void => {
    const t = Object.hasOwn(tensors, k) ? tensors[k] : undefined
    if (!t || !fits(t))
      throw new Error(
        `the config (${JSON.stringify(c)}) needs ${k} ${shapeStr(shape)}, but the file has ${t ? shapeStr(t.shape) : 'no such tensor'}`,
      )
  }
  need('wte.weight', [c.vocabSize, c.nEmbd])
  need('wpe.weight', [c.blockSize, c.nEmbd])
  // every block's tensors, as one block names them, from the last block down: a 300-byte file may claim 100,000 blocks
  const block = [...new Block(c).namedParameters()]
  for (let i = c.nLayer - 1; i >= 0; i--) {
    for (const [k, p] of block) {
      const codes = `blocks.${i}.${k.replace(/weight$/, 'codes')}` // a quantized weight: codes of at least 2 bits each
      if (k.endsWith('.weight') && Object.hasOwn(tensors, codes))
        need(codes, p.shape, (t) => 4 * t.data.byteLength >= p.size)
      else need(`blocks.${i}.${k}`, p.shape)
    }
  }
}

/** Rebuild the GPT that checkpointToBytes wrote, quantized layers included, after checking the config and every tensor. */
export function checkpointFromBytes(bytes: Uint8Array, source = '<bytes>', options: LoadOptions = {}): GPT {
  try {
    const { tensors, metadata } = parseSafetensors(bytes, source, options)
    const config = readConfig(metadata)
    for (const [k, t] of Object.entries(tensors)) if (t.data instanceof Float32Array) assertFinite(k, t.data)
    const stream = rngState() // building draws an init that is overwritten: leave the stream untouched
    let model: GPT
    try {
      checkSizes(config, tensors)
      model = new GPT(config)
    } finally {
      setRngState(stream)
    }
    requantize(model, metadata.quantized) // now the model has the file's layout: every name and shape can be compared
    const own = checkpointTensors(model),
      bufs = buffers(model)
    const missing = [...Object.keys(own), ...Object.keys(bufs)].filter((k) => !Object.hasOwn(tensors, k))
    const unexpected = Object.keys(tensors).filter((k) => !Object.hasOwn(own, k) && !Object.hasOwn(bufs, k))
    if (missing.length) throw new Error(`missing tensor(s) ${missing.join(', ')}`)
    if (unexpected.length) throw new Error(`unexpected tensor(s) ${unexpected.join(', ')}`)
    for (const [k, b] of Object.entries(bufs)) {
      const t = tensors[k]
      if (t.dtype !== b.dtype || !sameShape(t.shape, b.shape))
        throw new Error(
          `${k} is ${t.dtype} ${shapeStr(t.shape)} in the file but ${b.dtype} ${shapeStr(b.shape)} in the model`,
        )
    }
    model.loadStateDict(Object.fromEntries(Object.keys(own).map((k) => [k, toTensor(tensors[k], k)])), {
      strict: false,
    })
    loadBuffers(model, Object.fromEntries(Object.keys(bufs).map((k) => [k, tensors[k]])))
    return model
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err) // every error names the file it came from
    throw new Error(message.startsWith('safetensors:') ? message : `checkpointFromBytes: ${source}: ${message}`)
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
  const steps = Object.fromEntries(Object.entries(state).map(([i, st]) => [i, st.step])) // Adam's bias correction needs each t
  // safetensors metadata holds only strings: lr and the steps go in as text, checked again when read
  return serializeSafetensors(tensors, {
    format: 'tenny-optimizer',
    optimizer: opt.constructor.name,
    lr: String(lr),
    steps: JSON.stringify(steps),
  })
}

/** Restore what optimizerToBytes wrote into `opt` (same class and parameters); everything is checked before it is used. */
export function loadOptimizerBytes(
  opt: Optimizer,
  bytes: Uint8Array,
  source = '<bytes>',
  options: LoadOptions = {},
): void {
  const op = `${opt.constructor.name}.load`
  const { tensors, metadata } = parseSafetensors(bytes, source, options)
  if (metadata.format !== 'tenny-optimizer')
    throw new Error(`${op}: ${source} is not an optimizer state file (format ${JSON.stringify(metadata.format)})`)
  if (metadata.optimizer !== opt.constructor.name)
    throw new Error(`${op}: ${source} holds ${metadata.optimizer} state, not ${opt.constructor.name}`)
  let steps: unknown
  try {
    steps = JSON.parse(metadata.steps ?? '')
  } catch {
    throw new Error(`${op}: ${source} has no readable 'steps' in its metadata`)
  }
  if (typeof steps !== 'object' || steps === null || Array.isArray(steps))
    throw new Error(`${op}: ${source}: 'steps' must map parameter indices to step counts, got ${metadata.steps}`)
  // Number('') is 0 and Number('Infinity') is not a learning rate: only a plain decimal number is read as one
  if (!/^(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(metadata.lr ?? ''))
    throw new Error(`${op}: ${source}: lr ${JSON.stringify(metadata.lr)} is not a number ≥ 0`)
  const state = new Map(Object.entries(steps).map(([i, step]): [string, ParamState] => [i, { step, buffers: {} }]))
  for (const [key, t] of Object.entries(tensors)) {
    // '<parameter index>.<buffer name>', e.g. '3.m'
    const m = /^(\d+)\.(\w+)$/.exec(key),
      st = m && state.get(m[1])
    if (!m || !st || !(t.data instanceof Float32Array))
      throw new Error(
        `${op}: ${source}: tensor '${key}' is not '<index>.<buffer>' of a parameter listed in 'steps' (as F32)`,
      )
    assertFinite(`${op}: ${source}: '${key}'`, t.data)
    st.buffers = { ...st.buffers, [m[2]]: t.data } // a computed key is an own property, even '__proto__': checked, not lost
  }
  opt.loadStateDict({ lr: Number(metadata.lr), state: Object.fromEntries(state) }) // validates indices, steps, buffer names and sizes
}
