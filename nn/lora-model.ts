// LoRA at the model level: find the Linear layers to adapt and wrap them (applyLoRA), count what trains,
// merge adapters back into plain layers, and pick or mix named adapters at inference. The layer itself is lora.ts.
import { Module } from './module.js'
import { Linear } from './linear.js'
import { QuantizedLinear } from './quantized.js'
import { LoRALinear, type LoRAOptions, type FuseReport, type BaseLayer } from './lora.js'

export type Targets = string[] | RegExp | ((path: string, module: Module) => boolean)

/** targets: layer names or dotted path suffixes ('qProj', 'attn.vProj'), a RegExp on the path, or a predicate. layers: the last N blocks, or block indices (negative from the end). */
export type ApplyLoRAOptions = LoRAOptions & { targets?: Targets; layers?: number | number[] }

/** Every LoRALinear in the model, by path. */
export function loraLayers(model: Module): [string, LoRALinear][] {
  return [...model.namedModules()].filter((e): e is [string, LoRALinear] => e[1] instanceof LoRALinear)
}

/** The block index of a path: its first numeric segment (`blocks.3.attn.qProj` → 3), or −1. */
function blockIndex(path: string): number {
  const m = /(?:^|\.)(\d+)(?:\.|$)/.exec(path)
  return m ? Number(m[1]) : -1
}

function layerFilter(model: Module, layers: number | number[] | undefined): (path: string) => boolean {
  if (layers === undefined) return () => true
  let count = 0
  for (const [path] of model.namedModules()) count = Math.max(count, blockIndex(path) + 1)
  if (typeof layers === 'number') {
    if (!Number.isInteger(layers) || layers < 1 || layers > count) throw new Error(`applyLoRA: layers = ${layers}, but the model has ${count} blocks (expected 1..${count})`)
    return (path) => blockIndex(path) >= count - layers
  }
  const wanted = new Set(layers.map((i) => {
    if (!Number.isInteger(i) || i < -count || i >= count) throw new Error(`applyLoRA: layer index ${i} is out of range for ${count} blocks`)
    return i < 0 ? count + i : i
  }))
  return (path) => wanted.has(blockIndex(path))
}

function targetMatcher(targets: Targets): (path: string, m: Module) => boolean {
  if (targets instanceof RegExp) return (path) => targets.test(path)
  if (typeof targets === 'function') return targets
  return (path) => targets.some((t) => path === t || path.endsWith(`.${t}`))
}

/**
 * Wrap every matching Linear / QuantizedLinear in a LoRALinear (or add a named adapter to one that already is),
 * then freeze everything but the new adapters. Returns the wrapped paths and the parameter counts.
 */
export function applyLoRA(model: Module, { targets = ['qProj', 'vProj'], layers, name = 'default', ...options }: ApplyLoRAOptions = {}): { paths: string[]; trainable: number; total: number } {
  const matches = targetMatcher(targets), inLayers = layerFilter(model, layers)
  const inside = loraLayers(model).map(([p]) => `${p}.`) // a LoRALinear's own base is not a target
  const linears = [...model.namedModules()].filter(([path, m]) =>
    path !== '' && !inside.some((p) => path.startsWith(p)) && (m instanceof Linear || m instanceof QuantizedLinear || m instanceof LoRALinear))
  const picked = linears.filter(([path, m]) => matches(path, m) && inLayers(path))
  if (picked.length === 0) {
    const shown = linears.slice(0, 8).map(([p]) => p).join(', ') + (linears.length > 8 ? ', …' : '')
    throw new Error(`applyLoRA: no Linear layer matches targets ${targets instanceof Array ? JSON.stringify(targets) : String(targets)}${layers === undefined ? '' : ` in layers ${JSON.stringify(layers)}`}; linear layers here: ${shown || 'none'}`)
  }
  model.freeze()
  for (const [path, m] of picked) {
    if (m instanceof LoRALinear) {
      m.addAdapter(name, options)
      m.dropout = options.dropout ?? m.dropout
    } else model.setModule(path, LoRALinear.fromLinear(m as BaseLayer, { ...options, name }))
  }
  return { paths: picked.map(([p]) => p), trainable: model.numParameters({ trainable: true }), total: countParameters(model) }
}

/** All parameters, counting a quantized weight by its element count as PEFT does. */
function countParameters(model: Module): number {
  let total = model.numParameters()
  for (const [, m] of model.namedModules()) if (m instanceof QuantizedLinear) total += m.inFeatures * m.outFeatures
  return total
}

/** Print (PEFT's format) and return trainable and total parameters, plus each distinct LoRA setting in use. */
export function printTrainable(model: Module, log: (line: string) => void = console.log): { trainable: number; total: number; percent: number } {
  const trainable = model.numParameters({ trainable: true }), total = countParameters(model)
  const percent = (100 * trainable) / total
  log(`trainable params: ${trainable.toLocaleString('en-US')} || all params: ${total.toLocaleString('en-US')} || trainable%: ${percent.toFixed(4)}`)
  const settings = new Map<string, number>()
  for (const [, layer] of loraLayers(model)) {
    for (const name of layer.adapterNames()) {
      const a = layer.adapter(name)!, rank = a.loraA.shape[0]
      const rule = Math.abs(a.scale - a.alpha / rank) < 1e-9 * a.scale ? 'alpha/rank' : Math.abs(a.scale - a.alpha / Math.sqrt(rank)) < 1e-9 * a.scale ? 'alpha/√rank' : 'given'
      const key = `'${name}': rank ${rank}, alpha ${a.alpha}, scale ${a.scale} (${rule}), strength ${a.strength}${name === layer.active ? ', active' : ''}`
      settings.set(key, (settings.get(key) ?? 0) + 1)
    }
  }
  for (const [key, n] of settings) log(`LoRA ${key}: ${n} layer${n === 1 ? '' : 's'}`)
  return { trainable, total, percent }
}

/**
 * Replace every LoRALinear by its merged layer: a float Linear (W dequantized when the base was quantized), or
 * with keepQuantized a requantized QuantizedLinear plus its fidelity report.
 */
export function mergeLoRA(model: Module, { keepQuantized = false } = {}): { paths: string[]; reports: Record<string, FuseReport> } {
  const reports: Record<string, FuseReport> = {}
  const layers = loraLayers(model)
  for (const [path, layer] of layers) {
    const { layer: merged, report } = layer.fuse({ dequantize: !keepQuantized })
    if (report) reports[path] = report
    model.setModule(path, merged)
  }
  return { paths: layers.map(([p]) => p), reports }
}

function checkName(op: string, model: Module, names: string[]): void {
  const known = new Set(loraLayers(model).flatMap(([, l]) => l.adapterNames()))
  for (const n of names) if (!known.has(n)) throw new Error(`${op}: no adapter named '${n}'; this model has ${known.size ? [...known].map((k) => `'${k}'`).join(', ') : 'none'}`)
}

/** Mix named adapters across the model, e.g. setAdapters(model, { cwk: 0.7, rj: 0.3 }); unnamed ones switch off. */
export function setAdapters(model: Module, strengths: Record<string, number>): void {
  checkName('setAdapters', model, Object.keys(strengths))
  for (const [n, s] of Object.entries(strengths)) if (!Number.isFinite(s)) throw new Error(`setAdapters: strength of '${n}' must be a finite number, got ${s}`)
  for (const [, layer] of loraLayers(model)) layer.setAdapters(strengths)
}

/** Run only adapter `name` (strength 1) and make it the active, trainable one. */
export function setAdapter(model: Module, name: string): void {
  checkName('setAdapter', model, [name])
  for (const [, layer] of loraLayers(model)) layer.setAdapter(name)
}

/** Switch every adapter off: the model computes its original weights (exactly its base, unless PiSSA split them). */
export function disableAdapters(model: Module): void {
  for (const [, layer] of loraLayers(model)) layer.disableAdapters()
}

