// Adapter files: Tenny's own (adapters.safetensors + adapter_config.json), and the PEFT and MLX layouts, each
// written and read back. The rule for every loader: read and check everything (names, shapes, the base) before
// the model changes, so a bad file leaves the model as it was. All writes are atomic (temp file + rename).
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createHash } from 'node:crypto'
import { Tensor } from '../src/tensor.js'
import { rngState, setRngState } from '../src/random.js'
import { K } from '../src/kernels/index.js'
import type { StoredTensor } from '../src/safetensors.js'
import { saveSafetensors, loadSafetensors } from '../src/safetensors-node.js'
import { writeFileAtomic } from '../src/files-node.js'
import { saveNpz, loadNpz } from '../src/npy-node.js'
import { Module } from './module.js'
import { Linear } from './linear.js'
import { QuantizedLinear } from './quantized.js'
import { LoRALinear } from './lora.js'
import { loraLayers } from './lora-model.js'

/** One layer's adapter as files carry it: A (rank, in) and B (out, rank) in PEFT/Tenny orientation. */
type LayerAdapter = { path: string; loraA: Float32Array; loraB: Float32Array; rank: number; alpha: number; scale: number }

const CONFIG = 'adapter_config.json'

/** sha256 (16 hex digits) of the base model's parameter names and shapes, as if no LoRA were applied; quantized weights count by their logical (out, in). */
export function baseHash(model: Module): string {
  const lines: string[] = []
  const walk = (m: Module, prefix: string): void => {
    if (m instanceof LoRALinear) return walk(m.base, prefix) // the base sits where the LoRALinear stands
    if (m instanceof QuantizedLinear) lines.push(`${prefix}weight (${m.outFeatures},${m.inFeatures})`)
    for (const [k, v] of Object.entries(m)) if (v instanceof Tensor) lines.push(`${prefix}${k} (${v.shape.join(',')})`)
    for (const [name, child] of m.namedChildren()) walk(child, `${prefix}${name}.`)
  }
  walk(model, '')
  return createHash('sha256').update(lines.sort().join('\n')).digest('hex').slice(0, 16)
}

/** Adapter `name` (default: the first layer's active one) of every LoRA layer that has it. */
function collect(op: string, model: Module, name?: string): { name: string; layers: LayerAdapter[]; dropout: number } {
  const all = loraLayers(model)
  if (all.length === 0) throw new Error(`${op}: the model has no LoRA layers (applyLoRA first)`)
  const wanted = name ?? all[0][1].active
  const layers: LayerAdapter[] = []
  for (const [path, layer] of all) {
    const a = layer.plainAdapter(wanted) // a PiSSA adapter converted to plain LoRA on the original W (rank 2r)
    if (a) layers.push({ path, loraA: a.loraA.data, loraB: a.loraB.data, rank: a.loraA.shape[0], alpha: a.alpha, scale: a.scale })
  }
  if (layers.length === 0) throw new Error(`${op}: no LoRA layer has an adapter named '${wanted}'`)
  return { name: wanted, layers, dropout: all[0][1].dropout }
}

function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  return K.permute(data, [rows, cols], [1, 0])
}

function blockIndex(path: string): number {
  const m = /(?:^|\.)(\d+)(?:\.|$)/.exec(path)
  return m ? Number(m[1]) : -1
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)]
}

function readJson(op: string, path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new Error(`${op}: ${path} does not exist`)
  let value: unknown
  try {
    value = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new Error(`${op}: ${path} is not valid JSON (${err instanceof Error ? err.message : String(err)})`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${op}: ${path} is not a JSON object`)
  return value as Record<string, unknown>
}

function num(op: string, source: string, cfg: Record<string, unknown>, key: string): number {
  const v = cfg[key]
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${op}: ${source}: '${key}' must be a number, got ${JSON.stringify(v)}`)
  return v
}

function f32(op: string, source: string, key: string, t: StoredTensor | undefined): StoredTensor & { data: Float32Array } {
  if (!t) throw new Error(`${op}: ${source}: missing tensor '${key}'`)
  if (!(t.data instanceof Float32Array) || t.shape.length !== 2) throw new Error(`${op}: ${source}: '${key}' must be a 2-D float tensor, got ${t.dtype} (${t.shape.join(',')})`)
  return { ...t, data: t.data }
}

/** Check every layer against the model, then install all of them as adapter `name` and freeze everything else. */
function install(op: string, source: string, model: Module, layers: LayerAdapter[], name: string, dropout: number): void {
  const targets = layers.map((l): Linear | QuantizedLinear | LoRALinear => {
    let m: Module
    try {
      m = model.getModule(l.path)
    } catch {
      throw new Error(`${op}: ${source}: the adapter's layer '${l.path}' does not exist in this model`)
    }
    if (!(m instanceof Linear || m instanceof QuantizedLinear || m instanceof LoRALinear)) throw new Error(`${op}: ${source}: '${l.path}' is a ${m.constructor.name}, not a Linear layer`)
    if (l.loraA.length !== l.rank * m.inFeatures || l.loraB.length !== m.outFeatures * l.rank) {
      throw new Error(`${op}: ${source}: '${l.path}' is (${m.outFeatures},${m.inFeatures}) in the model, but its adapter of rank ${l.rank} has ${l.loraA.length} + ${l.loraB.length} values (expected A (${l.rank},${m.inFeatures}), B (${m.outFeatures},${l.rank}))`)
    }
    return m
  })
  const rng = rngState() // wrapping a layer draws an init that is overwritten at once: leave the stream as it was
  model.freeze()
  for (const [i, l] of layers.entries()) {
    const m = targets[i]
    const layer = m instanceof LoRALinear ? m : LoRALinear.fromLinear(m, { rank: l.rank, name, dropout })
    if (layer !== m) model.setModule(l.path, layer)
    layer.putAdapter(name, l)
  }
  setRngState(rng)
}

// ---- Tenny's layout ------------------------------------------------------------------------------

/** Write adapter `name` to `file` (.safetensors; names `<path>.loraA` / `.loraB`) and adapter_config.json beside it. */
export function saveAdapters(file: string, model: Module, { name }: { name?: string } = {}): Record<string, unknown> {
  const { name: adapter, layers, dropout } = collect('saveAdapters', model, name)
  const first = layers[0], paths = layers.map((l) => l.path)
  const tensors: Record<string, StoredTensor> = {}
  const perLayer: Record<string, { alpha: number; scale: number }> = {}
  for (const l of layers) {
    tensors[`${l.path}.loraA`] = { dtype: 'F32', shape: [l.rank, l.loraA.length / l.rank], data: l.loraA }
    tensors[`${l.path}.loraB`] = { dtype: 'F32', shape: [l.loraB.length / l.rank, l.rank], data: l.loraB }
    if (l.alpha !== first.alpha || l.scale !== first.scale) perLayer[l.path] = { alpha: l.alpha, scale: l.scale }
  }
  const config = {
    format: 'tenny-lora', version: 1, name: adapter, rank: first.rank, alpha: first.alpha, scale: first.scale, dropout,
    targets: unique(paths.map((p) => p.split('.').pop()!)).sort(), layers: unique(paths.map(blockIndex)).filter((i) => i >= 0).sort((a, b) => a - b),
    paths, perLayer, baseHash: baseHash(model),
  }
  saveSafetensors(file, tensors, { format: 'tenny-lora' })
  writeFileAtomic(join(dirname(file), CONFIG), JSON.stringify(config, null, 2) + '\n')
  return config
}

/** Load what saveAdapters wrote (as adapter `name`, default the saved name), after checking names, shapes and the base. */
export function loadAdapters(model: Module, file: string, { name }: { name?: string } = {}): { name: string; paths: string[] } {
  const op = 'loadAdapters', cfgPath = join(dirname(file), CONFIG)
  const cfg = readJson(op, cfgPath)
  if (cfg.format !== 'tenny-lora') throw new Error(`${op}: ${cfgPath} is not a Tenny adapter config (format ${JSON.stringify(cfg.format)}); for PEFT or MLX files use importPEFT / importMLX`)
  const hash = baseHash(model)
  if (cfg.baseHash !== hash) throw new Error(`${op}: ${file} was made for another base model: its base hash is ${String(cfg.baseHash)}, this model's is ${hash} (parameter names or shapes differ)`)
  const paths = cfg.paths
  if (!Array.isArray(paths) || !paths.every((p) => typeof p === 'string')) throw new Error(`${op}: ${cfgPath}: 'paths' must be a list of layer paths`)
  const { tensors } = loadSafetensors(file)
  const expected = new Set(paths.flatMap((p) => [`${p}.loraA`, `${p}.loraB`]))
  const unknown = Object.keys(tensors).filter((k) => !expected.has(k))
  if (unknown.length) throw new Error(`${op}: ${file}: unknown key(s) ${unknown.join(', ')} (not in ${CONFIG}'s paths)`)
  const perLayer = (cfg.perLayer ?? {}) as Record<string, { alpha?: number; scale?: number }>
  const alpha = num(op, cfgPath, cfg, 'alpha'), scale = num(op, cfgPath, cfg, 'scale')
  const layers = paths.map((path): LayerAdapter => {
    const a = f32(op, file, `${path}.loraA`, tensors[`${path}.loraA`]), b = f32(op, file, `${path}.loraB`, tensors[`${path}.loraB`])
    if (b.shape[1] !== a.shape[0]) throw new Error(`${op}: ${file}: '${path}': loraA is (${a.shape.join(',')}) but loraB is (${b.shape.join(',')}): ranks differ`)
    return { path, loraA: a.data, loraB: b.data, rank: a.shape[0], alpha: perLayer[path]?.alpha ?? alpha, scale: perLayer[path]?.scale ?? scale }
  })
  const adapter = name ?? (typeof cfg.name === 'string' ? cfg.name : 'default')
  install(op, file, model, layers, adapter, typeof cfg.dropout === 'number' ? cfg.dropout : 0)
  return { name: adapter, paths }
}

// ---- PEFT (Hugging Face) -------------------------------------------------------------------------

const PEFT_KEY = /^base_model\.model\.(.+)\.lora_(A|B)(?:\.[^.]+)?\.weight$/

/** Write `dir`/adapter_model.safetensors (`base_model.model.<path>.lora_A.weight` (r, in), `lora_B.weight` (out, r)) and PEFT's adapter_config.json. */
export function exportPEFT(dir: string, model: Module, { name, baseModel = 'tenny' }: { name?: string; baseModel?: string } = {}): void {
  const { layers, dropout } = collect('exportPEFT', model, name)
  const first = layers[0]
  // PEFT's scale is lora_alpha / r (use_rslora: / √r); keep alpha when one of those rules gives the scale, else derive it
  const rslora = layers.every((l) => Math.abs(l.scale - l.alpha / Math.sqrt(l.rank)) <= 1e-6 * l.scale) && !layers.every((l) => Math.abs(l.scale - l.alpha / l.rank) <= 1e-6 * l.scale)
  const alphaOf = (l: LayerAdapter) => (Math.abs(l.scale - l.alpha / (rslora ? Math.sqrt(l.rank) : l.rank)) <= 1e-6 * l.scale ? l.alpha : l.scale * (rslora ? Math.sqrt(l.rank) : l.rank))
  const tensors: Record<string, StoredTensor> = {}
  const rankPattern: Record<string, number> = {}, alphaPattern: Record<string, number> = {}
  for (const l of layers) {
    tensors[`base_model.model.${l.path}.lora_A.weight`] = { dtype: 'F32', shape: [l.rank, l.loraA.length / l.rank], data: l.loraA }
    tensors[`base_model.model.${l.path}.lora_B.weight`] = { dtype: 'F32', shape: [l.loraB.length / l.rank, l.rank], data: l.loraB }
    if (l.rank !== first.rank) rankPattern[l.path] = l.rank
    if (alphaOf(l) !== alphaOf(first)) alphaPattern[l.path] = alphaOf(l)
  }
  const indices = unique(layers.map((l) => blockIndex(l.path))).filter((i) => i >= 0).sort((a, b) => a - b)
  const config = {
    peft_type: 'LORA', task_type: 'CAUSAL_LM', base_model_name_or_path: baseModel, inference_mode: true,
    r: first.rank, lora_alpha: alphaOf(first), lora_dropout: dropout, use_rslora: rslora, bias: 'none', fan_in_fan_out: false,
    target_modules: unique(layers.map((l) => l.path.split('.').pop()!)).sort(), layers_to_transform: indices.length ? indices : null,
    rank_pattern: rankPattern, alpha_pattern: alphaPattern, init_lora_weights: true, modules_to_save: null,
  }
  mkdirSync(dir, { recursive: true })
  saveSafetensors(join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' })
  writeFileAtomic(join(dir, CONFIG), JSON.stringify(config, null, 2) + '\n')
}

/** The value of a PEFT pattern (rank_pattern, alpha_pattern) whose key is this path or a dotted suffix of it. */
function pattern(p: unknown, path: string): number | undefined {
  if (typeof p !== 'object' || p === null) return undefined
  for (const [k, v] of Object.entries(p)) if (typeof v === 'number' && (path === k || path.endsWith(`.${k}`))) return v
  return undefined
}

/** Load a PEFT LoRA adapter directory into the model (as adapter `name`, default 'default'). */
export function importPEFT(model: Module, dir: string, { name = 'default' }: { name?: string } = {}): { paths: string[] } {
  const op = 'importPEFT', cfgPath = join(dir, CONFIG), file = join(dir, 'adapter_model.safetensors')
  const cfg = readJson(op, cfgPath)
  if (cfg.peft_type !== 'LORA') throw new Error(`${op}: ${cfgPath}: peft_type is ${JSON.stringify(cfg.peft_type)}, only 'LORA' is supported`)
  if (cfg.use_dora === true) throw new Error(`${op}: ${cfgPath}: DoRA adapters (use_dora) are not supported`)
  const alpha = num(op, cfgPath, cfg, 'lora_alpha'), rslora = cfg.use_rslora === true
  const { tensors } = loadSafetensors(file)
  const halves = new Map<string, { A?: StoredTensor; B?: StoredTensor }>()
  for (const [key, t] of Object.entries(tensors)) {
    const m = PEFT_KEY.exec(key)
    if (!m) throw new Error(`${op}: ${file}: unknown key '${key}' (expected base_model.model.<path>.lora_A.weight or .lora_B.weight)`)
    const entry = halves.get(m[1]) ?? {}
    entry[m[2] as 'A' | 'B'] = t
    halves.set(m[1], entry)
  }
  const layers = [...halves].map(([path, h]): LayerAdapter => {
    const a = f32(op, file, `base_model.model.${path}.lora_A.weight`, h.A), b = f32(op, file, `base_model.model.${path}.lora_B.weight`, h.B)
    const rank = a.shape[0], layerAlpha = pattern(cfg.alpha_pattern, path) ?? alpha
    if (b.shape[1] !== rank) throw new Error(`${op}: ${file}: '${path}': lora_A is (${a.shape.join(',')}) but lora_B is (${b.shape.join(',')}): ranks differ`)
    return { path, loraA: a.data, loraB: b.data, rank, alpha: layerAlpha, scale: layerAlpha / (rslora ? Math.sqrt(rank) : rank) }
  })
  install(op, file, model, layers, name, typeof cfg.lora_dropout === 'number' ? cfg.lora_dropout : 0)
  return { paths: layers.map((l) => l.path) }
}

// ---- MLX (mlx-examples lora.py / mlx_lm) ---------------------------------------------------------

function mlxFormat(op: string, file: string): 'safetensors' | 'npz' {
  if (file.endsWith('.safetensors')) return 'safetensors'
  if (file.endsWith('.npz')) return 'npz'
  throw new Error(`${op}: ${file}: expected a .safetensors or .npz file name`)
}

/** Write MLX's layout: `<path>.lora_a` (in, r) and `<path>.lora_b` (r, out) to .safetensors or .npz, and mlx_lm's adapter_config.json beside it. */
export function exportMLX(file: string, model: Module, { name }: { name?: string } = {}): void {
  const op = 'exportMLX', format = mlxFormat(op, file)
  const { layers, dropout } = collect(op, model, name)
  const first = layers[0]
  const odd = layers.find((l) => l.rank !== first.rank || l.scale !== first.scale)
  if (odd) throw new Error(`${op}: MLX's adapter_config holds one rank and one scale, but '${odd.path}' has rank ${odd.rank}, scale ${odd.scale} and '${first.path}' rank ${first.rank}, scale ${first.scale}`)
  const arrays: Record<string, { shape: number[]; data: Float32Array }> = {}
  for (const l of layers) {
    const inF = l.loraA.length / l.rank, outF = l.loraB.length / l.rank
    arrays[`${l.path}.lora_a`] = { shape: [inF, l.rank], data: transpose(l.loraA, l.rank, inF) } // (in, r) = Aᵀ
    arrays[`${l.path}.lora_b`] = { shape: [l.rank, outF], data: transpose(l.loraB, outF, l.rank) } // (r, out) = Bᵀ
  }
  if (format === 'npz') saveNpz(file, arrays)
  else saveSafetensors(file, Object.fromEntries(Object.entries(arrays).map(([k, a]) => [k, { dtype: 'F32', ...a }])))
  const indices = unique(layers.map((l) => blockIndex(l.path))).filter((i) => i >= 0)
  const keys = unique(layers.map((l) => l.path.replace(/^.*?\.\d+\./, ''))).sort() // paths inside a block, e.g. attn.qProj
  const config = { fine_tune_type: 'lora', num_layers: indices.length, lora_parameters: { rank: first.rank, scale: first.scale, dropout, keys } }
  writeFileAtomic(join(dirname(file), CONFIG), JSON.stringify(config, null, 2) + '\n')
}

/** Load MLX LoRA weights; the scale comes from adapter_config.json beside the file, or { scale } (the original lora.py used 2.0). */
export function importMLX(model: Module, file: string, { name = 'default', scale }: { name?: string; scale?: number } = {}): { paths: string[] } {
  const op = 'importMLX', format = mlxFormat(op, file), cfgPath = join(dirname(file), CONFIG)
  const cfg = existsSync(cfgPath) ? readJson(op, cfgPath) : null
  const params = cfg && typeof cfg.lora_parameters === 'object' && cfg.lora_parameters !== null ? cfg.lora_parameters as Record<string, unknown> : null
  const s = scale ?? (params ? num(op, cfgPath, params, 'scale') : undefined)
  if (s === undefined) throw new Error(`${op}: no ${CONFIG} with lora_parameters.scale next to ${file}; pass { scale } (the original mlx-examples lora.py used 2.0)`)
  const stored: Record<string, StoredTensor> = format === 'npz'
    ? Object.fromEntries([...loadNpz(file)].map(([k, a]) => [k, { dtype: 'F32', ...a }]))
    : loadSafetensors(file).tensors
  const halves = new Map<string, { a?: StoredTensor; b?: StoredTensor }>()
  for (const [key, t] of Object.entries(stored)) {
    const m = /^(.+)\.lora_(a|b)$/.exec(key)
    if (!m) throw new Error(`${op}: ${file}: unknown key '${key}' (expected <path>.lora_a or <path>.lora_b)`)
    const entry = halves.get(m[1]) ?? {}
    entry[m[2] as 'a' | 'b'] = t
    halves.set(m[1], entry)
  }
  const layers = [...halves].map(([path, h]): LayerAdapter => {
    const a = f32(op, file, `${path}.lora_a`, h.a), b = f32(op, file, `${path}.lora_b`, h.b)
    const [inF, rank] = a.shape, outF = b.shape[1]
    if (b.shape[0] !== rank) throw new Error(`${op}: ${file}: '${path}': lora_a is (${a.shape.join(',')}) but lora_b is (${b.shape.join(',')}): ranks differ`)
    if (params && typeof params.rank === 'number' && params.rank !== rank) throw new Error(`${op}: ${file}: '${path}' has rank ${rank}, but ${CONFIG} says ${params.rank}`)
    return { path, loraA: transpose(a.data, inF, rank), loraB: transpose(b.data, rank, outF), rank, alpha: s * rank, scale: s }
  })
  install(op, file, model, layers, name, params && typeof params.dropout === 'number' ? params.dropout : 0)
  return { paths: layers.map((l) => l.path) }
}
