// LoRA at the model level: find the Linear layers to adapt and wrap them (applyLoRA), count what trains, merge
// adapters back into plain layers, and pick or mix named adapters. Named adapters stack: each is a LoRALinear
// whose base is the one added before it, down to the original layer; mixing sets their strengths.
import { Tensor } from '../src/tensor.js'
import { Module } from './module.js'
import { Linear } from './linear.js'
import { QuantizedLinear, type FuseReport } from './quantized.js'
import { LoRALinear, scaleRule, type LoRAOptions, type BaseLayer } from './lora.js'
import { PiSSALinear } from './pissa.js'
import { DoRALinear } from './dora.js'

export type Targets = string[] | RegExp | ((path: string, module: Module) => boolean)

/** LoRA's options plus useDora (PEFT's use_dora); init 'pissa' makes PiSSA adapters. */
export type AdapterOptions = LoRAOptions & { useDora?: boolean }

/** targets: layer names or dotted path suffixes ('qProj', 'attn.vProj'), a RegExp on the path, or a predicate. layers: the last N blocks, or block indices (negative from the end). */
export type ApplyLoRAOptions = AdapterOptions & { targets?: Targets; layers?: number | number[] }

/** The block index of a path: its first numeric segment (`blocks.3.attn.qProj` → 3), or −1. */
export function blockIndex(path: string): number {
  const m = /(?:^|\.)(\d+)(?:\.|$)/.exec(path)
  return m ? Number(m[1]) : -1
}

/** Every layer an adapter can go on, by path: Linear, QuantizedLinear, or the top of a stack (never what is inside one). */
export function linearLayers(model: Module): [string, Linear | QuantizedLinear | LoRALinear][] {
  const inside = loraLayers(model).map(([p]) => `${p}.`)
  return [...model.namedModules()].filter(
    (e): e is [string, Linear | QuantizedLinear | LoRALinear] =>
      e[0] !== '' &&
      !inside.some((p) => e[0].startsWith(p)) &&
      (e[1] instanceof Linear || e[1] instanceof QuantizedLinear || e[1] instanceof LoRALinear),
  )
}

/** The adapters stacked on one layer, first added first; `top` is the last one added. */
export function adapterStack(top: LoRALinear): LoRALinear[] {
  const stack: LoRALinear[] = []
  for (let m: BaseLayer = top; m instanceof LoRALinear; m = m.base) stack.unshift(m)
  return stack
}

/** Every stack of adapters in the model, by the path of its top. */
export function loraLayers(model: Module): [string, LoRALinear][] {
  const all = [...model.namedModules()].filter((e): e is [string, LoRALinear] => e[1] instanceof LoRALinear)
  const below = new Set(all.flatMap(([, l]) => adapterStack(l).slice(0, -1)))
  return all.filter(([, l]) => !below.has(l))
}

export function adapterNames(top: LoRALinear): string[] {
  return adapterStack(top).map((l) => l.name)
}

export function getAdapter(top: LoRALinear, name: string): LoRALinear | undefined {
  return adapterStack(top).find((l) => l.name === name)
}

/** An adapter's own tensors (A, B and DoRA's magnitude), not its base's. */
function ownTensors(layer: LoRALinear): Tensor[] {
  return [...layer.namedParameters()].filter(([n]) => !n.startsWith('base.')).map(([, t]) => t)
}

/** The name of the adapter that trains on this stack (the last added if none does). */
export function activeAdapter(top: LoRALinear): string {
  return (
    adapterStack(top)
      .reverse()
      .find((l) => ownTensors(l).some((t) => t.requiresGrad))?.name ?? top.name
  )
}

/** Wrap a layer in a new adapter: DoRA, PiSSA or plain LoRA. */
function wrap(base: BaseLayer, { useDora = false, ...options }: AdapterOptions): LoRALinear {
  if (useDora && options.init === 'pissa') throw new Error(`applyLoRA: useDora and init 'pissa' cannot be combined`)
  if (useDora) return DoRALinear.fromLinear(base, options)
  return options.init === 'pissa' ? PiSSALinear.fromLinear(base, options) : LoRALinear.fromLinear(base, options)
}

/** A new adapter `name` on a layer (a stack's top, or a plain layer); nothing else changes. */
function stackOn(top: BaseLayer, name: string, options: AdapterOptions): LoRALinear {
  if (top instanceof LoRALinear && getAdapter(top, name))
    throw new Error(`addAdapter: this layer already has an adapter named '${name}'`)
  return wrap(top, { ...options, name })
}

/** Stack a new adapter `name` on a layer; it trains, the ones below it freeze. Returns the new top. */
export function addAdapter(top: BaseLayer, name: string, options: AdapterOptions = {}): LoRALinear {
  const layer = stackOn(top, name, options)
  for (const below of adapterStack(layer).slice(0, -1)) for (const t of ownTensors(below)) t.requiresGrad = false
  return layer
}

function layerFilter(model: Module, layers: number | number[] | undefined): (path: string) => boolean {
  if (layers === undefined) return () => true
  let count = 0
  for (const [path] of model.namedModules()) count = Math.max(count, blockIndex(path) + 1)
  if (typeof layers === 'number') {
    if (!Number.isInteger(layers) || layers < 1 || layers > count)
      throw new Error(`applyLoRA: layers = ${layers}, but the model has ${count} blocks (expected 1..${count})`)
    return (path) => blockIndex(path) >= count - layers
  }
  const wanted = new Set(
    layers.map((i) => {
      if (!Number.isInteger(i) || i < -count || i >= count)
        throw new Error(`applyLoRA: layer index ${i} is out of range for ${count} blocks`)
      return i < 0 ? count + i : i
    }),
  )
  return (path) => wanted.has(blockIndex(path))
}

function targetMatcher(targets: Targets): (path: string, m: Module) => boolean {
  if (targets instanceof RegExp) return (path) => targets.test(path)
  if (typeof targets === 'function') return targets
  return (path) => targets.some((t) => path === t || path.endsWith(`.${t}`))
}

/**
 * Wrap every matching Linear / QuantizedLinear in a LoRALinear (DoRALinear with useDora; on a layer that has
 * adapters, stack a new one named `name`), then freeze everything but the new adapters.
 */
export function applyLoRA(
  model: Module,
  { targets = ['qProj', 'vProj'], layers, name = 'default', ...options }: ApplyLoRAOptions = {},
): { paths: string[]; trainable: number; total: number } {
  const matches = targetMatcher(targets),
    inLayers = layerFilter(model, layers)
  const linears = linearLayers(model)
  const picked = linears.filter(([path, m]) => matches(path, m) && inLayers(path))
  if (picked.length === 0) {
    const shown =
      linears
        .slice(0, 8)
        .map(([p]) => p)
        .join(', ') + (linears.length > 8 ? ', …' : '')
    throw new Error(
      `applyLoRA: no Linear layer matches targets ${targets instanceof Array ? JSON.stringify(targets) : String(targets)}${layers === undefined ? '' : ` in layers ${JSON.stringify(layers)}`}; linear layers here: ${shown || 'none'}`,
    )
  }
  const wrapped = picked.map(([path, m]) => [path, stackOn(m, name, options)] as const) // all built before any is installed
  model.freeze()
  for (const [path, layer] of wrapped) {
    model.setModule(path, layer)
    for (const t of ownTensors(layer)) t.requiresGrad = true
  }
  return {
    paths: picked.map(([p]) => p),
    trainable: model.numParameters({ trainable: true }),
    total: countParameters(model),
  }
}

/** All parameters, counting a quantized weight by its element count as PEFT does. */
function countParameters(model: Module): number {
  let total = model.numParameters()
  for (const [, m] of model.namedModules()) if (m instanceof QuantizedLinear) total += m.inFeatures * m.outFeatures
  return total
}

/** Print (PEFT's format) and return trainable and total parameters, plus each distinct adapter setting in use. */
export function printTrainable(
  model: Module,
  log: (line: string) => void = console.log,
): { trainable: number; total: number; percent: number } {
  const trainable = model.numParameters({ trainable: true }),
    total = countParameters(model)
  const percent = (100 * trainable) / total
  log(
    `trainable params: ${trainable.toLocaleString('en-US')} || all params: ${total.toLocaleString('en-US')} || trainable%: ${percent.toFixed(4)}`,
  )
  const settings = new Map<string, number>()
  for (const [, top] of loraLayers(model)) {
    for (const a of adapterStack(top)) {
      const kind = a instanceof DoRALinear ? 'DoRA' : 'LoRA'
      const key = `${kind} '${a.name}': rank ${a.rank}, alpha ${a.alpha}, scale ${a.scale} (${scaleRule(a)}), strength ${a.strength}${a.name === activeAdapter(top) ? ', active' : ''}`
      settings.set(key, (settings.get(key) ?? 0) + 1)
    }
  }
  for (const [key, n] of settings) log(`${key}: ${n} layer${n === 1 ? '' : 's'}`)
  return { trainable, total, percent }
}

/** Fold a stack into one layer, the first adapter first, so a quantized base can be requantized under each. */
function fold(top: LoRALinear, dequantize: boolean): { layer: Linear | QuantizedLinear; report: FuseReport | null } {
  if (top.base instanceof LoRALinear) top.base = fold(top.base, dequantize).layer
  return top.fuse({ dequantize })
}

/**
 * Replace every LoRALinear by its merged layer: a float Linear (W dequantized when the base was quantized), or
 * with keepQuantized a requantized QuantizedLinear plus its fidelity report.
 */
export function mergeLoRA(
  model: Module,
  { keepQuantized = false } = {},
): { paths: string[]; reports: Record<string, FuseReport> } {
  const reports: Record<string, FuseReport> = {}
  const layers = loraLayers(model)
  if (layers.some(([p]) => p === ''))
    throw new Error('mergeLoRA: the model is itself a LoRALinear; call its fuse() instead')
  for (const [path, top] of layers) {
    const { layer, report } = fold(top, !keepQuantized)
    if (report) reports[path] = report
    model.setModule(path, layer)
  }
  return { paths: layers.map(([p]) => p), reports }
}

function checkName(op: string, model: Module, names: string[]): void {
  const known = new Set(loraLayers(model).flatMap(([, l]) => adapterNames(l)))
  for (const n of names)
    if (!known.has(n))
      throw new Error(
        `${op}: no adapter named '${n}'; this model has ${known.size ? [...known].map((k) => `'${k}'`).join(', ') : 'none'}`,
      )
}

/** Mix named adapters across the model (or one layer), e.g. setAdapters(model, { cwk: 0.7, rj: 0.3 }); unnamed ones switch off. */
export function setAdapters(model: Module, strengths: Record<string, number>): void {
  checkName('setAdapters', model, Object.keys(strengths))
  for (const [n, s] of Object.entries(strengths))
    if (!Number.isFinite(s)) throw new Error(`setAdapters: strength of '${n}' must be a finite number, got ${s}`)
  for (const [, top] of loraLayers(model)) for (const a of adapterStack(top)) a.strength = strengths[a.name] ?? 0
}

/** Run only adapter `name` (strength 1); where a stack has it, it trains if any adapter there did, and the others freeze. */
export function setAdapter(model: Module, name: string): void {
  checkName('setAdapter', model, [name])
  for (const [, top] of loraLayers(model)) {
    const stack = adapterStack(top)
    const trains = stack.some((a) => ownTensors(a).some((t) => t.requiresGrad))
    for (const a of stack) a.strength = a.name === name ? 1 : 0
    if (!stack.some((a) => a.name === name)) continue // a layer without it runs as its base
    for (const a of stack) for (const t of ownTensors(a)) t.requiresGrad = trains && a.name === name
  }
}

/** Switch every adapter off: the model computes its original weights (exactly its base, unless PiSSA split them). */
export function disableAdapters(model: Module): void {
  for (const [, top] of loraLayers(model)) for (const a of adapterStack(top)) a.strength = 0
}
