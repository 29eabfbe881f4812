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
import { Conv1D } from '../linear.js'
import { LoRALinear, loraScale, type ScaleRule } from '../lora.js'
import { NamedAdapters, linearLayers } from '../lora-model.js'
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
  listed,
  samePair,
  type AdapterFiles,
  type FileBytes,
} from './checks.js'

// PEFT's keys after get_peft_model_state_dict drops the adapter name: `…lora_A.weight`, `…lora_magnitude_vector`;
// a name left in (`lora_A.default.weight`) is accepted too.
const PEFT_KEY = /^base_model\.model\.(.+)\.(lora_A|lora_B|lora_magnitude_vector)(?:\.[^.]+)?(?:\.weight)?$/

/** PEFT's selection settings in adapter_config.json, as a file may hold them (checked by peftSelector). */
type Selection = { target_modules?: unknown; layers_to_transform?: unknown; layers_pattern?: unknown }

const isNames = (v: unknown): v is string[] => Array.isArray(v) && v.every((t) => typeof t === 'string')
const isIndices = (v: unknown): v is number | number[] =>
  Number.isInteger(v) || (Array.isArray(v) && v.every((i) => Number.isInteger(i)))

/** A regular expression from a config, compiled, or one line naming where it came from. */
function regex(op: string, where: string, source: string): RegExp {
  try {
    return new RegExp(source)
  } catch (err) {
    return fail(op, `${CONFIG}: ${where} ${quote(source, 80)} is not a regular expression (${(err as Error).message})`)
  }
}

/**
 * Whether PEFT adapts the module at `path` (check_target_module_exists, peft/tuners/tuners_utils.py): target_modules
 * as a string is a regular expression the whole path must match; as a list, a name matches itself or a dotted suffix
 * of the path, and then layers_to_transform keeps the paths whose layer index is listed — the first number after a
 * dot and one more name (`model.layers.3.…` → 3), or after `.<layers_pattern>.`. 'all-linear' is every layer an
 * adapter can go on but the output head. Null (PEFT's per-architecture default) when target_modules is absent.
 */
export function peftSelector(op: string, cfg: Selection, linears: string[]): ((path: string) => boolean) | null {
  const { target_modules: targets, layers_to_transform: indices = null, layers_pattern: pattern = null } = cfg
  if (targets === undefined || targets === null) return null
  if (typeof targets === 'string' && targets.toLowerCase() === 'all-linear') {
    const all = new Set(linears.filter((p) => p !== 'lm_head' && p !== 'lmHead')) // the output head is left out
    return (path) => all.has(path)
  }
  if (typeof targets === 'string') {
    const whole = regex(op, 'target_modules', `^(?:${targets})$`)
    return (path) => whole.test(path)
  }
  if (!isNames(targets))
    fail(op, `${CONFIG}: target_modules must be a string or a list of names, got ${quote(targets)}`)
  if (indices !== null && !isIndices(indices))
    fail(op, `${CONFIG}: layers_to_transform must be an integer, a list of them or null, got ${quote(indices)}`)
  if (pattern !== null && typeof pattern !== 'string' && !isNames(pattern))
    fail(op, `${CONFIG}: layers_pattern must be a string, a list of them or null, got ${quote(pattern)}`)
  const patterns = pattern === null ? [] : [pattern].flat()
  const layerRegexes = (patterns.length ? patterns : ['[^.]*']).map((p) =>
    regex(op, 'layers_pattern', `^.*?\\.${p}\\.(\\d+)\\.`),
  )
  const wanted = indices === null || (Array.isArray(indices) && indices.length === 0) ? null : [indices].flat()
  return (path) => {
    if (!targets.includes(path) && !targets.some((t) => path.endsWith(`.${t}`))) return false
    if (wanted === null || targets.includes(path)) return true // a full path is taken as it is, indices or not
    const m = layerRegexes.map((r) => r.exec(path)).find((x) => x)
    return m ? wanted.includes(Number(m[1])) : false
  }
}

/** The layer index PEFT's layers_to_transform reads from a path (no layers_pattern), or −1. */
function peftLayerIndex(path: string): number {
  const m = /^.*?\.[^.]*\.(\d+)\./.exec(path)
  return m ? Number(m[1]) : -1
}

/**
 * target_modules (and layers_to_transform) that select exactly `paths` among the model's layers, as PEFT reads
 * them: the layers' short names, with the blocks' indices when not every block is adapted, else the full paths.
 */
function peftTargets(
  model: Module,
  paths: string[],
): { target_modules: string[]; layers_to_transform: number[] | null } {
  const linears = linearLayers(model).map(([p]) => p)
  const wanted = new Set(paths)
  const exactly = (cfg: Selection) => {
    const selects = peftSelector('exportPEFT', cfg, linears)!
    return linears.every((p) => selects(p) === wanted.has(p))
  }
  const names = unique(paths.map((p) => p.split('.').pop()!)).sort()
  if (exactly({ target_modules: names })) return { target_modules: names, layers_to_transform: null }
  const indices = unique(paths.map(peftLayerIndex)).sort((a, b) => a - b)
  if (!indices.includes(-1) && exactly({ target_modules: names, layers_to_transform: indices }))
    return { target_modules: names, layers_to_transform: indices }
  return { target_modules: [...paths].sort(), layers_to_transform: null }
}

/** The adapted layer at `path` sits on GPT-2's Conv1D layout: PEFT's fan_in_fan_out. */
function onConv1D(model: Module, path: string): boolean {
  const layer = model.getModule(path)
  return (layer instanceof LoRALinear || layer instanceof NamedAdapters) && layer.base instanceof Conv1D
}

/** The name or folder a Hugging Face model was loaded from (its nameOrPath), else null. */
function nameOrPath(model: Module): string | null {
  const name = (model as { nameOrPath?: unknown }).nameOrPath
  return typeof name === 'string' ? name : null
}

/**
 * PEFT's files: adapter_model.safetensors (`base_model.model.<path>.lora_A.weight` (r, in), `lora_B.weight`
 * (out, r), DoRA's `lora_magnitude_vector` (out)) and an adapter_config.json whose target_modules (with
 * layers_to_transform where the paths allow) select exactly these layers; fan_in_fan_out for GPT-2's Conv1D layers.
 * base_model_name_or_path: `baseModel`, else the folder or name a Hugging Face model was loaded from, else null.
 */
export function peftFiles(
  model: Module,
  { name, baseModel }: { name?: string; baseModel?: string | null } = {},
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
    // PEFT reads the keys as regular expressions over a path's end: a full path selects only itself, as in its docs
    if (l.rank !== first.rank) rankPattern[l.path] = l.rank
    if (alphaOf(l) !== alphaOf(first)) alphaPattern[l.path] = alphaOf(l)
  }
  const paths = layers.map((l) => l.path)
  const { target_modules, layers_to_transform } = peftTargets(model, paths)
  const config = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModel === undefined ? nameOrPath(model) : baseModel,
    inference_mode: true,
    r: first.rank,
    lora_alpha: alphaOf(first),
    lora_dropout: dropout,
    use_rslora: rule === 'alpha/√rank',
    use_dora: dora,
    bias: 'none',
    // PEFT sets it per layer anyway (with a warning where it is wrong): true where GPT-2's Conv1D layers are adapted
    fan_in_fan_out: paths.some((p) => onConv1D(model, p)),
    target_modules,
    layers_to_transform,
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
 * A PEFT pattern (rank_pattern, alpha_pattern) as a lookup: the value of its first key (a regular expression) that
 * matches the whole path or a part after a dot (PEFT's get_pattern_key), else `fallback`. Plain keys (a name or a
 * path, dots escaped or not) are looked up by each dotted suffix; only the rest run as regular expressions, so a 1 MB
 * config of 100,000 plain keys costs a few lookups per layer.
 */
function patternOf(op: string, field: string, p: unknown): (path: string, fallback: unknown) => unknown {
  const plain = new Map<string, { i: number; v: unknown }>(),
    regexes: { i: number; v: unknown; r: RegExp }[] = []
  for (const [i, [k, v]] of Object.entries(isObject(p) ? p : {}).entries()) {
    const name = k.replace(/\\\./g, '.')
    if (/^[\w.-]+$/.test(name) && !plain.has(name)) plain.set(name, { i, v })
    else regexes.push({ i, v, r: regex(op, `${field} key`, `^(?:.*\\.)?(?:${k})$`) })
  }
  return (path, fallback) => {
    let best: { i: number; v: unknown } | undefined
    for (let at = 0; at >= 0; at = path.indexOf('.', at) + 1 || -1) {
      const hit = plain.get(path.slice(at))
      if (hit && (!best || hit.i < best.i)) best = hit
    }
    const first = regexes.find((x) => (!best || x.i < best.i) && x.r.test(path))
    const hit = first ?? best
    return hit ? hit.v : fallback
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
  // PEFT puts adapters only where the config's selection says, and ignores tensors for any other layer
  const selects = peftSelector(
    op,
    cfg,
    linearLayers(model).map(([p]) => p),
  )
  const outside = [...parts.keys()].filter((p) => selects && !selects(p))
  if (outside.length)
    fail(
      op,
      `${source} holds adapters for ${listed(outside)}, which ${CONFIG}'s target_modules ` +
        `${quote(cfg.target_modules, 80)} (layers_to_transform ${quote(cfg.layers_to_transform ?? null, 40)}) ` +
        `do not select: PEFT would not load them`,
    )
  const rankOf = patternOf(op, 'rank_pattern', cfg.rank_pattern),
    alphaOf = patternOf(op, 'alpha_pattern', cfg.alpha_pattern)
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
