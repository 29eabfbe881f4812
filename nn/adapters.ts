// Adapter files as bytes, { filename: Uint8Array }, so a browser page downloads and loads them as Node does
// (adapters-node.ts adds paths): Tenny's own layout, PEFT's and mlx-lm's, each written and read back, DoRA's
// magnitude included. Every loader reads and checks everything before the model changes: a bad file changes nothing.
import { Tensor } from '../src/tensor.js'
import { rngState, setRngState } from '../src/random.js'
import { serializeSafetensors, parseSafetensors, type StoredTensor, type LoadOptions } from '../src/safetensors.js'
import { encodeNpz, decodeNpz } from '../src/npy.js'
import { transpose as transposeOp } from '../ops/movement.js'
import { Module } from './module.js'
import { Linear } from './linear.js'
import { QuantizedLinear } from './quantized.js'
import { LoRALinear, loraScale, scaleRule, type BaseLayer } from './lora.js'
import { DoRALinear } from './dora.js'
import { PiSSALinear, plainLoRA, originalWeight } from './pissa.js'
import { loraLayers, linearLayers, adapterStack, getAdapter, activeAdapter, blockIndex } from './lora-model.js'

/** Files by name, as bytes: what a browser downloads or a drop gives, and what the -node functions write and read. */
export type AdapterFiles = Record<string, Uint8Array>

/** One layer's adapter as files carry it: A (rank, in), B (out, rank) in PEFT/Tenny orientation, and DoRA's m (out). */
type LayerAdapter = { path: string; loraA: Float32Array; loraB: Float32Array; rank: number; alpha: number; scale: number; magnitude?: Float32Array }
/** What every layout's reader hands install(): the layers and the settings that apply to all of them. */
type Parsed = { layers: LayerAdapter[]; dropout: number; dora: boolean }

const CONFIG = 'adapter_config.json' // the name PEFT and mlx-lm both read; Tenny's own config uses it too
const text = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value, null, 2) + '\n')

/** FNV-1a (64-bit, 16 hex digits) of the base model's parameter names and shapes, as if no adapter were applied; quantized weights count by their logical (out, in). */
export function baseHash(model: Module): string {
  const lines: string[] = []
  const walk = (m: Module, prefix: string): void => {
    if (m instanceof LoRALinear) return walk(m.base, prefix) // the base sits where the adapter stands
    if (m instanceof QuantizedLinear) lines.push(`${prefix}weight (${m.outFeatures},${m.inFeatures})`)
    for (const [k, v] of Object.entries(m)) if (v instanceof Tensor) lines.push(`${prefix}${k} (${v.shape.join(',')})`)
    for (const [name, child] of m.namedChildren()) walk(child, `${prefix}${name}.`)
  }
  walk(model, '')
  // FNV-1a, not a cryptographic hash: it only has to tell bases apart, and it runs the same in a browser
  let h = 0xcbf29ce484222325n
  for (const byte of new TextEncoder().encode(lines.sort().join('\n'))) h = ((h ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn
  return h.toString(16).padStart(16, '0')
}

/** Adapter `name` (default: the first layer's active one) of every stack that has it, as plain LoRA on the original W. */
function collect(op: string, model: Module, name?: string): Parsed & { name: string } {
  const all = loraLayers(model)
  if (all.length === 0) throw new Error(`${op}: the model has no LoRA layers (applyLoRA first)`)
  const wanted = name ?? activeAdapter(all[0][1]) // the one being trained, as a save after training expects
  const found = all.flatMap(([path, top]) => {
    const a = getAdapter(top, wanted)
    return a ? [{ path, a }] : []
  })
  if (found.length === 0) throw new Error(`${op}: no LoRA layer has an adapter named '${wanted}'`)
  // every layout keeps one kind per file (PEFT's use_dora, mlx-lm's fine_tune_type), so a mix cannot be written
  const dora = found[0].a instanceof DoRALinear
  if (found.some(({ a }) => a instanceof DoRALinear !== dora)) throw new Error(`${op}: adapter '${wanted}' is DoRA on some layers and plain LoRA on others; a file holds one kind`)
  const layers = found.map(({ path, a }): LayerAdapter => {
    const p = plainLoRA(a) // a PiSSA adapter as plain LoRA on the original W (rank 2r)
    return { path, loraA: p.loraA.data, loraB: p.loraB.data, rank: p.loraA.shape[0], alpha: p.alpha, scale: p.scale, ...(a instanceof DoRALinear && { magnitude: a.magnitude.data }) }
  })
  return { name: wanted, layers, dropout: found[0].a.dropout, dora }
}

/** (rows, cols) → (cols, rows): MLX stores the factors the other way round, x·lora_a·lora_b. */
function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  return transposeOp(new Tensor(data, [rows, cols])).data
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)]
}

function readJson(op: string, source: string, bytes: Uint8Array): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw new Error(`${op}: ${source} is not valid JSON (${err instanceof Error ? err.message : String(err)})`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${op}: ${source} is not a JSON object`)
  return value as Record<string, unknown>
}

function num(op: string, source: string, cfg: Record<string, unknown>, key: string): number {
  const v = cfg[key]
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${op}: ${source}: '${key}' must be a number, got ${JSON.stringify(v)}`)
  return v
}

/** The tensor under `key`, required to be float with `ndim` dims (F16/BF16 arrive decoded as F32). */
function f32(op: string, source: string, key: string, t: StoredTensor | undefined, ndim = 2): StoredTensor & { data: Float32Array } {
  if (!t) throw new Error(`${op}: ${source}: missing tensor '${key}'`)
  if (!(t.data instanceof Float32Array) || t.shape.length !== ndim) throw new Error(`${op}: ${source}: '${key}' must be a ${ndim}-D float tensor, got ${t.dtype} (${t.shape.join(',')})`)
  return { ...t, data: t.data }
}

/** Where adapter `name` goes on the model's layer `m`: on top of it, or in place of an adapter of that name. */
function placeFor(m: Linear | QuantizedLinear | LoRALinear, name: string): { base: BaseLayer; old?: LoRALinear } {
  const old = m instanceof LoRALinear ? getAdapter(m, name) : undefined
  if (!old) return { base: m }
  if (!(old instanceof PiSSALinear)) return { base: old.base, old }
  // a plain adapter replacing a PiSSA one needs the original W under it: W_res + W_r, as one float Linear
  return { base: Linear.fromWeights(originalWeight(old), old.baseLinear().bias, { requiresGrad: false }), old }
}

/** Check every layer against the model, then install them all as adapter `name` (trainable) and freeze everything else. */
function install(op: string, source: string, model: Module, { layers, dropout, dora }: Parsed, name: string): void {
  // Phase 1 finds and checks every layer; nothing in the model changes until all of them pass.
  const places = layers.map((l) => {
    let m: Module
    try {
      m = model.getModule(l.path)
    } catch {
      throw new Error(`${op}: ${source}: the adapter's layer '${l.path}' does not exist in this model`)
    }
    if (!(m instanceof Linear || m instanceof QuantizedLinear || m instanceof LoRALinear)) throw new Error(`${op}: ${source}: '${l.path}' is a ${m.constructor.name}, not a Linear layer`)
    if (l.loraA.length !== l.rank * m.inFeatures || l.loraB.length !== m.outFeatures * l.rank || (l.magnitude && l.magnitude.length !== m.outFeatures)) {
      throw new Error(`${op}: ${source}: '${l.path}' is (${m.outFeatures},${m.inFeatures}) in the model, but its adapter of rank ${l.rank} has ${l.loraA.length} + ${l.loraB.length} values (expected A (${l.rank},${m.inFeatures}), B (${m.outFeatures},${l.rank}))`)
    }
    const place = placeFor(m, name)
    if (dora && place.base instanceof LoRALinear) throw new Error(`${op}: ${source}: '${l.path}' already has adapters; a DoRA adapter must be a layer's first`)
    return { ...place, top: m }
  })
  const stream = rngState() // each new layer draws an init that is overwritten at once: leave the stream as it was
  const built = layers.map((l, i) => {
    const options = { rank: l.rank, alpha: l.alpha, scale: l.scale, name, dropout }
    const layer = dora ? new DoRALinear(places[i].base, options) : new LoRALinear(places[i].base, options)
    layer.loraA.data.set(l.loraA)
    layer.loraB.data.set(l.loraB)
    if (layer instanceof DoRALinear && l.magnitude) layer.magnitude.data.set(l.magnitude)
    return layer
  })
  setRngState(stream)
  // Phase 2 cannot fail: swap the new layers in, and only the loaded adapter trains, as after applyLoRA.
  model.freeze()
  for (const [i, l] of layers.entries()) {
    const { old, top } = places[i], layer = built[i]
    const above = old && top instanceof LoRALinear ? adapterStack(top).find((a) => a.base === old) : undefined
    if (above) above.base = layer // the replaced adapter sat inside a stack
    else model.setModule(l.path, layer)
    for (const t of [layer.loraA, layer.loraB, ...(layer instanceof DoRALinear ? [layer.magnitude] : [])]) t.requiresGrad = true
  }
}

// ---- Tenny's layout ---------------------------------------------------------------------------------

/** Adapter `name` as Tenny's files: adapters.safetensors (`<path>.loraA` / `.loraB`, DoRA's `.magnitude`) and adapter_config.json. */
export function adapterFiles(model: Module, { name }: { name?: string } = {}): AdapterFiles {
  const { name: adapter, layers, dropout, dora } = collect('adapterFiles', model, name)
  const first = layers[0], paths = layers.map((l) => l.path)
  const tensors: Record<string, StoredTensor> = {}
  const perLayer: Record<string, { alpha: number; scale: number }> = {}
  // one alpha and scale in the config; perLayer keeps any layer that differs (a PiSSA layer at rank 2r, say)
  for (const l of layers) {
    tensors[`${l.path}.loraA`] = { dtype: 'F32', shape: [l.rank, l.loraA.length / l.rank], data: l.loraA }
    tensors[`${l.path}.loraB`] = { dtype: 'F32', shape: [l.loraB.length / l.rank, l.rank], data: l.loraB }
    if (l.magnitude) tensors[`${l.path}.magnitude`] = { dtype: 'F32', shape: [l.magnitude.length], data: l.magnitude }
    if (l.alpha !== first.alpha || l.scale !== first.scale) perLayer[l.path] = { alpha: l.alpha, scale: l.scale }
  }
  const config = {
    format: 'tenny-lora', version: 1, name: adapter, rank: first.rank, alpha: first.alpha, scale: first.scale, dropout, ...(dora && { useDora: true }),
    targets: unique(paths.map((p) => p.split('.').pop()!)).sort(), layers: unique(paths.map(blockIndex)).filter((i) => i >= 0).sort((a, b) => a - b),
    paths, perLayer, baseHash: baseHash(model),
  }
  return { 'adapters.safetensors': serializeSafetensors(tensors, { format: 'tenny-lora' }), [CONFIG]: text(config) }
}

/** Load what adapterFiles gave (as adapter `name`, default the saved name), after checking names, shapes and the base. */
export function loadAdapterFiles(model: Module, files: AdapterFiles, { name, source = 'adapters.safetensors', ...options }: { name?: string; source?: string } & LoadOptions = {}): { name: string; paths: string[] } {
  const op = 'loadAdapters'
  const cfg = readJson(op, CONFIG, need(op, files, CONFIG))
  if (cfg.format !== 'tenny-lora') throw new Error(`${op}: ${CONFIG} is not a Tenny adapter config (format ${JSON.stringify(cfg.format)}); for PEFT or MLX files use importPEFT / importMLX`)
  // adapters fit only the base they were trained on: names and shapes must be those the file was made for
  const hash = baseHash(model)
  if (cfg.baseHash !== hash) throw new Error(`${op}: ${source} was made for another base model: its base hash is ${String(cfg.baseHash)}, this model's is ${hash} (parameter names or shapes differ)`)
  const paths = cfg.paths
  if (!Array.isArray(paths) || !paths.every((p) => typeof p === 'string')) throw new Error(`${op}: ${CONFIG}: 'paths' must be a list of layer paths`)
  const { tensors } = parseSafetensors(need(op, files, 'adapters.safetensors'), source, options)
  const dora = cfg.useDora === true
  // every tensor must belong to a listed layer: an extra one means the pair of files does not match
  const expected = new Set(paths.flatMap((p) => [`${p}.loraA`, `${p}.loraB`, ...(dora ? [`${p}.magnitude`] : [])]))
  const unknown = Object.keys(tensors).filter((k) => !expected.has(k))
  if (unknown.length) throw new Error(`${op}: ${source}: unknown key(s) ${unknown.join(', ')} (not in ${CONFIG}'s paths)`)
  const perLayer = (cfg.perLayer ?? {}) as Record<string, { alpha?: number; scale?: number }>
  const alpha = num(op, CONFIG, cfg, 'alpha'), scale = num(op, CONFIG, cfg, 'scale')
  const layers = paths.map((path): LayerAdapter => {
    const a = f32(op, source, `${path}.loraA`, tensors[`${path}.loraA`]), b = f32(op, source, `${path}.loraB`, tensors[`${path}.loraB`])
    if (b.shape[1] !== a.shape[0]) throw new Error(`${op}: ${source}: '${path}': loraA is (${a.shape.join(',')}) but loraB is (${b.shape.join(',')}): ranks differ`)
    const magnitude = dora ? f32(op, source, `${path}.magnitude`, tensors[`${path}.magnitude`], 1).data : undefined
    return { path, loraA: a.data, loraB: b.data, rank: a.shape[0], alpha: perLayer[path]?.alpha ?? alpha, scale: perLayer[path]?.scale ?? scale, magnitude }
  })
  const adapter = name ?? (typeof cfg.name === 'string' ? cfg.name : 'default')
  install(op, source, model, { layers, dropout: typeof cfg.dropout === 'number' ? cfg.dropout : 0, dora }, adapter)
  return { name: adapter, paths }
}

function need(op: string, files: AdapterFiles, key: string): Uint8Array {
  const bytes = files[key]
  if (!(bytes instanceof Uint8Array)) throw new Error(`${op}: no ${key} among the files (${Object.keys(files).join(', ') || 'none'})`)
  return bytes
}

// ---- PEFT (Hugging Face) ----------------------------------------------------------------------------

// PEFT's keys after get_peft_model_state_dict drops the adapter name: `…lora_A.weight`, `…lora_magnitude_vector`;
// a name left in (`lora_A.default.weight`) is accepted too.
const PEFT_KEY = /^base_model\.model\.(.+)\.(lora_A|lora_B|lora_magnitude_vector)(?:\.[^.]+)?(?:\.weight)?$/

/** PEFT's target_modules: the layers' short names when those select exactly these layers in the model, else the full paths. */
function peftTargets(model: Module, paths: string[]): string[] {
  const names = unique(paths.map((p) => p.split('.').pop()!)).sort()
  const selected = linearLayers(model).map(([p]) => p).filter((p) => names.some((n) => p === n || p.endsWith(`.${n}`)))
  return selected.length === paths.length && selected.every((p) => paths.includes(p)) ? names : [...paths].sort()
}

/**
 * PEFT's files: adapter_model.safetensors (`base_model.model.<path>.lora_A.weight` (r, in), `lora_B.weight`
 * (out, r), DoRA's `lora_magnitude_vector` (out)) and an adapter_config.json whose target_modules select exactly
 * these layers (layers_to_transform stays null: PEFT's layer regex needs a dot before the block list's name).
 */
export function peftFiles(model: Module, { name, baseModel = 'tenny' }: { name?: string; baseModel?: string } = {}): AdapterFiles {
  const { layers, dropout, dora } = collect('exportPEFT', model, name)
  const first = layers[0]
  // PEFT's scale is lora_alpha / r (use_rslora: / √r); keep alpha when one of those rules gives the scale, else derive it
  const rslora = layers.every((l) => scaleRule(l) === 'alpha/√rank')
  const alphaOf = (l: LayerAdapter) => (scaleRule(l) === (rslora ? 'alpha/√rank' : 'alpha/rank') ? l.alpha : l.scale * (rslora ? Math.sqrt(l.rank) : l.rank))
  const tensors: Record<string, StoredTensor> = {}
  const rankPattern: Record<string, number> = {}, alphaPattern: Record<string, number> = {}
  for (const l of layers) {
    tensors[`base_model.model.${l.path}.lora_A.weight`] = { dtype: 'F32', shape: [l.rank, l.loraA.length / l.rank], data: l.loraA }
    tensors[`base_model.model.${l.path}.lora_B.weight`] = { dtype: 'F32', shape: [l.loraB.length / l.rank, l.rank], data: l.loraB }
    if (l.magnitude) tensors[`base_model.model.${l.path}.lora_magnitude_vector`] = { dtype: 'F32', shape: [l.magnitude.length], data: l.magnitude }
    if (l.rank !== first.rank) rankPattern[l.path] = l.rank
    if (alphaOf(l) !== alphaOf(first)) alphaPattern[l.path] = alphaOf(l)
  }
  const config = {
    peft_type: 'LORA', task_type: 'CAUSAL_LM', base_model_name_or_path: baseModel, inference_mode: true,
    r: first.rank, lora_alpha: alphaOf(first), lora_dropout: dropout, use_rslora: rslora, use_dora: dora, bias: 'none', fan_in_fan_out: false,
    target_modules: peftTargets(model, layers.map((l) => l.path)), layers_to_transform: null, layers_pattern: null,
    rank_pattern: rankPattern, alpha_pattern: alphaPattern, init_lora_weights: true, modules_to_save: null,
  }
  return { 'adapter_model.safetensors': serializeSafetensors(tensors, { format: 'pt' }), [CONFIG]: text(config) }
}

/** The value of a PEFT pattern (rank_pattern, alpha_pattern) whose key is this path or a dotted suffix of it. */
function pattern(p: unknown, path: string): number | undefined {
  if (typeof p !== 'object' || p === null) return undefined
  for (const [k, v] of Object.entries(p)) if (typeof v === 'number' && (path === k || path.endsWith(`.${k}`))) return v
  return undefined
}

/** Load PEFT's files (adapter_model.safetensors + adapter_config.json) into the model as adapter `name`. */
export function importPEFTFiles(model: Module, files: AdapterFiles, { name = 'default', source = 'adapter_model.safetensors', ...options }: { name?: string; source?: string } & LoadOptions = {}): { paths: string[] } {
  const op = 'importPEFT'
  const cfg = readJson(op, CONFIG, need(op, files, CONFIG))
  if (cfg.peft_type !== 'LORA') throw new Error(`${op}: ${CONFIG}: peft_type is ${JSON.stringify(cfg.peft_type)}, only 'LORA' is supported`)
  const alpha = num(op, CONFIG, cfg, 'lora_alpha'), useRslora = cfg.use_rslora === true, dora = cfg.use_dora === true
  const { tensors } = parseSafetensors(need(op, files, 'adapter_model.safetensors'), source, options)
  const parts = new Map<string, Record<string, StoredTensor>>()
  for (const [key, t] of Object.entries(tensors)) { // group the halves (and DoRA's m) by layer path
    const m = PEFT_KEY.exec(key)
    if (!m || (m[2] === 'lora_magnitude_vector' && !dora)) throw new Error(`${op}: ${source}: unknown key '${key}' (expected base_model.model.<path>.lora_A.weight or .lora_B.weight${dora ? ' or .lora_magnitude_vector' : ''})`)
    parts.set(m[1], { ...parts.get(m[1]), [m[2]]: t })
  }
  const layers = [...parts].map(([path, h]): LayerAdapter => {
    const a = f32(op, source, `base_model.model.${path}.lora_A.weight`, h.lora_A), b = f32(op, source, `base_model.model.${path}.lora_B.weight`, h.lora_B)
    const rank = a.shape[0], layerAlpha = pattern(cfg.alpha_pattern, path) ?? alpha
    if (b.shape[1] !== rank) throw new Error(`${op}: ${source}: '${path}': lora_A is (${a.shape.join(',')}) but lora_B is (${b.shape.join(',')}): ranks differ`)
    const magnitude = dora ? f32(op, source, `base_model.model.${path}.lora_magnitude_vector`, h.lora_magnitude_vector, 1).data : undefined
    return { path, loraA: a.data, loraB: b.data, rank, alpha: layerAlpha, scale: loraScale({ rank, alpha: layerAlpha, useRslora }), magnitude }
  })
  install(op, source, model, { layers, dropout: typeof cfg.lora_dropout === 'number' ? cfg.lora_dropout : 0, dora }, name)
  return { paths: layers.map((l) => l.path) }
}

// ---- MLX (mlx-lm, and the original mlx-examples lora.py's .npz) ---------------------------------------

/**
 * mlx-lm's files: adapters.safetensors or adapters.npz (`<path>.lora_a` (in, r), `.lora_b` (r, out), DoRA's `.m`)
 * and its adapter_config.json. mlx-lm adapts the last num_layers blocks, so num_layers reaches back to the first adapted block.
 */
export function mlxFiles(model: Module, { name, format = 'safetensors' }: { name?: string; format?: 'safetensors' | 'npz' } = {}): AdapterFiles {
  const op = 'exportMLX'
  const { layers, dropout, dora } = collect(op, model, name)
  const first = layers[0]
  const odd = layers.find((l) => l.rank !== first.rank || l.scale !== first.scale)
  if (odd) throw new Error(`${op}: MLX's adapter_config holds one rank and one scale, but '${odd.path}' has rank ${odd.rank}, scale ${odd.scale} and '${first.path}' rank ${first.rank}, scale ${first.scale}`)
  const arrays: Record<string, { shape: number[]; data: Float32Array }> = {}
  for (const l of layers) {
    const inF = l.loraA.length / l.rank, outF = l.loraB.length / l.rank
    arrays[`${l.path}.lora_a`] = { shape: [inF, l.rank], data: transpose(l.loraA, l.rank, inF) } // (in, r) = Aᵀ
    arrays[`${l.path}.lora_b`] = { shape: [l.rank, outF], data: transpose(l.loraB, outF, l.rank) } // (r, out) = Bᵀ
    if (l.magnitude) arrays[`${l.path}.m`] = { shape: [outF], data: l.magnitude }
  }
  // mlx-lm wraps `keys` in model.layers[-num_layers:] (tuner/utils.py, linear_to_lora_layers): reach back to the
  // first adapted block; blocks in between get layers whose B = 0, which change nothing
  let blocks = 0
  for (const [path] of model.namedModules()) blocks = Math.max(blocks, blockIndex(path) + 1)
  const indices = layers.map((l) => blockIndex(l.path)).filter((i) => i >= 0)
  const keys = unique(layers.map((l) => (blockIndex(l.path) >= 0 ? l.path.replace(/^.*?\.\d+\./, '') : l.path))).sort() // paths inside a block, e.g. attn.qProj
  const config = { fine_tune_type: dora ? 'dora' : 'lora', num_layers: indices.length ? blocks - Math.min(...indices) : 0, lora_parameters: { rank: first.rank, scale: first.scale, dropout, keys } }
  const bytes = format === 'npz'
    ? encodeNpz(arrays)
    : serializeSafetensors(Object.fromEntries(Object.entries(arrays).map(([k, a]) => [k, { dtype: 'F32', ...a }])))
  return { [`adapters.${format}`]: bytes, [CONFIG]: text(config) }
}

/** Load MLX LoRA (or DoRA) weights: one .safetensors or .npz file; the scale from adapter_config.json if present, or { scale } (the original lora.py used 2.0). */
export function importMLXFiles(model: Module, files: AdapterFiles, { name = 'default', scale, source, ...options }: { name?: string; scale?: number; source?: string } & LoadOptions = {}): { paths: string[] } {
  const op = 'importMLX'
  const weights = Object.keys(files).filter((k) => k !== CONFIG)
  if (weights.length !== 1 || !/\.(safetensors|npz)$/.test(weights[0])) throw new Error(`${op}: expected one .safetensors or .npz file beside ${CONFIG}, got ${weights.join(', ') || 'none'}`)
  const file = source ?? weights[0]
  const cfg = files[CONFIG] ? readJson(op, CONFIG, files[CONFIG]) : null
  const params = cfg && typeof cfg.lora_parameters === 'object' && cfg.lora_parameters !== null ? cfg.lora_parameters as Record<string, unknown> : null
  const s = scale ?? (params ? num(op, CONFIG, params, 'scale') : undefined)
  if (s === undefined) throw new Error(`${op}: no ${CONFIG} with lora_parameters.scale next to ${file}; pass { scale } (the original mlx-examples lora.py used 2.0)`)
  const dora = cfg?.fine_tune_type === 'dora' // mlx-lm's DoRALinear: lora_a, lora_b and the magnitude m
  const stored = weights[0].endsWith('.npz')
    ? Object.fromEntries([...decodeNpz(files[weights[0]], file, options)].map(([k, a]): [string, StoredTensor] => [k, { dtype: 'F32', ...a }]))
    : parseSafetensors(files[weights[0]], file, options).tensors
  const parts = new Map<string, Record<string, StoredTensor>>()
  for (const [key, t] of Object.entries(stored)) {
    const m = /^(.+)\.(lora_a|lora_b|m)$/.exec(key)
    if (!m || (m[2] === 'm' && !dora)) throw new Error(`${op}: ${file}: unknown key '${key}' (expected <path>.lora_a or <path>.lora_b${dora ? ' or <path>.m' : ''})`)
    parts.set(m[1], { ...parts.get(m[1]), [m[2]]: t })
  }
  const layers = [...parts].map(([path, h]): LayerAdapter => {
    const a = f32(op, file, `${path}.lora_a`, h.lora_a), b = f32(op, file, `${path}.lora_b`, h.lora_b)
    const [inF, rank] = a.shape, outF = b.shape[1]
    if (b.shape[0] !== rank) throw new Error(`${op}: ${file}: '${path}': lora_a is (${a.shape.join(',')}) but lora_b is (${b.shape.join(',')}): ranks differ`)
    if (params && typeof params.rank === 'number' && params.rank !== rank) throw new Error(`${op}: ${file}: '${path}' has rank ${rank}, but ${CONFIG} says ${params.rank}`)
    const magnitude = dora ? f32(op, file, `${path}.m`, h.m, 1).data : undefined
    // MLX gives the scale, not alpha: alpha = scale·rank keeps loraScale's alpha/rank rule true
    return { path, loraA: transpose(a.data, inF, rank), loraB: transpose(b.data, rank, outF), rank, alpha: s * rank, scale: s, magnitude }
  })
  install(op, file, model, { layers, dropout: params && typeof params.dropout === 'number' ? params.dropout : 0, dora }, name)
  return { paths: layers.map((l) => l.path) }
}
