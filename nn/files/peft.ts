// PEFT's adapter layout (Hugging Face): adapter_model.safetensors + adapter_config.json. The writer gives a config
// whose target_modules select exactly the adapted layers; the reader checks all of it (adapter-layers.ts's install)
// before the model changes.
import { fail, quote } from '../../src/errors.js'
import {
  serializeSafetensors,
  parseSafetensors,
  type StoredTensor,
  type LoadOptions,
} from '../../src/formats/safetensors.js'
import { Module } from '../module.js'
import { loraScale, type ScaleRule } from '../lora.js'
import { linearLayers } from '../lora-model.js'
import { collect, install, layerOf, type LayerAdapter } from './adapter-layers.js'
import {
  CONFIG,
  need,
  readJson,
  setting,
  f32,
  text,
  unique,
  isRank,
  isFiniteNumber,
  isDropout,
  isBoolean,
  isObject,
  named,
  samePair,
  type AdapterFiles,
  type FileBytes,
} from './checks.js'

// PEFT's keys after get_peft_model_state_dict drops the adapter name: `…lora_A.weight`, `…lora_magnitude_vector`;
// a name left in (`lora_A.default.weight`) is accepted too.
const PEFT_KEY = /^base_model\.model\.(.+)\.(lora_A|lora_B|lora_magnitude_vector)(?:\.[^.]+)?(?:\.weight)?$/

/** PEFT's target_modules: the layers' short names when those select exactly these layers, else the full paths. */
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
  // PEFT's scale is lora_alpha / r (use_rslora: / √r); keep alpha when one of those rules gives the scale, else
  // derive it
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
  // PEFT drops unknown config keys with a warning (older versions refuse them): the weights' metadata records its
  // scale settings
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

/**
 * A PEFT pattern (rank_pattern, alpha_pattern) as a lookup: the value of its first key that is the path or a dotted
 * suffix of it (PEFT's get_pattern_key), else `fallback`. Built once: a 1 MB config may hold 100,000 keys.
 */
function patternOf(p: unknown): (path: string, fallback: unknown) => unknown {
  const keys = new Map(Object.entries(isObject(p) ? p : {}).map(([k, v], i) => [k, { i, v }]))
  return (path, fallback) => {
    let best: { i: number; v: unknown } | undefined
    // the path and each part after a dot: a few for the model's own paths, which layerOf has checked by now
    for (let at = 0; at >= 0; at = path.indexOf('.', at) + 1 || -1) {
      const hit = keys.get(path.slice(at))
      if (hit && (!best || hit.i < best.i)) best = hit
    }
    return best ? best.v : fallback
  }
}

/** Load PEFT's files (adapter_model.safetensors + adapter_config.json) into the model as adapter `name`. */
export function importPEFTFiles(
  model: Module,
  files: FileBytes,
  {
    name = 'default',
    source = 'adapter_model.safetensors',
    ...options
  }: { name?: string; source?: string } & LoadOptions = {},
): { paths: string[] } {
  const op = 'importPEFT'
  const cfg = readJson(op, CONFIG, need(op, files, CONFIG))
  if (cfg.peft_type !== 'LORA')
    fail(op, `${CONFIG}: peft_type is ${quote(cfg.peft_type, 80)}, only 'LORA' is supported`)
  const useRslora = setting(op, `${CONFIG}: use_rslora`, cfg.use_rslora, isBoolean, 'true or false', false)
  const rule: ScaleRule = useRslora ? 'alpha/√rank' : 'alpha/rank'
  const dora = setting(op, `${CONFIG}: use_dora`, cfg.use_dora, isBoolean, 'true or false', false)
  const dropout = setting(op, `${CONFIG}: lora_dropout`, cfg.lora_dropout, isDropout, 'a number in [0, 1)', 0)
  const { tensors, metadata } = parseSafetensors(need(op, files, 'adapter_model.safetensors'), source, options)
  const parts = new Map<string, Record<string, StoredTensor>>()
  for (const [key, t] of Object.entries(tensors)) {
    // group the halves (and DoRA's m) by layer path
    const m = PEFT_KEY.exec(key)
    if (!m || (m[2] === 'lora_magnitude_vector' && !dora)) {
      const also = dora ? ' or .lora_magnitude_vector' : ''
      fail(
        op,
        `${source}: unknown key ${named(key)} (expected base_model.model.<path>.lora_A.weight or ` +
          `.lora_B.weight${also})`,
      )
    }
    // `lora_A.weight` and `lora_A.<adapter>.weight` name the same half: which would be meant?
    const layer = parts.get(m[1]) ?? {}
    if (Object.hasOwn(layer, m[2])) fail(op, `${source}: ${named(key)} is the second ${m[2]} of ${named(m[1])}`)
    parts.set(m[1], { ...layer, [m[2]]: t })
  }
  for (const path of parts.keys()) layerOf(op, source, model, path) // before anything else is read for it
  const rankOf = patternOf(cfg.rank_pattern),
    alphaOf = patternOf(cfg.alpha_pattern)
  const layers = [...parts].map(([path, h]): LayerAdapter => {
    const a = f32(op, source, `base_model.model.${path}.lora_A.weight`, h.lora_A),
      b = f32(op, source, `base_model.model.${path}.lora_B.weight`, h.lora_B)
    const rank = setting(
      op,
      `${CONFIG}: r (or rank_pattern) of ${named(path)}`,
      rankOf(path, cfg.r),
      isRank,
      'a positive integer',
    )
    const layerAlpha = setting(
      op,
      `${CONFIG}: lora_alpha (or alpha_pattern) of ${named(path)}`,
      alphaOf(path, cfg.lora_alpha),
      isFiniteNumber,
      'a finite number',
    )
    if (a.shape[0] !== rank || b.shape[1] !== rank)
      fail(
        op,
        `${source}: ${named(path)}: lora_A is (${a.shape}) and lora_B (${b.shape}), but ${CONFIG} says rank ${rank}`,
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
