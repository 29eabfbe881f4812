// The adapter layouts other tools read, as bytes: PEFT's (Hugging Face) and mlx-lm's (and the original
// mlx-examples lora.py's .npz). Each writer gives configs those loaders select exactly the adapted layers with;
// each reader checks all of it (adapters.ts's install) before the model changes.
import { Tensor } from '../../src/tensor.js'
import {
  serializeSafetensors,
  parseSafetensors,
  type StoredTensor,
  type LoadOptions,
} from '../../src/formats/safetensors.js'
import { encodeNpz, decodeNpz } from '../../src/formats/npy.js'
import { transpose as transposeOp } from '../../ops/movement.js'
import { Module } from '../module.js'
import { loraScale, type ScaleRule } from '../lora.js'
import { linearLayers, blockIndex } from '../lora-model.js'
import {
  CONFIG,
  collect,
  install,
  need,
  readJson,
  setting,
  f32,
  text,
  unique,
  isRank,
  isFiniteNumber,
  isDropout,
  isObject,
  type AdapterFiles,
  type LayerAdapter,
} from './adapters.js'

const isBoolean = (v: unknown): v is boolean => typeof v === 'boolean'

/** FNV-1a (32-bit, 8 hex digits) of `bytes`: names which weights file a config was saved with (not cryptographic). */
function fnv1a(bytes: Uint8Array): string {
  let h = 0x811c9dc5
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193)
  return (h >>> 0).toString(16).padStart(8, '0')
}

/**
 * These layouts are two files, renamed one after the other: a crash between the renames, or a second save (or a
 * read) in between, pairs one save's weights with another's config, with the same ranks but another scale. Each
 * writer records in one file what the other holds; a pair whose record disagrees is refused (other tools record nothing).
 */
function samePair(op: string, source: string, recorded: unknown, found: string): void {
  if (recorded !== undefined && recorded !== found)
    throw new Error(
      `${op}: ${source} and ${CONFIG} come from different saves (one records ${String(recorded)}, the other has ${found}): a save interrupted or overwritten between its two files, or a config edited by hand; export again`,
    )
}

/** (rows, cols) → (cols, rows): MLX stores the factors the other way round, x·lora_a·lora_b. */
function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  return transposeOp(new Tensor(data, [rows, cols])).data
}

// ---- PEFT ---------------------------------------------------------------------------------------------

// PEFT's keys after get_peft_model_state_dict drops the adapter name: `…lora_A.weight`, `…lora_magnitude_vector`;
// a name left in (`lora_A.default.weight`) is accepted too.
const PEFT_KEY = /^base_model\.model\.(.+)\.(lora_A|lora_B|lora_magnitude_vector)(?:\.[^.]+)?(?:\.weight)?$/

/** PEFT's target_modules: the layers' short names when those select exactly these layers in the model, else the full paths. */
function peftTargets(model: Module, paths: string[]): string[] {
  const names = unique(paths.map((p) => p.split('.').pop()!)).sort()
  const selected = linearLayers(model)
    .map(([p]) => p)
    .filter((p) => names.some((n) => p === n || p.endsWith(`.${n}`)))
  return selected.length === paths.length && selected.every((p) => paths.includes(p)) ? names : [...paths].sort()
}

/**
 * PEFT's files: adapter_model.safetensors (`base_model.model.<path>.lora_A.weight` (r, in), `lora_B.weight`
 * (out, r), DoRA's `lora_magnitude_vector` (out)) and an adapter_config.json whose target_modules select exactly
 * these layers (layers_to_transform stays null: PEFT's layer regex needs a dot before the block list's name).
 */
export function peftFiles(
  model: Module,
  { name, baseModel = 'tenny' }: { name?: string; baseModel?: string } = {},
): AdapterFiles {
  const { layers, dropout, dora } = collect('exportPEFT', model, name)
  const first = layers[0]
  // PEFT's scale is lora_alpha / r (use_rslora: / √r); keep alpha when one of those rules gives the scale, else derive it
  const rule: ScaleRule = layers.every((l) => l.rule === 'alpha/√rank') ? 'alpha/√rank' : 'alpha/rank'
  const alphaOf = (l: LayerAdapter) => (l.rule === rule ? l.alpha : loraScale(l.rank, rule, { scale: l.scale }).alpha)
  const tensors: Record<string, StoredTensor> = {}
  const rankPattern: Record<string, number> = {},
    alphaPattern: Record<string, number> = {}
  for (const l of layers) {
    tensors[`base_model.model.${l.path}.lora_A.weight`] = {
      dtype: 'F32',
      shape: [l.rank, l.loraA.length / l.rank],
      data: l.loraA,
    }
    tensors[`base_model.model.${l.path}.lora_B.weight`] = {
      dtype: 'F32',
      shape: [l.loraB.length / l.rank, l.rank],
      data: l.loraB,
    }
    if (l.magnitude)
      tensors[`base_model.model.${l.path}.lora_magnitude_vector`] = {
        dtype: 'F32',
        shape: [l.magnitude.length],
        data: l.magnitude,
      }
    if (l.rank !== first.rank) rankPattern[l.path] = l.rank
    if (alphaOf(l) !== alphaOf(first)) alphaPattern[l.path] = alphaOf(l)
  }
  const config = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModel,
    inference_mode: true,
    r: first.rank,
    lora_alpha: alphaOf(first),
    lora_dropout: dropout,
    use_rslora: rule === 'alpha/√rank',
    use_dora: dora,
    bias: 'none',
    fan_in_fan_out: false,
    target_modules: peftTargets(
      model,
      layers.map((l) => l.path),
    ),
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: rankPattern,
    alpha_pattern: alphaPattern,
    init_lora_weights: true,
    modules_to_save: null,
  }
  // PEFT drops unknown config keys with a warning (older versions refuse them): the weights' metadata records its scale settings
  return {
    'adapter_model.safetensors': serializeSafetensors(tensors, {
      format: 'pt',
      tenny_lora_settings: peftSettings(config),
    }),
    [CONFIG]: text(config),
  }
}

/** The settings of a PEFT config that set each layer's rank and scale, as one string. */
const peftSettings = (c: Record<string, unknown>): string =>
  JSON.stringify([c.r, c.lora_alpha, c.use_rslora, c.use_dora, c.rank_pattern, c.alpha_pattern])

/** The value of a PEFT pattern (rank_pattern, alpha_pattern) whose key is this path or a dotted suffix of it (PEFT's get_pattern_key), else `fallback`. */
function pattern(p: unknown, path: string, fallback: unknown): unknown {
  if (typeof p !== 'object' || p === null) return fallback
  for (const [k, v] of Object.entries(p)) if (path === k || path.endsWith(`.${k}`)) return v
  return fallback
}

/** Load PEFT's files (adapter_model.safetensors + adapter_config.json) into the model as adapter `name`. */
export function importPEFTFiles(
  model: Module,
  files: AdapterFiles,
  {
    name = 'default',
    source = 'adapter_model.safetensors',
    ...options
  }: { name?: string; source?: string } & LoadOptions = {},
): { paths: string[] } {
  const op = 'importPEFT'
  const cfg = readJson(op, CONFIG, need(op, files, CONFIG))
  if (cfg.peft_type !== 'LORA')
    throw new Error(`${op}: ${CONFIG}: peft_type is ${JSON.stringify(cfg.peft_type)}, only 'LORA' is supported`)
  const useRslora = setting(op, `${CONFIG}: use_rslora`, cfg.use_rslora, isBoolean, 'true or false', false)
  const rule: ScaleRule = useRslora ? 'alpha/√rank' : 'alpha/rank'
  const dora = setting(op, `${CONFIG}: use_dora`, cfg.use_dora, isBoolean, 'true or false', false)
  const dropout = setting(op, `${CONFIG}: lora_dropout`, cfg.lora_dropout, isDropout, 'a number in [0, 1)', 0)
  const { tensors, metadata } = parseSafetensors(need(op, files, 'adapter_model.safetensors'), source, options)
  const parts = new Map<string, Record<string, StoredTensor>>()
  for (const [key, t] of Object.entries(tensors)) {
    // group the halves (and DoRA's m) by layer path
    const m = PEFT_KEY.exec(key)
    if (!m || (m[2] === 'lora_magnitude_vector' && !dora))
      throw new Error(
        `${op}: ${source}: unknown key '${key}' (expected base_model.model.<path>.lora_A.weight or .lora_B.weight${dora ? ' or .lora_magnitude_vector' : ''})`,
      )
    const layer = parts.get(m[1]) ?? {} // `lora_A.weight` and `lora_A.<adapter>.weight` name the same half: which would be meant?
    if (Object.hasOwn(layer, m[2])) throw new Error(`${op}: ${source}: '${key}' is the second ${m[2]} of '${m[1]}'`)
    parts.set(m[1], { ...layer, [m[2]]: t })
  }
  const layers = [...parts].map(([path, h]): LayerAdapter => {
    const a = f32(op, source, `base_model.model.${path}.lora_A.weight`, h.lora_A),
      b = f32(op, source, `base_model.model.${path}.lora_B.weight`, h.lora_B)
    const rank = setting(
      op,
      `${CONFIG}: r (or rank_pattern) of '${path}'`,
      pattern(cfg.rank_pattern, path, cfg.r),
      isRank,
      'a positive integer',
    )
    const layerAlpha = setting(
      op,
      `${CONFIG}: lora_alpha (or alpha_pattern) of '${path}'`,
      pattern(cfg.alpha_pattern, path, cfg.lora_alpha),
      isFiniteNumber,
      'a finite number',
    )
    if (a.shape[0] !== rank || b.shape[1] !== rank)
      throw new Error(
        `${op}: ${source}: '${path}': lora_A is (${a.shape.join(',')}) and lora_B (${b.shape.join(',')}), but ${CONFIG} says rank ${rank}`,
      )
    const magnitude = dora
      ? f32(op, source, `base_model.model.${path}.lora_magnitude_vector`, h.lora_magnitude_vector, 1).data
      : undefined
    return {
      path,
      loraA: a.data,
      loraB: b.data,
      rank,
      ...loraScale(rank, rule, { alpha: layerAlpha }),
      rule,
      magnitude,
    }
  })
  samePair(op, source, metadata.tenny_lora_settings, peftSettings(cfg)) // after the rank checks, which say more
  install(op, source, model, { layers, dropout, dora }, name)
  return { paths: layers.map((l) => l.path) }
}

// ---- MLX (mlx-lm, and the original mlx-examples lora.py's .npz) ---------------------------------------

/**
 * mlx-lm's files: adapters.safetensors or adapters.npz (`<path>.lora_a` (in, r), `.lora_b` (r, out), DoRA's `.m`)
 * and its adapter_config.json. mlx-lm adapts the last num_layers blocks, so num_layers reaches back to the first adapted block.
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
    throw new Error(
      `${op}: MLX's adapter_config holds one rank and one scale, but '${odd.path}' has rank ${odd.rank}, scale ${odd.scale} and '${first.path}' rank ${first.rank}, scale ${first.scale}`,
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
  const keys = unique(layers.map((l) => (blockIndex(l.path) >= 0 ? l.path.replace(/^.*?\.\d+\./, '') : l.path))).sort() // paths inside a block, e.g. attn.qProj
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

/** Load MLX LoRA (or DoRA) weights: one .safetensors or .npz file; the scale from adapter_config.json if present, or { scale } (the original lora.py used 2.0). */
export function importMLXFiles(
  model: Module,
  files: AdapterFiles,
  {
    name = 'default',
    scale,
    source,
    ...options
  }: { name?: string; scale?: number; source?: string } & LoadOptions = {},
): { paths: string[] } {
  const op = 'importMLX'
  const weights = Object.keys(files ?? {}).filter((k) => k !== CONFIG)
  if (weights.length !== 1 || !/\.(safetensors|npz)$/.test(weights[0]))
    throw new Error(
      `${op}: expected one .safetensors or .npz file beside ${CONFIG}, got ${weights.join(', ') || 'none'}`,
    )
  const file = source ?? weights[0]
  const cfg = Object.hasOwn(files, CONFIG) ? readJson(op, CONFIG, files[CONFIG]) : {}
  const params = setting(op, `${CONFIG}: lora_parameters`, cfg.lora_parameters, isObject, 'an object', {})
  if (scale === undefined && params.scale === undefined)
    throw new Error(
      `${op}: no ${CONFIG} with lora_parameters.scale next to ${file}; pass { scale } (the original mlx-examples lora.py used 2.0)`,
    )
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
        [...decodeNpz(files[weights[0]], file, options)].map(([k, a]): [string, StoredTensor] => [
          k,
          { dtype: 'F32', ...a },
        ]),
      )
    : parseSafetensors(files[weights[0]], file, options).tensors
  const parts = new Map<string, Record<string, StoredTensor>>()
  for (const [key, t] of Object.entries(stored)) {
    const m = /^(.+)\.(lora_a|lora_b|m)$/.exec(key)
    if (!m || (m[2] === 'm' && !dora))
      throw new Error(
        `${op}: ${file}: unknown key '${key}' (expected <path>.lora_a or <path>.lora_b${dora ? ' or <path>.m' : ''})`,
      )
    parts.set(m[1], { ...parts.get(m[1]), [m[2]]: t })
  }
  const layers = [...parts].map(([path, h]): LayerAdapter => {
    const a = f32(op, file, `${path}.lora_a`, h.lora_a),
      b = f32(op, file, `${path}.lora_b`, h.lora_b)
    const [inF, rank] = a.shape,
      outF = b.shape[1]
    if (b.shape[0] !== rank)
      throw new Error(
        `${op}: ${file}: '${path}': lora_a is (${a.shape.join(',')}) but lora_b is (${b.shape.join(',')}): ranks differ`,
      )
    if (params.rank !== undefined && params.rank !== rank)
      throw new Error(`${op}: ${file}: '${path}' has rank ${rank}, but ${CONFIG} says ${String(params.rank)}`)
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
  if (layers.length) samePair(op, file, cfg.tenny_adapters_fnv1a, fnv1a(files[weights[0]])) // an empty file: install says so
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
