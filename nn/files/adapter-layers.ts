// What every adapter layout shares: a layer's adapter as files carry it, read from a model (collect) and put into
// one (install). install checks every layer (names, shapes, ranks, finite values, settings) before the model changes:
// a bad file changes nothing.
import { fail } from '../../src/errors.js'
import { withoutInit } from '../../src/random.js'
import { Module } from '../module.js'
import { LoRALinear, type BaseLayer, type ScaleRule } from '../lora.js'
import { DoRALinear } from '../dora.js'
import { plainLoRA } from '../pissa.js'
import { loraLayers, getAdapter, activeAdapter, isAdaptable, baseFor, putAdapter, type Adapted } from '../lora-model.js'
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
  rule?: ScaleRule // how scale came from alpha; 'given' when a file does not say
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
      rule: p.rule,
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

/** The model's layer at a path from a file: it must exist and take an adapter (a Linear, quantized or adapted). */
export function layerOf(op: string, source: string, model: Module, path: string): BaseLayer | Adapted {
  let m: Module
  try {
    m = model.getModule(path)
  } catch {
    fail(op, `${source}: the adapter's layer ${named(path)} does not exist in this model`)
  }
  if (!isAdaptable(m)) fail(op, `${source}: ${named(path)} is a ${m.constructor.name}, not a Linear layer`)
  return m
}

/** The model's layer under one of the file's layers, checked to take an adapter of its shape. */
function target(op: string, source: string, model: Module, l: LayerAdapter): BaseLayer | Adapted {
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
  // each adapter's base: the layer's, or W again under a PiSSA adapter this one replaces
  const bases = layers.map((l) => baseFor(target(op, source, model, l), name))
  // each new layer's init is overwritten at once: not drawn, and the stream stays where it was
  const built = withoutInit(() =>
    layers.map((l, i) => {
      const options = { rank: l.rank, alpha: l.alpha, scale: l.scale, rule: l.rule, name, dropout }
      const layer = dora ? new DoRALinear(bases[i], options) : new LoRALinear(bases[i], options)
      layer.loraA.data.set(l.loraA)
      layer.loraB.data.set(l.loraB)
      if (layer instanceof DoRALinear && l.magnitude) layer.magnitude.data.set(l.magnitude)
      return layer
    }),
  )
  // Phase 2 cannot fail: swap the new layers in, and only the loaded adapter trains, as after applyLoRA.
  model.freeze()
  for (const [i, l] of layers.entries()) {
    const layer = built[i]
    putAdapter(model, l.path, layer) // on the layer, beside its other adapters, or in place of the one named so
    for (const t of [layer.loraA, layer.loraB, ...(layer instanceof DoRALinear ? [layer.magnitude] : [])])
      t.requiresGrad = true
  }
}
