// Adapter files as bytes, { filename: Uint8Array }, so a browser page downloads and loads them as Node does
// (adapters-node.ts adds paths): Tenny's own layout here, PEFT's and mlx-lm's in interop.ts. Every loader reads
// and checks everything (names, shapes, ranks, finite values, settings) before the model changes: a bad file changes nothing.
import { Tensor } from '../../src/tensor.js'
import { rngState, setRngState } from '../../src/random.js'
import {
  serializeSafetensors,
  parseSafetensors,
  type StoredTensor,
  type LoadOptions,
} from '../../src/formats/safetensors.js'
import { Module } from '../module.js'
import { QuantizedLinear } from '../quantized.js'
import { LoRALinear, type ScaleRule } from '../lora.js'
import { DoRALinear } from '../dora.js'
import { plainLoRA } from '../pissa.js'
import {
  NamedAdapters,
  loraLayers,
  getAdapter,
  activeAdapter,
  blockIndex,
  isAdaptable,
  baseFor,
  putAdapter,
} from '../lora-model.js'
import { assertFinite } from './checkpoint.js'

/** Files by name, as bytes: what a browser downloads or a drop gives, and what the -node functions write and read. */
export type AdapterFiles = Record<string, Uint8Array>

/** One layer's adapter as files carry it: A (rank, in), B (out, rank) in PEFT/Tenny orientation, and DoRA's m (out). */
export type LayerAdapter = {
  path: string
  loraA: Float32Array
  loraB: Float32Array
  rank: number
  alpha: number
  scale: number
  rule?: ScaleRule // how scale came from alpha; 'given' when a file does not say
  magnitude?: Float32Array
}
/** What every layout's reader hands install(): the layers and the settings that apply to all of them. */
export type Parsed = { layers: LayerAdapter[]; dropout: number; dora: boolean }

export const CONFIG = 'adapter_config.json' // the name PEFT and mlx-lm both read; Tenny's own config uses it too
export const text = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value, null, 2) + '\n')

/** FNV-1a (64-bit, 16 hex digits) of the base model's parameter names and shapes, as if no adapter were applied; quantized weights count by their logical (out, in). */
export function baseHash(model: Module): string {
  const lines: string[] = []
  const walk = (m: Module, prefix: string): void => {
    if (m instanceof LoRALinear || m instanceof NamedAdapters) return walk(m.base, prefix) // its base, in its place
    if (m instanceof QuantizedLinear) lines.push(`${prefix}weight (${m.outFeatures},${m.inFeatures})`)
    for (const [k, v] of Object.entries(m)) if (v instanceof Tensor) lines.push(`${prefix}${k} (${v.shape.join(',')})`)
    for (const [name, child] of m.namedChildren()) walk(child, `${prefix}${name}.`)
  }
  walk(model, '')
  // FNV-1a, not a cryptographic hash: it only has to tell bases apart, and it runs the same in a browser
  let h = 0xcbf29ce484222325n
  for (const byte of new TextEncoder().encode(lines.sort().join('\n')))
    h = ((h ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn
  return h.toString(16).padStart(16, '0')
}

/** Adapter `name` (default: the first layer's active one) of every stack that has it, as plain LoRA on the original W. */
export function collect(op: string, model: Module, name?: string): Parsed & { name: string } {
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
  if (found.some(({ a }) => a instanceof DoRALinear !== dora))
    throw new Error(`${op}: adapter '${wanted}' is DoRA on some layers and plain LoRA on others; a file holds one kind`)
  const layers = found.map(({ path, a }): LayerAdapter => {
    const p = plainLoRA(a) // a PiSSA adapter as plain LoRA on the original W (rank 2r)
    return {
      path,
      loraA: p.loraA.data,
      loraB: p.loraB.data,
      rank: p.loraA.shape[0],
      alpha: p.alpha,
      scale: p.scale,
      rule: p.rule,
      ...(a instanceof DoRALinear && { magnitude: a.magnitude.data }),
    }
  })
  for (const l of layers) checkLayer(op, 'the model', l) // a file its own loader would refuse is never written
  return { name: wanted, layers, dropout: found[0].a.dropout, dora }
}

export function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)]
}

export function readJson(op: string, source: string, bytes: Uint8Array): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw new Error(`${op}: ${source} is not valid JSON (${err instanceof Error ? err.message : String(err)})`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error(`${op}: ${source} is not a JSON object`)
  return value as Record<string, unknown>
}

const show = (v: unknown): string => (typeof v === 'number' ? String(v) : JSON.stringify(v))
export const isRank = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1
export const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)
const isRule = (v: unknown): v is ScaleRule => v === 'alpha/rank' || v === 'alpha/√rank' || v === 'given'
export const isDropout = (v: unknown): v is number => typeof v === 'number' && v >= 0 && v < 1
export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/** A setting that must pass `ok` (or be absent, when it has a fallback), or a clear error naming it. */
export function setting<T>(
  op: string,
  where: string,
  value: unknown,
  ok: (v: unknown) => v is T,
  expected: string,
  fallback?: T,
): T {
  if (value === undefined && fallback !== undefined) return fallback
  if (!ok(value)) throw new Error(`${op}: ${where} must be ${expected}, got ${show(value)}`)
  return value
}

/** The tensor under `key`, required to be float with `ndim` dims (F16/BF16 arrive decoded as F32). */
export function f32(
  op: string,
  source: string,
  key: string,
  t: StoredTensor | undefined,
  ndim = 2,
): StoredTensor & { data: Float32Array } {
  if (!t) throw new Error(`${op}: ${source}: missing tensor '${key}'`)
  if (!(t.data instanceof Float32Array) || t.shape.length !== ndim)
    throw new Error(
      `${op}: ${source}: '${key}' must be a ${ndim}-D float tensor, got ${t.dtype} (${t.shape.join(',')})`,
    )
  return { ...t, data: t.data }
}

/** One layer's numbers checked, whatever the layout: a rank ≥ 1, finite alpha and scale, and only finite values. */
function checkLayer(op: string, source: string, l: LayerAdapter): void {
  setting(op, `${source}: '${l.path}': rank`, l.rank, isRank, 'a positive integer')
  setting(op, `${source}: '${l.path}': alpha`, l.alpha, isFiniteNumber, 'a finite number')
  setting(op, `${source}: '${l.path}': scale`, l.scale, isFiniteNumber, 'a finite number')
  for (const [what, data] of [
    ['A', l.loraA],
    ['B', l.loraB],
    ['magnitude', l.magnitude ?? []],
  ] as const)
    assertFinite(`${op}: ${source}: '${l.path}': ${what}`, data)
}

/** Check every layer against the model, then install them all as adapter `name` (trainable) and freeze everything else. */
export function install(
  op: string,
  source: string,
  model: Module,
  { layers, dropout, dora }: Parsed,
  name: string,
): void {
  // Phase 1 finds and checks every layer; nothing in the model changes until all of them pass.
  if (layers.length === 0) throw new Error(`${op}: ${source} holds no adapter tensors`)
  setting(op, `${source}: dropout`, dropout, isDropout, 'a number in [0, 1)')
  if (unique(layers.map((l) => l.path)).length !== layers.length)
    throw new Error(`${op}: ${source}: a layer path appears twice`)
  // an adapter `name` left on a layer the file does not cover would mix two files under one name
  const stale = loraLayers(model)
    .filter(([p, top]) => getAdapter(top, name) && !layers.some((l) => l.path === p))
    .map(([p]) => p)
  if (stale.length)
    throw new Error(
      `${op}: ${source}: the model's adapter '${name}' is also on ${stale.join(', ')}, which this file does not cover (load it under another name)`,
    )
  const places = layers.map((l) => {
    checkLayer(op, source, l)
    let m: Module
    try {
      m = model.getModule(l.path)
    } catch {
      throw new Error(`${op}: ${source}: the adapter's layer '${l.path}' does not exist in this model`)
    }
    if (!isAdaptable(m)) throw new Error(`${op}: ${source}: '${l.path}' is a ${m.constructor.name}, not a Linear layer`)
    if (
      l.loraA.length !== l.rank * m.inFeatures ||
      l.loraB.length !== m.outFeatures * l.rank ||
      (l.magnitude && l.magnitude.length !== m.outFeatures)
    ) {
      throw new Error(
        `${op}: ${source}: '${l.path}' is (${m.outFeatures},${m.inFeatures}) in the model, but its adapter of rank ${l.rank} has ${l.loraA.length} + ${l.loraB.length} values (expected A (${l.rank},${m.inFeatures}), B (${m.outFeatures},${l.rank}))`,
      )
    }
    return baseFor(m, name) // the layer's base, or W again under a PiSSA adapter this one replaces
  })
  const stream = rngState() // each new layer draws an init that is overwritten at once: leave the stream as it was
  let built: LoRALinear[]
  try {
    built = layers.map((l, i) => {
      const options = { rank: l.rank, alpha: l.alpha, scale: l.scale, rule: l.rule, name, dropout }
      const layer = dora ? new DoRALinear(places[i], options) : new LoRALinear(places[i], options)
      layer.loraA.data.set(l.loraA)
      layer.loraB.data.set(l.loraB)
      if (layer instanceof DoRALinear && l.magnitude) layer.magnitude.data.set(l.magnitude)
      return layer
    })
  } finally {
    setRngState(stream)
  }
  // Phase 2 cannot fail: swap the new layers in, and only the loaded adapter trains, as after applyLoRA.
  model.freeze()
  for (const [i, l] of layers.entries()) {
    const layer = built[i]
    putAdapter(model, l.path, layer) // on the layer, beside its other adapters, or in place of the one named so
    for (const t of [layer.loraA, layer.loraB, ...(layer instanceof DoRALinear ? [layer.magnitude] : [])])
      t.requiresGrad = true
  }
}

// ---- Tenny's layout ---------------------------------------------------------------------------------

/**
 * Adapter `name` as Tenny's files: adapters.safetensors (`<path>.loraA` / `.loraB`, DoRA's `.magnitude`) with its
 * config in the file's own metadata, so weights and settings are one atomic unit no crash or second writer can
 * split; adapter_config.json beside it is a copy for people and tools, never read back when the metadata has one.
 */
export function adapterFiles(model: Module, { name }: { name?: string } = {}): AdapterFiles {
  const { name: adapter, layers, dropout, dora } = collect('adapterFiles', model, name)
  const first = layers[0],
    paths = layers.map((l) => l.path)
  const tensors: Record<string, StoredTensor> = {}
  const perLayer: Record<string, { rank?: number; alpha: number; scale: number }> = {}
  // one rank, alpha and scale in the config; perLayer keeps any layer that differs (a PiSSA layer at rank 2r, say)
  for (const l of layers) {
    tensors[`${l.path}.loraA`] = { dtype: 'F32', shape: [l.rank, l.loraA.length / l.rank], data: l.loraA }
    tensors[`${l.path}.loraB`] = { dtype: 'F32', shape: [l.loraB.length / l.rank, l.rank], data: l.loraB }
    if (l.magnitude) tensors[`${l.path}.magnitude`] = { dtype: 'F32', shape: [l.magnitude.length], data: l.magnitude }
    if (l.rank !== first.rank || l.alpha !== first.alpha || l.scale !== first.scale || l.rule !== first.rule) {
      const rank = l.rank !== first.rank && { rank: l.rank }
      perLayer[l.path] = { ...rank, alpha: l.alpha, scale: l.scale, ...(l.rule !== first.rule && { rule: l.rule }) }
    }
  }
  const config = {
    format: 'tenny-lora',
    version: 1,
    name: adapter,
    rank: first.rank,
    alpha: first.alpha,
    scale: first.scale,
    rule: first.rule,
    dropout,
    ...(dora && { useDora: true }),
    targets: unique(paths.map((p) => p.split('.').pop()!)).sort(),
    layers: unique(paths.map(blockIndex))
      .filter((i) => i >= 0)
      .sort((a, b) => a - b),
    paths,
    perLayer,
    baseHash: baseHash(model),
  }
  return {
    'adapters.safetensors': serializeSafetensors(tensors, { format: 'tenny-lora', config: JSON.stringify(config) }),
    [CONFIG]: text(config),
  }
}

/** The config of Tenny's adapter file: from its own metadata, or (a file saved before configs moved inside) adapter_config.json. */
function tennyConfig(
  op: string,
  source: string,
  metadata: Record<string, string>,
  files: AdapterFiles,
): Record<string, unknown> {
  const inside = metadata.config !== undefined
  const cfg = inside
    ? readJson(op, `${source}'s metadata config`, new TextEncoder().encode(metadata.config))
    : readJson(op, CONFIG, need(op, files, CONFIG))
  if (cfg.format !== 'tenny-lora')
    throw new Error(
      `${op}: ${inside ? source : CONFIG} is not a Tenny adapter config (format ${show(cfg.format)}); for PEFT or MLX files use importPEFT / importMLX`,
    )
  return cfg
}

/** Load what adapterFiles gave (as adapter `name`, default the saved name), after checking the config against the tensors and the base. */
export function loadAdapterFiles(
  model: Module,
  files: AdapterFiles,
  { name, source = 'adapters.safetensors', ...options }: { name?: string; source?: string } & LoadOptions = {},
): { name: string; paths: string[] } {
  const op = 'loadAdapters'
  const { tensors, metadata } = parseSafetensors(need(op, files, 'adapters.safetensors'), source, options)
  const cfg = tennyConfig(op, source, metadata, files)
  // adapters fit only the base they were trained on: names and shapes must be those the file was made for
  const hash = baseHash(model)
  if (cfg.baseHash !== hash)
    throw new Error(
      `${op}: ${source} was made for another base model: its base hash is ${String(cfg.baseHash)}, this model's is ${hash} (parameter names or shapes differ)`,
    )
  const paths = setting(
    op,
    'config paths',
    cfg.paths,
    (v): v is string[] => Array.isArray(v) && v.length > 0 && v.every((p) => typeof p === 'string'),
    'a non-empty list of layer paths',
  )
  const dora = setting(
    op,
    'config useDora',
    cfg.useDora,
    (v): v is boolean => typeof v === 'boolean',
    'true or false',
    false,
  )
  // every tensor must belong to a listed layer: an extra one means weights and config do not belong together
  const expected = new Set(paths.flatMap((p) => [`${p}.loraA`, `${p}.loraB`, ...(dora ? [`${p}.magnitude`] : [])]))
  const unknown = Object.keys(tensors).filter((k) => !expected.has(k))
  if (unknown.length)
    throw new Error(`${op}: ${source}: unknown key(s) ${unknown.join(', ')} (not in the config's paths)`)
  const perLayer = setting(
    op,
    'config perLayer',
    cfg.perLayer,
    (v): v is Record<string, Record<string, unknown>> => isObject(v) && Object.values(v).every(isObject),
    'an object of { rank?, alpha, scale } by layer path',
    {},
  )
  const layers = paths.map((path): LayerAdapter => {
    const a = f32(op, source, `${path}.loraA`, tensors[`${path}.loraA`]),
      b = f32(op, source, `${path}.loraB`, tensors[`${path}.loraB`])
    const own = Object.hasOwn(perLayer, path) ? perLayer[path] : {}
    const pick = (k: string) => (Object.hasOwn(own, k) ? own[k] : cfg[k]) // a null is checked, not replaced by the file-wide value
    const rank = setting(op, `config rank of '${path}'`, pick('rank'), isRank, 'a positive integer')
    if (a.shape[0] !== rank || b.shape[1] !== rank)
      throw new Error(
        `${op}: ${source}: '${path}': loraA is (${a.shape.join(',')}) and loraB (${b.shape.join(',')}), but the config says rank ${rank}: weights and config do not belong together`,
      )
    const magnitude = dora ? f32(op, source, `${path}.magnitude`, tensors[`${path}.magnitude`], 1).data : undefined
    return {
      path,
      loraA: a.data,
      loraB: b.data,
      rank,
      alpha: pick('alpha') as number,
      scale: pick('scale') as number,
      rule: setting(
        op,
        `config rule of '${path}'`,
        pick('rule'),
        isRule,
        "'alpha/rank', 'alpha/√rank' or 'given'",
        'given',
      ),
      magnitude,
    }
  })
  const adapter =
    name ??
    setting(
      op,
      'config name',
      cfg.name,
      (v): v is string => typeof v === 'string' && v !== '',
      'a non-empty string',
      'default',
    )
  install(
    op,
    source,
    model,
    { layers, dropout: (cfg.dropout === undefined ? 0 : cfg.dropout) as number, dora },
    adapter,
  ) // checks alpha, scale, dropout and values
  return { name: adapter, paths }
}

export function need(op: string, files: AdapterFiles, key: string): Uint8Array {
  if (typeof files !== 'object' || files === null)
    throw new Error(`${op}: expected the files as { name: Uint8Array }, got ${files === null ? 'null' : typeof files}`) // called from plain JS
  const bytes = Object.hasOwn(files, key) ? files[key] : undefined
  if (!(bytes instanceof Uint8Array))
    throw new Error(`${op}: no ${key} among the files (${Object.keys(files).join(', ') || 'none'})`)
  return bytes
}
