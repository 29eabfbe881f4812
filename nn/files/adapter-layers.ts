// What every adapter layout shares: a layer's adapter as files carry it, read from a model (collect) and put into
// one (install). install checks every layer (names, shapes, ranks, finite values, settings) before the model changes:
// a bad file changes nothing.
import { fail } from '../../src/errors.js'
import { withoutInit } from '../../src/random.js'
import { Module } from '../module.js'
import { Linear } from '../linear.js'
import { QuantizedLinear } from '../quantized.js'
import { LoRALinear, type BaseLayer } from '../lora.js'
import { DoRALinear } from '../dora.js'
import { PiSSALinear, plainLoRA, originalWeight } from '../pissa.js'
import { loraLayers, adapterStack, getAdapter, activeAdapter } from '../lora-model.js'
import { assertFinite } from './checkpoint.js'
import { setting, isRank, isFiniteNumber, isDropout, named, listed } from './checks.js'

/** One layer's adapter as files carry it: A (rank, in), B (out, rank) in PEFT/Tenny orientation, and DoRA's m (out). */
export type LayerAdapter = {
  path: string
  loraA: Float32Array
  loraB: Float32Array
  rank: number
  alpha: number
  scale: number
  magnitude?: Float32Array
}
/** What every layout's reader hands install(): the layers and the settings that apply to all of them. */
export type Parsed = { layers: LayerAdapter[]; dropout: number; dora: boolean }

/** Adapter `name` (default: the first layer's active one) of every stack that has it, as plain LoRA on the base W. */
export function collect(op: string, model: Module, name?: string): Parsed & { name: string } {
  const all = loraLayers(model)
  if (all.length === 0) fail(op, `the model has no LoRA layers (applyLoRA first)`)
  const wanted = name ?? activeAdapter(all[0][1]) // the one being trained, as a save after training expects
  const found = all.flatMap(([path, top]) => {
    const a = getAdapter(top, wanted)
    return a ? [{ path, a }] : []
  })
  if (found.length === 0) fail(op, `no LoRA layer has an adapter named ${named(wanted)}`)
  // every layout keeps one kind per file (PEFT's use_dora, mlx-lm's fine_tune_type), so a mix cannot be written
  const dora = found[0].a instanceof DoRALinear
  if (found.some(({ a }) => a instanceof DoRALinear !== dora))
    fail(op, `adapter ${named(wanted)} is DoRA on some layers, plain LoRA on others; a file holds one kind`)
  const layers = found.map(({ path, a }): LayerAdapter => {
    const p = plainLoRA(a) // a PiSSA adapter as plain LoRA on the original W (rank 2r)
    return {
      path,
      loraA: p.loraA.data,
      loraB: p.loraB.data,
      rank: p.loraA.shape[0],
      alpha: p.alpha,
      scale: p.scale,
      ...(a instanceof DoRALinear && { magnitude: a.magnitude.data }),
    }
  })
  for (const l of layers) checkLayer(op, 'the model', l) // a file its own loader would refuse is never written
  return { name: wanted, layers, dropout: found[0].a.dropout, dora }
}

/** One layer's numbers checked, whatever the layout: a rank ≥ 1, finite alpha and scale, and only finite values. */
function checkLayer(op: string, source: string, l: LayerAdapter): void {
  const where = `${source}: ${named(l.path)}`
  setting(op, `${where}: rank`, l.rank, isRank, 'a positive integer')
  setting(op, `${where}: alpha`, l.alpha, isFiniteNumber, 'a finite number')
  setting(op, `${where}: scale`, l.scale, isFiniteNumber, 'a finite number')
  assertFinite(`${op}: ${where}: A`, l.loraA)
  assertFinite(`${op}: ${where}: B`, l.loraB)
  if (l.magnitude) assertFinite(`${op}: ${where}: magnitude`, l.magnitude)
}

/** Where adapter `name` goes on the model's layer `m`: on top of it, or in place of an adapter of that name. */
function placeFor(m: Linear | QuantizedLinear | LoRALinear, name: string): { base: BaseLayer; old?: LoRALinear } {
  const old = m instanceof LoRALinear ? getAdapter(m, name) : undefined
  if (!old) return { base: m }
  if (!(old instanceof PiSSALinear)) return { base: old.base, old }
  // a plain adapter replacing a PiSSA one needs the original W under it: W_res + W_r, as one float Linear
  return { base: Linear.fromWeights(originalWeight(old), old.baseLinear().bias, { requiresGrad: false }), old }
}

/** The model's layer at a path from a file: it must exist and take an adapter (a Linear, quantized or adapted). */
export function layerOf(
  op: string,
  source: string,
  model: Module,
  path: string,
): Linear | QuantizedLinear | LoRALinear {
  let m: Module
  try {
    m = model.getModule(path)
  } catch {
    fail(op, `${source}: the adapter's layer ${named(path)} does not exist in this model`)
  }
  if (!(m instanceof Linear || m instanceof QuantizedLinear || m instanceof LoRALinear))
    fail(op, `${source}: ${named(path)} is a ${m.constructor.name}, not a Linear layer`)
  return m
}

/** The model's layer under one of the file's layers, checked to take an adapter of its shape. */
function target(op: string, source: string, model: Module, l: LayerAdapter): Linear | QuantizedLinear | LoRALinear {
  checkLayer(op, source, l)
  const m = layerOf(op, source, model, l.path)
  const { inFeatures: inF, outFeatures: outF } = m
  if (
    l.loraA.length !== l.rank * inF ||
    l.loraB.length !== outF * l.rank ||
    (l.magnitude && l.magnitude.length !== outF)
  )
    fail(
      op,
      `${source}: ${named(l.path)} is (${outF},${inF}) in the model, but its adapter of rank ${l.rank} has ` +
        `${l.loraA.length} + ${l.loraB.length} values (expected A (${l.rank},${inF}), B (${outF},${l.rank}))`,
    )
  return m
}

/** Check every layer against the model, then install them all as adapter `name` (trainable) and freeze the rest. */
export function install(
  op: string,
  source: string,
  model: Module,
  { layers, dropout, dora }: Parsed,
  name: string,
): void {
  // Phase 1 finds and checks every layer; nothing in the model changes until all of them pass.
  if (layers.length === 0) fail(op, `${source} holds no adapter tensors`)
  setting(op, `${source}: dropout`, dropout, isDropout, 'a number in [0, 1)')
  const paths = new Set(layers.map((l) => l.path))
  if (paths.size !== layers.length) fail(op, `${source}: a layer path appears twice`)
  // an adapter `name` left on a layer the file does not cover would mix two files under one name
  const stale = loraLayers(model)
    .filter(([p, top]) => getAdapter(top, name) && !paths.has(p))
    .map(([p]) => p)
  if (stale.length)
    fail(
      op,
      `${source}: the model's adapter ${named(name)} is also on ${listed(stale)}, which this file does not ` +
        `cover (load it under another name)`,
    )
  const places = layers.map((l) => {
    const top = target(op, source, model, l)
    const place = placeFor(top, name)
    if (dora && place.base instanceof LoRALinear)
      fail(op, `${source}: ${named(l.path)} already has adapters; a DoRA adapter must be a layer's first`)
    return { ...place, top }
  })
  // each new layer's init is overwritten at once: not drawn, and the stream stays where it was
  const built = withoutInit(() =>
    layers.map((l, i) => {
      const options = { rank: l.rank, alpha: l.alpha, scale: l.scale, name, dropout }
      const layer = dora ? new DoRALinear(places[i].base, options) : new LoRALinear(places[i].base, options)
      layer.loraA.data.set(l.loraA)
      layer.loraB.data.set(l.loraB)
      if (layer instanceof DoRALinear && l.magnitude) layer.magnitude.data.set(l.magnitude)
      return layer
    }),
  )
  // Phase 2 cannot fail: swap the new layers in, and only the loaded adapter trains, as after applyLoRA.
  model.freeze()
  for (const [i, l] of layers.entries()) {
    const { old, top } = places[i],
      layer = built[i]
    const above = old && top instanceof LoRALinear ? adapterStack(top).find((a) => a.base === old) : undefined
    if (above)
      above.base = layer // the replaced adapter sat inside a stack
    else model.setModule(l.path, layer)
    for (const t of [layer.loraA, layer.loraB, ...(layer instanceof DoRALinear ? [layer.magnitude] : [])])
      t.requiresGrad = true
  }
}
