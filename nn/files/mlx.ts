// mlx-lm's adapter layout (and the original mlx-examples lora.py's .npz): adapters.safetensors or adapters.npz with
// A and B stored the other way round, (in, r) and (r, out), and the scale in adapter_config.json. The reader checks
// all of it (adapter-layers.ts's install) before the model changes.
import { Tensor } from '../../src/tensor.js'
import { fail, quote } from '../../src/errors.js'
import {
  serializeSafetensors,
  parseSafetensors,
  type StoredTensor,
  type LoadOptions,
} from '../../src/formats/safetensors.js'
import { encodeNpz, decodeNpz } from '../../src/formats/npy.js'
import { asBytes } from '../../src/formats/bytes.js'
import { transpose as transposeOp } from '../../ops/movement.js'
import { Module } from '../module.js'
import { loraScale } from '../lora.js'
import { blockIndex } from '../lora-model.js'
import { collect, install, layerOf, type LayerAdapter } from './adapter-layers.js'
import {
  CONFIG,
  readJson,
  setting,
  f32,
  text,
  unique,
  isFiniteNumber,
  isDropout,
  isObject,
  fileNames,
  named,
  listed,
  samePair,
  type AdapterFiles,
  type FileBytes,
} from './checks.js'

const ORIGINAL_SCALE = 'pass { scale } (the original mlx-examples lora.py used 2.0)'

/** FNV-1a (32-bit, 8 hex digits) of `bytes`: names which weights file a config was saved with (not cryptographic). */
function fnv1a(bytes: Uint8Array): string {
  let h = 0x811c9dc5
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193)
  return (h >>> 0).toString(16).padStart(8, '0')
}

/** (rows, cols) → (cols, rows): MLX stores the factors the other way round, x·lora_a·lora_b. */
function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  return transposeOp(new Tensor(data, [rows, cols])).data
}

/**
 * mlx-lm's files: adapters.safetensors or adapters.npz (`<path>.lora_a` (in, r), `.lora_b` (r, out), DoRA's `.m`)
 * and its adapter_config.json. mlx-lm adapts the last num_layers blocks, so num_layers reaches back to the first
 * adapted block.
 */
export function mlxFiles(
  model: Module,
  { name, format = 'safetensors' }: { name?: string; format?: 'safetensors' | 'npz' } = {},
): AdapterFiles {
  const op = 'exportMLX'
  const { layers, dropout, dora } = collect(op, model, name)
  const first = layers[0]
  const odd = layers.find((l) => l.rank !== first.rank || l.scale !== first.scale)
  if (odd)
    fail(
      op,
      `MLX's adapter_config holds one rank and one scale, but '${odd.path}' has rank ${odd.rank}, scale ` +
        `${odd.scale} and '${first.path}' rank ${first.rank}, scale ${first.scale}`,
    )
  const arrays: Record<string, { shape: number[]; data: Float32Array }> = {}
  for (const l of layers) {
    const inF = l.loraA.length / l.rank,
      outF = l.loraB.length / l.rank
    arrays[`${l.path}.lora_a`] = { shape: [inF, l.rank], data: transpose(l.loraA, l.rank, inF) } // (in, r) = Aᵀ
    arrays[`${l.path}.lora_b`] = { shape: [l.rank, outF], data: transpose(l.loraB, outF, l.rank) } // (r, out) = Bᵀ
    if (l.magnitude) arrays[`${l.path}.m`] = { shape: [outF], data: l.magnitude }
  }
  // mlx-lm wraps `keys` in model.layers[-num_layers:] (tuner/utils.py, linear_to_lora_layers): reach back to the
  // first adapted block; blocks in between get layers whose B = 0, which change nothing
  let blocks = 0
  for (const [path] of model.namedModules()) blocks = Math.max(blocks, blockIndex(path) + 1)
  const indices = layers.map((l) => blockIndex(l.path)).filter((i) => i >= 0)
  const inBlock = (path: string) => (blockIndex(path) >= 0 ? path.replace(/^.*?\.\d+\./, '') : path) // e.g. attn.qProj
  const keys = unique(layers.map((l) => inBlock(l.path))).sort()
  const bytes =
    format === 'npz'
      ? encodeNpz(arrays)
      : serializeSafetensors(Object.fromEntries(Object.entries(arrays).map(([k, a]) => [k, { dtype: 'F32', ...a }])))
  // an .npz has no metadata, and mlx-lm ignores config keys it does not use: the config names its weights file
  const config = {
    fine_tune_type: dora ? 'dora' : 'lora',
    num_layers: indices.length ? blocks - Math.min(...indices) : 0,
    lora_parameters: { rank: first.rank, scale: first.scale, dropout, keys },
    tenny_adapters_fnv1a: fnv1a(bytes),
  }
  return { [`adapters.${format}`]: bytes, [CONFIG]: text(config) }
}

/**
 * Load MLX LoRA (or DoRA) weights: one .safetensors or .npz file; the scale from adapter_config.json if present, or
 * { scale } (the original lora.py used 2.0).
 */
export function importMLXFiles(
  model: Module,
  files: FileBytes,
  {
    name = 'default',
    scale,
    source,
    ...options
  }: { name?: string; scale?: number; source?: string } & LoadOptions = {},
): { paths: string[] } {
  const op = 'importMLX'
  const weights = fileNames(op, files ?? {}).filter((k) => k !== CONFIG)
  if (weights.length !== 1 || !/\.(safetensors|npz)$/.test(weights[0]))
    fail(op, `expected one .safetensors or .npz file beside ${CONFIG}, got ${listed(weights) || 'none'}`)
  const file = source ?? weights[0],
    bytes = asBytes(op, files[weights[0]], weights[0])
  const cfg = Object.hasOwn(files, CONFIG) ? readJson(op, CONFIG, files[CONFIG]) : {}
  const params = setting(op, `${CONFIG}: lora_parameters`, cfg.lora_parameters, isObject, 'an object', {})
  if (scale === undefined && params.scale === undefined)
    fail(op, `no ${CONFIG} with lora_parameters.scale next to ${file}; ${ORIGINAL_SCALE}`)
  const s = setting(
    op,
    scale === undefined ? `${CONFIG}: lora_parameters.scale` : '{ scale }',
    scale ?? params.scale,
    isFiniteNumber,
    'a finite number',
  )
  const kind = setting(
    op,
    `${CONFIG}: fine_tune_type`,
    cfg.fine_tune_type,
    (v): v is string => v === 'lora' || v === 'dora',
    "'lora' or 'dora' (a 'full' fine-tune holds no adapters)",
    'lora',
  )
  const dora = kind === 'dora' // mlx-lm's DoRALinear: lora_a, lora_b and the magnitude m
  const stored = weights[0].endsWith('.npz')
    ? Object.fromEntries(
        [...decodeNpz(bytes, file, options)].map(([k, a]): [string, StoredTensor] => [k, { dtype: 'F32', ...a }]),
      )
    : parseSafetensors(bytes, file, options).tensors
  const parts = new Map<string, Record<string, StoredTensor>>()
  for (const [key, t] of Object.entries(stored)) {
    const m = /^(.+)\.(lora_a|lora_b|m)$/.exec(key)
    if (!m || (m[2] === 'm' && !dora))
      fail(
        op,
        `${file}: unknown key ${named(key)} (expected <path>.lora_a or <path>.lora_b${dora ? ' or <path>.m' : ''})`,
      )
    parts.set(m[1], { ...parts.get(m[1]), [m[2]]: t })
  }
  for (const path of parts.keys()) layerOf(op, file, model, path) // before anything else is read for it
  const layers = [...parts].map(([path, h]): LayerAdapter => {
    const a = f32(op, file, `${path}.lora_a`, h.lora_a),
      b = f32(op, file, `${path}.lora_b`, h.lora_b)
    const [inF, rank] = a.shape,
      outF = b.shape[1]
    if (b.shape[0] !== rank)
      fail(op, `${file}: ${named(path)}: lora_a is (${a.shape}) but lora_b is (${b.shape}): ranks differ`)
    if (params.rank !== undefined && params.rank !== rank)
      fail(op, `${file}: ${named(path)} has rank ${rank}, but ${CONFIG} says ${quote(params.rank, 40)}`)
    const magnitude = dora ? f32(op, file, `${path}.m`, h.m, 1).data : undefined
    // MLX gives the scale, not alpha: it stays as given, with the alpha that gives it as alpha/rank would
    return {
      path,
      loraA: transpose(a.data, inF, rank),
      loraB: transpose(b.data, rank, outF),
      rank,
      ...loraScale(rank, 'given', { scale: s }),
      rule: 'given',
      magnitude,
    }
  })
  if (layers.length) samePair(op, file, cfg.tenny_adapters_fnv1a, fnv1a(bytes)) // an empty file: install says so
  install(
    op,
    file,
    model,
    {
      layers,
      dropout: setting(op, `${CONFIG}: lora_parameters.dropout`, params.dropout, isDropout, 'a number in [0, 1)', 0),
      dora,
    },
    name,
  )
  return { paths: layers.map((l) => l.path) }
}
