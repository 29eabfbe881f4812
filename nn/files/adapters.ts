// Adapter files as bytes, { filename: Uint8Array }, so a browser page downloads and loads them as Node does
// (adapters-node.ts adds paths): Tenny's own layout here, PEFT's and mlx-lm's in peft.ts and mlx.ts. Every loader
// reads and checks everything (adapter-layers.ts's install) before the model changes: a bad file changes nothing.
import { Tensor } from '../../src/tensor.js'
import { fail, quote } from '../../src/errors.js'
import {
  serializeSafetensors,
  parseSafetensors,
  type StoredTensor,
  type LoadOptions,
} from '../../src/formats/safetensors.js'
import { Module } from '../module.js'
import { QuantizedLinear } from '../quantized.js'
import { LoRALinear, type ScaleRule } from '../lora.js'
import { NamedAdapters, blockIndex } from '../lora-model.js'
import { collect, install, type LayerAdapter } from './adapter-layers.js'
import {
  CONFIG,
  text,
  unique,
  need,
  readJson,
  setting,
  f32,
  isRank,
  isObject,
  named,
  listed,
  shown,
  type AdapterFiles,
  type FileBytes,
} from './checks.js'

export type { AdapterFiles, FileBytes } from './checks.js'

/**
 * FNV-1a (64-bit, 16 hex digits) of the base model's parameter names and shapes, as if no adapter were applied;
 * quantized weights count by their logical (out, in).
 */
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

const isRule = (v: unknown): v is ScaleRule => v === 'alpha/rank' || v === 'alpha/√rank' || v === 'given'
const hashText = (h: unknown): string => (typeof h === 'string' ? shown(h) : quote(h, 40))

/** The config of Tenny's adapter file: from its metadata, or (a file from before that) adapter_config.json. */
function tennyConfig(
  op: string,
  source: string,
  metadata: Record<string, string>,
  files: FileBytes,
): Record<string, unknown> {
  const inside = metadata.config !== undefined
  const cfg = inside
    ? readJson(op, `${source}'s metadata config`, new TextEncoder().encode(metadata.config))
    : readJson(op, CONFIG, need(op, files, CONFIG))
  if (cfg.format !== 'tenny-lora')
    fail(
      op,
      `${inside ? source : CONFIG} is not a Tenny adapter config (format ${quote(cfg.format, 80)}); ` +
        `for PEFT or MLX files use importPEFT / importMLX`,
    )
  return cfg
}

/** Load what adapterFiles gave (as adapter `name`, default the saved one), checked against its tensors and the base. */
export function loadAdapterFiles(
  model: Module,
  files: FileBytes,
  { name, source = 'adapters.safetensors', ...options }: { name?: string; source?: string } & LoadOptions = {},
): { name: string; paths: string[] } {
  const op = 'loadAdapters'
  const { tensors, metadata } = parseSafetensors(need(op, files, 'adapters.safetensors'), source, options)
  const cfg = tennyConfig(op, source, metadata, files)
  // adapters fit only the base they were trained on: names and shapes must be those the file was made for
  const hash = baseHash(model)
  if (cfg.baseHash !== hash)
    fail(
      op,
      `${source} was made for another base model: its base hash is ${hashText(cfg.baseHash)}, ` +
        `this model's is ${hash} (parameter names or shapes differ)`,
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
  if (unknown.length) fail(op, `${source}: unknown key(s) ${listed(unknown)} (not in the config's paths)`)
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
    // a null is checked, not replaced by the file-wide value
    const pick = (k: string) => (Object.hasOwn(own, k) ? own[k] : cfg[k])
    const rank = setting(op, `config rank of ${named(path)}`, pick('rank'), isRank, 'a positive integer')
    if (a.shape[0] !== rank || b.shape[1] !== rank)
      fail(
        op,
        `${source}: ${named(path)}: loraA is (${a.shape}) and loraB (${b.shape}), but the config says rank ` +
          `${rank}: weights and config do not belong together`,
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
        `config rule of ${named(path)}`,
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
