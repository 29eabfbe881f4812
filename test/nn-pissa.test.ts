import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Tensor, noGrad, randint } from '../src/tensor'
import { manualSeed } from '../src/random'
import { Linear } from '../nn/linear'
import { QuantizedLinear, quantize } from '../nn/quantized'
import { LoRALinear } from '../nn/lora'
import { PiSSALinear, plainLoRA } from '../nn/pissa'
import {
  NamedAdapters,
  applyLoRA,
  loraLayers,
  loraAdapters,
  disableAdapters,
  setAdapters,
  addAdapter,
  adapterNames,
  getAdapter,
} from '../nn/lora-model'
import { saveAdapters, loadAdapters, exportPEFT, importPEFT, exportMLX, importMLX } from '../nn/files/adapters-node'
import { GPT } from '../nn/gpt'
import { Adam } from '../nn/optim'
import { add, matmul, mul, mseLoss, linear } from '../ops'
import * as linalg from '../ops/linalg'
import { assertClose, normal, uniform } from './helpers'
import { TINY_GPT, TwoLayer, withDir } from './fixtures'

/** ΔW of a layer's adapter as plain LoRA on the original W: scale·B·A of plainLoRA(). */
function plainDelta(layer: LoRALinear, name = 'default'): Tensor {
  const a = plainLoRA(getAdapter(layer, name)!)
  return noGrad(() => mul(matmul(a.loraB, a.loraA), a.scale))
}

/** Move A and B away from their start, as training would. */
function nudge(layer: LoRALinear, std = 0.1): void {
  for (const t of [layer.loraA, layer.loraB]) for (let i = 0; i < t.size; i++) t.data[i] += std * normal([1]).data[0]
}

test('PiSSA: the layer equals its original Linear at init to 1e-5; the original is left as it was; only A and B train', () => {
  manualSeed(1)
  const original = new Linear(24, 16)
  const w = original.weight.data.slice(),
    b = original.bias!.data.slice()
  const layer = PiSSALinear.fromLinear(original, { rank: 4, alpha: 8 })
  const x = uniform([5, 24])
  assertClose(layer.forward(x).data, original.forward(x).data, { atol: 1e-5, rtol: 1e-5 })
  assert.equal(original.weight.data, w)
  assert.equal(original.bias!.data, b)
  assert.ok(layer.base !== original, 'the base is a new Linear holding the residual')
  assert.equal(layer.trainableParameters(), [layer.loraA, layer.loraB])
  assert.ok(
    layer.loraB.data.some((v) => v !== 0),
    'B does not start at zero',
  )
  assert.instance(getAdapter(layer, 'default'), PiSSALinear)
})

test("PiSSA: ΔW at init holds W's top-r singular values, and the residual base holds the rest", () => {
  manualSeed(2)
  const original = new Linear(24, 16)
  const rank = 4
  const layer = PiSSALinear.fromLinear(original, { rank, alpha: 4 }) // scale 1
  const S = linalg.svdvals(original.weight).data
  assertClose(linalg.svdvals(layer.deltaWeight()).data.slice(0, rank), S.slice(0, rank), {
    rtol: 1e-5,
    what: 'σ of ΔW',
  })
  assert.is(linalg.matrixRank(layer.deltaWeight()), rank)
  assertClose(linalg.svdvals((layer.base as Linear).weight).data.slice(0, 16 - rank), S.slice(rank), {
    atol: 1e-5,
    what: 'σ of the residual',
  })
  const scaled = PiSSALinear.fromLinear(original, { rank, alpha: 32 }) // scale 8: the factors shrink by 1/√8
  assertClose(scaled.loraA.data, mul(layer.loraA, 1 / Math.sqrt(8)).data, { atol: 1e-6 })
  assertClose(scaled.deltaWeight().data, layer.deltaWeight().data, { atol: 1e-5 })
})

test('PiSSA trains: the loss on a toy regression falls, and only A and B get gradients', () => {
  manualSeed(3)
  const original = new Linear(16, 12)
  const target = add(original.weight, matmul(normal([12, 2], 0.3), normal([2, 16], 0.3))) // W + a rank-2 change
  const layer = PiSSALinear.fromLinear(original, { rank: 4, alpha: 4 })
  const x = uniform([64, 16]),
    y = noGrad(() => linear(x, target, original.bias!))
  const opt = new Adam(layer.trainableParameters(), { lr: 1e-2 })
  const losses: number[] = []
  for (let step = 0; step < 80; step++) {
    opt.zeroGrad()
    const loss = mseLoss(layer.forward(x), y)
    loss.backward()
    losses.push(loss.item())
    opt.step()
  }
  assert.ok(losses[79] < 0.2 * losses[0], `loss ${losses[0]} → ${losses[79]}`)
  const base = layer.base as Linear
  assert.is(base.weight.grad, null)
  assert.is(base.bias!.grad, null)
})

test('PiSSA with strengths, merge and a second adapter: switched off the layer is W again; mixed, W + s·(scale·B·A − W_r)', () => {
  manualSeed(4)
  const original = new Linear(10, 8)
  const layer = PiSSALinear.fromLinear(original, { rank: 3, alpha: 6 })
  nudge(layer)
  const x = uniform([4, 10]),
    plain = plainDelta(layer)
  assert.equal(plain.shape, [8, 10])
  assert.is(plainLoRA(layer).loraA.shape[0], 6, 'the plain form has rank 2r')
  const expect = (s: number) => add(original.forward(x), mul(linear(x, plain), s)).data
  assertClose(layer.forward(x).data, expect(1), { atol: 1e-5 })
  const merged = layer.merge()
  assertClose(merged.forward(x).data, layer.forward(x).data, { atol: 1e-5 })
  assertClose(layer.unmerge(merged).weight.data, (layer.base as Linear).weight.data, { atol: 1e-6 })
  const mixed = new NamedAdapters([layer]) // strengths live with the named adapters
  setAdapters(mixed, { default: 0.5 })
  assertClose(mixed.forward(x).data, expect(0.5), { atol: 1e-5 })
  assertClose(mixed.merge().forward(x).data, expect(0.5), { atol: 1e-5, what: 'merged at strength 0.5' })
  disableAdapters(mixed)
  assertClose(mixed.forward(x).data, original.forward(x).data, { atol: 1e-5 })
  assertClose(
    mixed.deltaWeight().data, // switched off, what the layer adds to W_res is W_r
    matmul(linalg.lowRank(original.weight, 3).B, linalg.lowRank(original.weight, 3).A).data,
    { atol: 1e-5 },
  )
  const both = addAdapter(mixed, 'extra', { rank: 2 }) as NamedAdapters // beside it, on the same residual base
  const extra = getAdapter(both, 'extra')!
  extra.loraB.data.set(normal([8, 2], 0.2).data)
  setAdapters(both, { extra: 1 })
  const dExtra = mul(matmul(extra.loraB, extra.loraA), extra.scale)
  assertClose(both.forward(x).data, add(original.forward(x), linear(x, dExtra)).data, {
    atol: 1e-5,
    what: 'W + ΔW_extra',
  })
})

test('PiSSA adapters are saved as plain LoRA of rank 2r (Tenny, PEFT, MLX) and load into the original model', () => {
  manualSeed(5)
  const model = new TwoLayer()
  const copies = [0, 1, 2, 3].map(() => {
    const m = new TwoLayer()
    m.loadStateDict(model.stateDict())
    return m
  })
  applyLoRA(model, { targets: ['fc1', 'fc2'], rank: 3, alpha: 6, init: 'pissa' })
  for (const [, layer] of loraAdapters(model)) nudge(layer)
  const x = uniform([7, 12]),
    want = model.forward(x).data
  withDir((dir) => {
    const file = join(dir, 'adapters.safetensors')
    const config = saveAdapters(file, model)
    assert.equal([config.rank, config.alpha, config.scale], [6, 12, 2])
    loadAdapters(copies[0], file)
    assertClose(copies[0].forward(x).data, want, { atol: 1e-5, what: 'Tenny layout on the original model' })
    exportPEFT(join(dir, 'peft'), model)
    assert.is(JSON.parse(readFileSync(join(dir, 'peft', 'adapter_config.json'), 'utf8')).r, 6)
    importPEFT(copies[1], join(dir, 'peft'))
    assertClose(copies[1].forward(x).data, want, { atol: 1e-5, what: 'PEFT' })
    mkdirSync(join(dir, 'mlx'))
    exportMLX(join(dir, 'mlx', 'adapters.npz'), model)
    importMLX(copies[2], join(dir, 'mlx', 'adapters.npz'))
    assertClose(copies[2].forward(x).data, want, { atol: 1e-5, what: 'MLX' })
    loadAdapters(model, file) // back onto the PiSSA model itself: the plain adapter replaces it, W_r stays in the layer
    assert.not.instance(getAdapter(loraLayers(model)[0][1], 'default'), PiSSALinear)
    assertClose(model.forward(x).data, want, { atol: 1e-5, what: 'reloaded into the PiSSA model' })
    disableAdapters(model)
    assertClose(model.forward(x).data, copies[3].forward(x).data, {
      atol: 1e-5,
      what: 'switched off: the original model',
    })
  })
})

test('PiSSA on a GPT: logits unchanged at init; quantizing afterwards packs the residual bases', () => {
  manualSeed(6)
  const gpt = new GPT(TINY_GPT)
  const idx = randint(0, 11, [2, 8])
  const before = gpt.forward(idx).data
  applyLoRA(gpt, { targets: ['qProj', 'vProj', 'fc'], rank: 4, init: 'pissa' })
  assertClose(gpt.forward(idx).data, before, { atol: 1e-5 })
  quantize(gpt, { mode: 'affine', bits: 8, groupSize: 16 })
  for (const [path, layer] of loraLayers(gpt)) assert.instance(layer.base, QuantizedLinear, path)
  assertClose(gpt.forward(idx).data, before, { atol: 1e-2, what: '8-bit residual bases' })
})

test('PiSSA errors: not the first adapter, a quantized base, rank above min(out, in), scale ≤ 0; nothing changes', () => {
  manualSeed(7)
  const base = new Linear(8, 4)
  const layer = LoRALinear.fromLinear(base, { rank: 2 })
  assert.throws(
    () => addAdapter(layer, 'p', { rank: 2, init: 'pissa' }),
    /init 'pissa' \(adapter 'p'\) takes W's top-2 part out of the base, so it must be a layer's first adapter; this one already has 'default'/,
  )
  assert.is(layer.base, base)
  assert.equal(adapterNames(layer), ['default'])
  const q = QuantizedLinear.fromLinear(new Linear(32, 4), { groupSize: 32 })
  assert.throws(
    () => PiSSALinear.fromLinear(q, { rank: 2 }),
    /needs a float Linear or Conv1D base to split, got a QuantizedLinear; apply PiSSA first and quantize after/,
  )
  assert.throws(
    () => PiSSALinear.fromLinear(base, { rank: 5 }),
    /rank 5 exceeds min\(out, in\) = 4 of the \(4,8\) weight/,
  )
  assert.throws(() => PiSSALinear.fromLinear(base, { rank: 2, scale: -1 }), /scale must be > 0, got -1/)
  assert.throws(() => PiSSALinear.fromLinear(base, { rank: 2, alpha: 0 }), /scale must be > 0, got 0/)
  const model = new TwoLayer()
  applyLoRA(model, { targets: ['fc1'], rank: 2 })
  assert.throws(
    () => applyLoRA(model, { targets: ['fc1'], rank: 2, init: 'pissa', name: 'p' }),
    /must be a layer's first adapter/,
  )
})

test.run()
