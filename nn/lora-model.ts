// LoRA at the model level: find the layers to adapt and wrap them (applyLoRA), count what trains, merge adapters
// back into plain layers, and keep several named adapters on one layer, mixed by strength (NamedAdapters).
import { Tensor, noGrad, zeros } from '../src/tensor.js'
import { fail, quote } from '../src/errors.js'
import { add, mul, sub } from '../ops/elementwise.js'
import { linear, matmul } from '../ops/matmul.js'
import { Module, typeName } from './module.js'
import { Linear, Conv1D } from './linear.js'
import { QuantizedLinear, type FuseReport } from './quantized.js'
import { LoRALinear, isBaseLayer, asLinear, withDelta, type BaseLayer, type LoRAOptions } from './lora.js'
import { PiSSALinear, originalWeight } from './pissa.js'
import { DoRALinear } from './dora.js'

/** What applyLoRA leaves at an adapted layer's path: one adapter, or several under their names. */
export type Adapted = LoRALinear | NamedAdapters
export type Targets = string | string[] | RegExp | ((path: string, module: Module) => boolean)

/** LoRA's options plus useDora (PEFT's use_dora) and init 'pissa' (PiSSA adapters). */
export type AdapterOptions = Omit<LoRAOptions, 'init'> & { init?: LoRAOptions['init'] | 'pissa'; useDora?: boolean }

/**
 * targets: layer names or dotted path suffixes ('qProj', 'attn.vProj'), a string holding a regular expression
 * matched against the whole path (PEFT's target_modules as a string), a RegExp searched in the path, or a predicate.
 * layers: the last N blocks, or block indices (negative from the end).
 */
export type ApplyLoRAOptions = AdapterOptions & { targets?: Targets; layers?: number | number[] }
/** What applyLoRA did: the adapted layers' paths, and the parameters that train out of all of them. */
export type Applied = { paths: string[]; trainable: number; total: number }

/**
 * Several named adapters over one frozen base, mixed by strength: y = base(x) + Σ strengthᵢ·(adapterᵢ(x) −
 * base(x)).
 * Every adapter is a LoRALinear over this same base module (listed once: Module's walk skips a module it has seen).
 * A PiSSA adapter switched off gives back the W_r it took out of the base, so that layer computes W again.
 */
export class NamedAdapters extends Module {
  base: BaseLayer // frozen, shared by every adapter
  adapters: LoRALinear[]
  strengths: number[] // how much of each adapter's change forward adds: 1 on, 0 off
  readonly inFeatures: number
  readonly outFeatures: number

  constructor(adapters: LoRALinear[]) {
    super()
    if (!Array.isArray(adapters) || !adapters.length || !adapters.every((a) => a instanceof LoRALinear))
      fail('NamedAdapters', `expected a non-empty list of LoRALinear adapters, got ${quote(adapters)}`)
    const base = adapters[0].base
    if (adapters.some((a) => a.base !== base)) fail('NamedAdapters', 'every adapter must sit on the same base module')
    ;[this.base, this.adapters, this.strengths] = [base, [...adapters], adapters.map(() => 1)]
    ;[this.inFeatures, this.outFeatures] = [base.inFeatures, base.outFeatures]
  }

  forward(x: Tensor): Tensor {
    const y0 = this.base.forward(x) // (..., out)
    let y = y0
    for (const [i, a] of this.adapters.entries()) {
      const t = this.strengths[i]
      // an adapter's change: LoRA's update, or for DoRA (which rescales W itself) its output less the base's
      if (t !== 0) y = add(y, mul(a instanceof DoRALinear ? sub(a.forward(x), y0) : a.update(x), t)) // (..., out)
      if (!(a instanceof PiSSALinear) || t === 1) continue
      const { A, B } = a.principal // W_r = B·A, given back as the adapter switches off
      y = add(y, linear(mul(linear(x, A), 1 - t), B)) // (..., out)
    }
    return y
  }

  /**
   * Σ strengthᵢ·ΔWᵢ (out, in), plus (1 − strength)·W_r for PiSSA: what forward adds to base(x), as one
   * matrix.
   */
  deltaWeight(): Tensor {
    return noGrad(() => {
      let dW = zeros([this.outFeatures, this.inFeatures]) // (out, in)
      for (const [i, a] of this.adapters.entries()) {
        const t = this.strengths[i]
        dW = add(dW, mul(a.deltaWeight(), t))
        if (a instanceof PiSSALinear) dW = add(dW, mul(matmul(a.principal.B, a.principal.A), 1 - t)) // W_r·(1 − t)
      }
      return dW
    })
  }

  /** A frozen float layer holding W + deltaWeight() in the base's layout, as LoRALinear.merge. */
  merge(): Linear | Conv1D {
    return withDelta(this.base, this.deltaWeight())
  }

  /** merge(); on a quantized base (unless `dequantize`) requantized, as LoRALinear.fuse. */
  fuse({ dequantize = false } = {}): { layer: Linear | Conv1D | QuantizedLinear; report: FuseReport | null } {
    if (this.base instanceof QuantizedLinear && !dequantize) return this.base.requantize(this.deltaWeight())
    return { layer: this.merge(), report: null }
  }

  /** Add `adapter` (strength 1), or put it in place of the one of its name; a new base moves every adapter onto it. */
  put(adapter: LoRALinear): this {
    const i = this.adapters.findIndex((a) => a.name === adapter.name)
    if (i >= 0) this.adapters[i] = adapter
    else {
      this.adapters.push(adapter)
      this.strengths.push(1)
    }
    if (adapter.base !== this.base) for (const a of [this, ...this.adapters]) a.base = adapter.base
    return this
  }
}

const isAdapted = (m: unknown): m is Adapted => m instanceof LoRALinear || m instanceof NamedAdapters

/** A layer an adapter can go on: a Linear, Conv1D or QuantizedLinear, or one that already has adapters. */
export const isAdaptable = (m: unknown): m is BaseLayer | Adapted => isBaseLayer(m) || isAdapted(m)

/** Whether `path` lies strictly inside the module at `outer` ('' is the root, which holds every other path). */
const within = (path: string, outer: string) => path !== outer && (outer === '' || path.startsWith(`${outer}.`))

/** The block index of a path: its first numeric segment (`blocks.3.attn.qProj` → 3), or −1. */
export function blockIndex(path: string): number {
  const m = /(?:^|\.)(\d+)(?:\.|$)/.exec(path)
  return m ? Number(m[1]) : -1
}

/** Every adapted layer in the model by path (never an adapter inside a NamedAdapters). */
export function loraLayers(model: Module): [string, Adapted][] {
  const all = [...model.namedModules()].filter((e): e is [string, Adapted] => isAdapted(e[1]))
  const outer = all.filter(([, m]) => m instanceof NamedAdapters).map(([p]) => p)
  return all.filter(([p]) => !outer.some((o) => within(p, o)))
}

/** Each adapted layer's adapter `name` (default: the layer's active one), by the layer's path. */
export function loraAdapters(model: Module, name?: string): [string, LoRALinear][] {
  return loraLayers(model).flatMap(([path, layer]): [string, LoRALinear][] => {
    const adapter = getAdapter(layer, name ?? activeAdapter(layer))
    return adapter ? [[path, adapter]] : []
  })
}

/** Every layer an adapter can go on, by path: a Linear, Conv1D or QuantizedLinear, or an adapted layer. */
export function linearLayers(model: Module): [string, BaseLayer | Adapted][] {
  const adapted = loraLayers(model).map(([p]) => p)
  return [...model.namedModules()].filter(
    (e): e is [string, BaseLayer | Adapted] =>
      e[0] !== '' && !adapted.some((p) => within(e[0], p)) && (isBaseLayer(e[1]) || isAdapted(e[1])),
  )
}

/** The adapters on one layer, first added first. */
export function adapterStack(layer: Adapted): LoRALinear[] {
  return layer instanceof NamedAdapters ? [...layer.adapters] : [layer]
}

export function adapterNames(layer: Adapted): string[] {
  return adapterStack(layer).map((l) => l.name)
}

export function getAdapter(layer: Adapted, name: string): LoRALinear | undefined {
  return adapterStack(layer).find((l) => l.name === name)
}

/** An adapter's own tensors (A, B and DoRA's magnitude), not its base's. */
function ownTensors(layer: LoRALinear): Tensor[] {
  return [...layer.namedParameters()].filter(([n]) => !n.startsWith('base.')).map(([, t]) => t)
}

/** The name of the adapter that trains on this layer (the last added if none does). */
export function activeAdapter(layer: Adapted): string {
  const trains = adapterStack(layer).reverse()
  return (trains.find((l) => ownTensors(l).some((t) => t.requiresGrad)) ?? trains[0]).name
}

/** The base a new adapter `name` goes on at this layer: the layer itself, its base, or W again under a PiSSA one. */
export function baseFor(layer: BaseLayer | Adapted, name: string): BaseLayer {
  if (isBaseLayer(layer)) return layer
  const old = getAdapter(layer, name)
  if (!(old instanceof PiSSALinear)) return layer.base
  return Linear.fromWeights(originalWeight(old), asLinear(old.base).bias, { requiresGrad: false })
}

/** `layer` with `adapter` (built over baseFor's base) added, or put in place of the one of its name. */
function withAdapter(layer: BaseLayer | Adapted, adapter: LoRALinear): Adapted {
  if (layer instanceof NamedAdapters) return layer.put(adapter)
  return layer instanceof LoRALinear && layer.name !== adapter.name ? new NamedAdapters([layer, adapter]) : adapter
}

/**
 * Put `adapter` on the layer at `path`: on a plain layer, beside its adapters, or in place of the one of its name.
 * It takes the layer's train/eval mode: an adapter put into a model in eval mode (a loaded checkpoint) runs no dropout.
 */
export function putAdapter(model: Module, path: string, adapter: LoRALinear): void {
  const layer = model.getModule(path) as BaseLayer | Adapted
  const adapted = withAdapter(layer, adapter).train(layer.training)
  if (adapted !== layer) model.setModule(path, adapted)
}

/** A new adapter for a layer: DoRA, PiSSA or plain LoRA, named `name`; nothing in the model changes. */
function build(layer: BaseLayer | Adapted, name: string, { useDora = false, ...options }: AdapterOptions): LoRALinear {
  const op = 'applyLoRA'
  if (useDora && options.init === 'pissa') fail(op, `useDora and init 'pissa' cannot be combined`)
  if (isAdapted(layer) && getAdapter(layer, name))
    fail('addAdapter', `this layer already has an adapter named '${name}'`)
  if (options.init === 'pissa' && isAdapted(layer)) {
    const what = `init 'pissa' (adapter '${name}') takes W's top-${options.rank ?? 8} part out of the base`
    const names = adapterNames(layer).map((n) => `'${n}'`)
    fail('LoRALinear', `${what}, so it must be a layer's first adapter; this one already has ${names.join(', ')}`)
  }
  const { init, ...settings } = { ...options, name },
    base = baseFor(layer, name)
  if (init === 'pissa') return PiSSALinear.fromLinear(base, settings)
  return useDora
    ? DoRALinear.fromLinear(base, { ...settings, init })
    : LoRALinear.fromLinear(base, { ...settings, init })
}

/**
 * Add adapter `name` to a layer; it trains, the layer's other adapters freeze. Returns the adapted layer, in the
 * layer's train/eval mode.
 */
export function addAdapter(layer: BaseLayer | Adapted, name: string, options: AdapterOptions = {}): Adapted {
  const adapter = build(layer, name, options ?? {})
  for (const other of isAdapted(layer) ? adapterStack(layer) : [])
    for (const t of ownTensors(other)) t.requiresGrad = false
  return withAdapter(layer, adapter).train(layer.training)
}

function layerFilter(model: Module, layers: number | number[] | undefined): (path: string) => boolean {
  const op = 'applyLoRA'
  if (layers === undefined) return () => true
  let count = 0
  for (const [path] of model.namedModules()) count = Math.max(count, blockIndex(path) + 1)
  if (typeof layers === 'number') {
    if (!Number.isInteger(layers) || layers < 1 || layers > count)
      fail(op, `layers = ${layers}, but the model has ${count} blocks (expected 1..${count})`)
    return (path) => blockIndex(path) >= count - layers
  }
  if (!Array.isArray(layers)) fail(op, `layers must be a count or a list of block indices, got ${quote(layers)}`)
  const wanted = new Set<number>()
  for (const i of layers) {
    if (!Number.isInteger(i) || i < -count || i >= count)
      fail(op, `layer index ${quote(i)} is out of range for ${count} blocks`)
    wanted.add(i < 0 ? count + i : i)
  }
  return (path) => wanted.has(blockIndex(path))
}

/** A string is a regular expression over the whole path, as PEFT reads target_modules given as one string. */
function targetMatcher(targets: Targets): (path: string, m: Module) => boolean {
  if (targets instanceof RegExp) return (path) => targets.test(path)
  if (typeof targets === 'function') return targets
  if (typeof targets === 'string') {
    let whole: RegExp
    try {
      whole = new RegExp(`^(?:${targets})$`)
    } catch (err) {
      fail('applyLoRA', `targets ${quote(targets)} is not a regular expression (${(err as Error).message})`)
    }
    return (path) => whole.test(path)
  }
  if (!Array.isArray(targets) || !targets.every((t) => typeof t === 'string'))
    fail('applyLoRA', `targets must be names, a regular expression or a predicate, got ${quote(targets)}`)
  return (path) => targets.some((t) => path === t || path.endsWith(`.${t}`))
}

/**
 * Wrap every matching layer (Linear, Conv1D or QuantizedLinear) in a LoRALinear (DoRALinear with useDora; on a
 * layer that has adapters, a new one named `name` beside them), then freeze everything but the new adapters.
 */
export function applyLoRA(model: Module, options: ApplyLoRAOptions = {}): Applied {
  const { targets = ['qProj', 'vProj'], layers, name = 'default', ...settings } = options ?? ({} as ApplyLoRAOptions)
  const matches = targetMatcher(targets),
    inLayers = layerFilter(model, layers)
  const linears = linearLayers(model)
  const picked = linears.filter(([path, m]) => matches(path, m) && inLayers(path))
  if (picked.length === 0) {
    const here =
      linears
        .slice(0, 8)
        .map(([p]) => p)
        .join(', ') + (linears.length > 8 ? ', …' : '')
    const where = layers === undefined ? '' : ` in layers ${quote(layers)}`
    const hint = typeof targets === 'string' ? ' (a string is a regular expression over the whole path)' : ''
    const what = `no Linear layer matches targets ${quote(targets)}${where}${hint}`
    fail('applyLoRA', `${what}; linear layers here: ${here || 'none'}`)
  }
  // every adapter is built before any is installed: an error leaves the model as it was
  const built = picked.map(([path, m]) => [path, build(m, name, settings)] as const)
  model.freeze()
  for (const [path, adapter] of built) {
    putAdapter(model, path, adapter)
    for (const t of ownTensors(adapter)) t.requiresGrad = true
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

/** Each adapter of a layer with the strength forward gives it. */
function withStrengths(layer: Adapted): [LoRALinear, number][] {
  return layer instanceof NamedAdapters ? layer.adapters.map((a, i) => [a, layer.strengths[i]]) : [[layer, 1]]
}

/** Print (PEFT's format) and return trainable and total parameters, plus each distinct adapter setting in use. */
export function printTrainable(model: Module, log = console.log): Omit<Applied, 'paths'> & { percent: number } {
  const trainable = model.numParameters({ trainable: true }),
    total = countParameters(model)
  const percent = (100 * trainable) / total
  const count = (n: number) => n.toLocaleString('en-US')
  log(`trainable params: ${count(trainable)} || all params: ${count(total)} || trainable%: ${percent.toFixed(4)}`)
  const settings = new Map<string, number>()
  for (const [, layer] of loraLayers(model)) {
    for (const [a, strength] of withStrengths(layer)) {
      const kind = `${a instanceof DoRALinear ? 'DoRA' : 'LoRA'} '${a.name}'`
      const active = a.name === activeAdapter(layer) ? ', active' : ''
      const setting = `rank ${a.rank}, alpha ${a.alpha}, scale ${a.scale} (${a.rule}), strength ${strength}`
      const key = `${kind}: ${setting}${active}`
      settings.set(key, (settings.get(key) ?? 0) + 1)
    }
  }
  for (const [key, n] of settings) log(`${key}: ${n} layer${n === 1 ? '' : 's'}`)
  return { trainable, total, percent }
}

/** The merged layers' paths, and for each one requantized (keepQuantized) what Q(W + ΔW) kept of ΔW. */
export type Merged = { paths: string[]; reports: Record<string, FuseReport> }

/**
 * Replace every adapted layer by its merged layer: a float layer (W dequantized when the base was quantized), or
 * with keepQuantized a requantized QuantizedLinear plus its fidelity report.
 */
export function mergeLoRA(model: Module, options: { keepQuantized?: boolean } = {}): Merged {
  const { keepQuantized = false } = options ?? {}
  const reports: Record<string, FuseReport> = {}
  const layers = loraLayers(model)
  if (layers.some(([p]) => p === '')) fail('mergeLoRA', 'the model is itself an adapted layer; call its fuse() instead')
  for (const [path, layer] of layers) {
    const { layer: merged, report } = layer.fuse({ dequantize: !keepQuantized })
    if (report) reports[path] = report
    model.setModule(path, merged)
  }
  return { paths: layers.map(([p]) => p), reports }
}

function checkNames(op: string, model: Module, names: string[]): void {
  const known = new Set(loraLayers(model).flatMap(([, l]) => adapterNames(l)))
  const list = known.size ? [...known].map((k) => `'${k}'`).join(', ') : 'none'
  for (const n of names) if (!known.has(n)) fail(op, `no adapter named ${quote(n)}; this model has ${list}`)
}

/**
 * Give every adapter the strength `strengthOf` says; a lone LoRALinear set to anything but 1 becomes a
 * NamedAdapters, the module that holds strengths (at the model's root that cannot be done: a clear error).
 */
function setStrengths(op: string, model: Module, strengthOf: (a: LoRALinear) => number): void {
  for (const [path, layer] of loraLayers(model)) {
    if (layer instanceof NamedAdapters) layer.strengths = layer.adapters.map(strengthOf)
    else if (strengthOf(layer) !== 1) {
      if (path === '') fail(op, 'the model is a single LoRALinear: put it in a NamedAdapters to mix it')
      const mixed = new NamedAdapters([layer])
      mixed.strengths = [strengthOf(layer)]
      model.setModule(path, mixed)
    }
  }
}

/** Mix named adapters across the model (or a layer): setAdapters(model, { cwk: 0.7, rj: 0.3 }); others switch off. */
export function setAdapters(model: Module, strengths: Record<string, number>): void {
  if (typeof strengths !== 'object' || strengths === null)
    fail('setAdapters', `expected strengths by adapter name, e.g. { cwk: 0.7 }, got ${quote(strengths)}`)
  checkNames('setAdapters', model, Object.keys(strengths))
  for (const [n, s] of Object.entries(strengths))
    if (!Number.isFinite(s)) fail('setAdapters', `strength of '${n}' must be a finite number, got ${quote(s)}`)
  setStrengths('setAdapters', model, (a) => (Object.hasOwn(strengths, a.name) ? strengths[a.name] : 0))
}

/** Run only adapter `name` (strength 1); where a layer has it, it trains if any adapter there did; others freeze. */
export function setAdapter(model: Module, name: string): void {
  checkNames('setAdapter', model, [name])
  for (const [, layer] of loraLayers(model)) {
    const all = adapterStack(layer)
    const trains = all.some((a) => ownTensors(a).some((t) => t.requiresGrad))
    if (all.some((a) => a.name === name))
      for (const a of all) for (const t of ownTensors(a)) t.requiresGrad = trains && a.name === name
  }
  setStrengths('setAdapter', model, (a) => (a.name === name ? 1 : 0)) // a layer without it runs as its base
}

/** Switch every adapter off: the model computes its original weights (exactly its base, unless PiSSA split them). */
export function disableAdapters(model: Module): void {
  setStrengths('disableAdapters', model, () => 0)
}
