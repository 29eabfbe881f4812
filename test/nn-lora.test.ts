import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Tensor, tensor, noGrad } from '../src/tensor'
import { manualSeed } from '../src/random'
import { Module } from '../nn/module'
import { Linear } from '../nn/linear'
import { GPT } from '../nn/gpt'
import { AdamW } from '../nn/optim'
import { QuantizedLinear, quantize } from '../nn/quantized'
import { LoRALinear, loraScale, type LoRAInit } from '../nn/lora'
import {
  NamedAdapters,
  applyLoRA,
  printTrainable,
  mergeLoRA,
  setAdapters,
  setAdapter,
  disableAdapters,
  loraLayers,
  loraAdapters,
  addAdapter,
  getAdapter,
  adapterNames,
  activeAdapter,
} from '../nn/lora-model'
import { add, mul, sum, sub, tanh, matmul, mseLoss, transpose } from '../ops'
import { assertClose, gradcheck, normal, uniform } from './helpers'
import { TINY_GPT, Toy } from './fixtures'
import type { Tensor as TfTensor } from '@tensorflow/tfjs'

const bits = (t: Tensor) => Array.from(t.data)

test('LoRALinear: equals its base bitwise at init, for a float and a quantized base', () => {
  manualSeed(1)
  const base = new Linear(16, 12)
  const lora = LoRALinear.fromLinear(base, { rank: 4 })
  const x = uniform([5, 16])
  assert.equal(bits(lora.forward(x)), bits(base.forward(x)))
  const qbase = QuantizedLinear.fromLinear(new Linear(32, 8), { groupSize: 32 })
  const x2 = uniform([3, 32])
  assert.equal(bits(LoRALinear.fromLinear(qbase).forward(x2)), bits(qbase.forward(x2)))
})

test('LoRALinear: y = base(x) + scale·x·Aᵀ·Bᵀ, checked against the composite; fields and shapes', () => {
  manualSeed(3)
  const base = new Linear(6, 5)
  const lora = LoRALinear.fromLinear(base, { rank: 2, alpha: 3 })
  lora.loraB.data.set(normal([5, 2]).data)
  assert.equal(lora.loraA.shape, [2, 6])
  assert.equal(lora.loraB.shape, [5, 2])
  assert.is(lora.scale, 1.5)
  assert.is(lora.rank, 2)
  const x = uniform([4, 6])
  const expected = add(base.forward(x), mul(matmul(matmul(x, transpose(lora.loraA)), transpose(lora.loraB)), 1.5))
  assertClose(lora.forward(x).data, expected.data, { atol: 1e-6 })
  assertClose(lora.deltaWeight().data, mul(matmul(lora.loraB, lora.loraA), 1.5).data, { atol: 1e-7 })
})

test('LoRALinear: only A and B receive gradients; the base weight and bias keep .grad null', () => {
  manualSeed(4)
  const lora = LoRALinear.fromLinear(new Linear(8, 4), { rank: 2 })
  assert.equal(lora.trainableParameters(), [lora.loraA, lora.loraB])
  sum(mul(lora.forward(uniform([3, 8])), 1)).backward()
  assert.ok(lora.loraA.grad!.data.every((g) => g === 0)) // dA = scale·Bᵀ·dyᵀ·x is zero while B = 0
  assert.ok(lora.loraB.grad!.data.some((g) => g !== 0))
  const base = lora.base as Linear
  assert.is(base.weight.grad, null)
  assert.is(base.bias!.grad, null)
  assert.not.ok(base.weight.requiresGrad)
})

test('LoRALinear: gradients of A, B and x match finite differences (float and quantized base, and mixed by strength)', () => {
  manualSeed(5)
  for (const base of [new Linear(6, 4), QuantizedLinear.fromLinear(new Linear(8, 4), { mode: 'nf4', groupSize: 8 })]) {
    const lora = LoRALinear.fromLinear(base, { rank: 3, alpha: 6 })
    lora.loraB.data.set(normal([4, 3]).data) // B ≠ 0 so that A's gradient is not zero
    const x = uniform([2, base.inFeatures], 1, true)
    gradcheck(() => lora.forward(x), [lora.loraA, lora.loraB, x])
    const mixed = new NamedAdapters([lora]) // strengths live with the named adapters, not in the layer
    setAdapters(mixed, { default: 0.7 })
    gradcheck(() => mixed.forward(x), [lora.loraA, lora.loraB, x])
  }
})

test('LoRALinear: output and gradients of A, B and x match TensorFlow.js on the same composite', async () => {
  const tf = await import('@tensorflow/tfjs') // the union package registers the gradients
  await import('@tensorflow/tfjs-backend-cpu')
  tf.env().set('PROD', true)
  await tf.setBackend('cpu')
  manualSeed(19)
  const lora = LoRALinear.fromLinear(new Linear(12, 7), { rank: 3, alpha: 5 })
  lora.loraB.data.set(normal([7, 3]).data)
  const x = uniform([4, 12], 1, true)
  const y = lora.forward(x)
  const probe = uniform([4, 7]).data
  y.backward(probe)
  const base = lora.base as Linear
  tf.tidy(() => {
    const [w, b] = [tf.tensor(base.weight.data, [7, 12]), tf.tensor(base.bias!.data, [7])]
    const f = (xt: TfTensor, at: TfTensor, bt: TfTensor) =>
      // x·Wᵀ + b + scale·(x·Aᵀ)·Bᵀ
      tf.add(
        tf.add(tf.matMul(xt, w, false, true), b),
        tf.mul(tf.matMul(tf.matMul(xt, at, false, true), bt, false, true), lora.scale),
      )
    const inputs = [tf.tensor(x.data, [4, 12]), tf.tensor(lora.loraA.data, [3, 12]), tf.tensor(lora.loraB.data, [7, 3])]
    assertClose(y.data, f(inputs[0], inputs[1], inputs[2]).dataSync(), { atol: 1e-5, what: 'output' })
    const p = tf.tensor(probe, [4, 7])
    const grads = tf.grads((xt: TfTensor, at: TfTensor, bt: TfTensor) => tf.sum(tf.mul(f(xt, at, bt), p)))(inputs)
    for (const [i, t] of [x, lora.loraA, lora.loraB].entries())
      assertClose(t.grad!.data, grads[i].dataSync(), { atol: 1e-5, what: `gradient ${i}` })
  })
})

test('LoRALinear: merged output equals unmerged within 1e-5; unmerge restores W within 1e-6', () => {
  manualSeed(6)
  const base = new Linear(32, 24)
  const lora = LoRALinear.fromLinear(base, { rank: 4, alpha: 8 })
  lora.loraB.data.set(normal([24, 4], 0.1).data)
  const x = uniform([7, 32])
  const merged = lora.merge()
  assert.instance(merged, Linear)
  assertClose(merged.forward(x).data, lora.forward(x).data, { atol: 1e-5, rtol: 0 })
  const restored = lora.unmerge(merged)
  assertClose(restored.weight.data, base.weight.data, { atol: 1e-6, rtol: 0 })
  assert.equal(bits(restored.bias!), bits(base.bias!))
  assert.throws(() => lora.unmerge(new Linear(3, 3)), /does not match this layer's \(24,32\)/)
})

test('LoRALinear: scale is alpha/rank, alpha/√rank with useRslora, or given, stored with its rule; init options', () => {
  const base = new Linear(16, 16)
  const plain = LoRALinear.fromLinear(base) // rank 8, alpha 16
  assert.equal([plain.scale, plain.alpha, plain.rule], [2, 16, 'alpha/rank'])
  const rs = LoRALinear.fromLinear(base, { rank: 4, alpha: 16, useRslora: true })
  assert.equal([rs.scale, rs.rule], [8, 'alpha/√rank'])
  const given = LoRALinear.fromLinear(base, { rank: 4, alpha: 99, scale: 20 })
  assert.equal([given.scale, given.alpha, given.rule], [20, 99, 'given'])
  assert.is(LoRALinear.fromLinear(base, { rank: 4, scale: 20 }).alpha, 80) // alpha = scale·rank
  // a scale that alpha/rank also gives keeps the rule it was given with: no float comparison guesses it
  assert.is(LoRALinear.fromLinear(base, { rank: 4, alpha: 8, scale: 2 }).rule, 'given')
  assert.is(LoRALinear.fromLinear(base, { rank: 4, alpha: 8, scale: 2, rule: 'alpha/rank' }).rule, 'alpha/rank')
  manualSeed(7)
  const g = LoRALinear.fromLinear(new Linear(400, 4), { rank: 4, init: 'gaussian' })
  const a = g.loraA.data,
    m = a.reduce((s, v) => s + v, 0) / a.length
  const std = Math.sqrt(a.reduce((s, v) => s + (v - m) ** 2, 0) / a.length)
  assert.ok(Math.abs(std - 0.25) < 0.02, `gaussian init std ${std}, expected 1/rank = 0.25`)
  const u = LoRALinear.fromLinear(new Linear(400, 4), { rank: 4 }).loraA.data
  assert.ok(
    u.every((v) => Math.abs(v) <= 1 / 20),
    'lora init stays within ±1/√in',
  )
  assert.throws(
    () => LoRALinear.fromLinear(base, { init: 'svd' as LoRAInit }),
    /^LoRALinear: unknown init "svd" \(expected 'lora' or 'gaussian'; PiSSA: PiSSALinear.fromLinear\)$/,
  )
  assert.throws(() => LoRALinear.fromLinear(base, { init: 'pissa' as LoRAInit }), /unknown init "pissa"/)
  assert.throws(() => new LoRALinear(LoRALinear.fromLinear(base) as never), /base must be a Linear, Conv1D or/)
  assert.throws(() => LoRALinear.fromLinear(base, { rank: 0 }), /rank must be a positive integer, got 0/)
  assert.throws(() => LoRALinear.fromLinear(base, { dropout: 1 }), /dropout must be in \[0, 1\), got 1/)
})

test('LoRALinear: dropout applies to the adapter path only, and only in training', () => {
  manualSeed(8)
  const base = new Linear(16, 8)
  const lora = LoRALinear.fromLinear(base, { rank: 2, dropout: 0.5 })
  lora.loraB.data.fill(0.5)
  const x = uniform([4, 16])
  lora.eval()
  const evalOut = lora.forward(x)
  assertClose(evalOut.data, lora.merge().forward(x).data, { atol: 1e-5 })
  lora.train()
  assert.not.equal(bits(lora.forward(x)), bits(evalOut))
  lora.loraB.data.fill(0) // with B = 0 the dropped adapter path adds nothing: the base is untouched by dropout
  assert.equal(bits(lora.forward(x)), bits(base.forward(x)))
})

test('named adapters: strengths mix linearly, setAdapter picks one, disableAdapters gives the base bitwise', () => {
  manualSeed(9)
  const base = new Linear(8, 6)
  const first = LoRALinear.fromLinear(base, { rank: 2, name: 'cwk' })
  first.loraB.data.set(normal([6, 2]).data)
  const cwk = getAdapter(first, 'cwk')!
  const layer = addAdapter(first, 'rj', { rank: 3, alpha: 3 }) // a NamedAdapters holding both over one base
  assert.instance(layer, NamedAdapters)
  assert.ok(cwk.base === base && getAdapter(layer, 'rj')!.base === base, 'no adapter wraps another')
  const rj = getAdapter(layer, 'rj')!
  rj.loraB.data.set(normal([6, 3]).data)
  assert.is(activeAdapter(layer), 'rj')
  assert.is(getAdapter(layer, activeAdapter(layer))!.loraA, rj.loraA)
  assert.not.ok(cwk.loraA.requiresGrad) // only the active adapter trains
  assert.ok(rj.loraA.requiresGrad)
  const x = uniform([3, 8])
  const y0 = base.forward(x)
  setAdapter(layer, 'cwk')
  const dC = sub(layer.forward(x), y0)
  assert.is(getAdapter(layer, activeAdapter(layer))!.loraA, cwk.loraA)
  assert.ok(cwk.loraA.requiresGrad && !rj.loraA.requiresGrad)
  setAdapter(layer, 'rj')
  const dR = sub(layer.forward(x), y0)
  setAdapters(layer, { cwk: 0.7, rj: 0.3 })
  assertClose(layer.forward(x).data, add(y0, add(mul(dC, 0.7), mul(dR, 0.3))).data, { atol: 1e-6 })
  disableAdapters(layer)
  assert.equal(bits(layer.forward(x)), bits(y0))
  assert.throws(() => addAdapter(layer, 'rj'), /already has an adapter named 'rj'/)
})

test('applyLoRA: targets by name, RegExp or predicate; layers = last N or indices; everything else frozen', () => {
  manualSeed(10)
  const m = new Toy()
  const { paths, trainable } = applyLoRA(m, { rank: 2 })
  assert.equal(paths, [
    'blocks.0.qProj',
    'blocks.0.vProj',
    'blocks.1.qProj',
    'blocks.1.vProj',
    'blocks.2.qProj',
    'blocks.2.vProj',
  ])
  assert.is(trainable, 6 * 2 * (16 + 16))
  assert.equal(m.trainableParameters().length, 12)
  assert.ok(m.trainableParameters().every((t) => loraAdapters(m).some(([, l]) => l.loraA === t || l.loraB === t)))
  assert.equal(applyLoRA(new Toy(), { targets: ['fc'], layers: 1 }).paths, ['blocks.2.fc'])
  assert.equal(applyLoRA(new Toy(), { targets: /vProj|head/, layers: [0, -1] }).paths, [
    'blocks.0.vProj',
    'blocks.2.vProj',
  ])
  assert.equal(applyLoRA(new Toy(), { targets: (p) => p === 'head' }).paths, ['head'])
  assert.throws(
    () => applyLoRA(new Toy(), { targets: ['kProj'] }),
    /no Linear layer matches targets \["kProj"\]; linear layers here: blocks.0.qProj/,
  )
  assert.throws(() => applyLoRA(new Toy(), { layers: 4 }), /layers = 4, but the model has 3 blocks/)
  // a second named adapter lands on the same LoRALinear layers and is the one that trains
  applyLoRA(m, { rank: 4, name: 'second', targets: ['qProj'] })
  const q = m.blocks[0].qProj as unknown
  assert.instance(q, NamedAdapters)
  assert.equal(adapterNames(q as NamedAdapters), ['default', 'second'])
  assert.instance(m.blocks[0].vProj, LoRALinear) // one adapter: a plain LoRALinear, as mlx-lm has it
  assert.is(m.numParameters({ trainable: true }), 3 * 4 * 32)
})

test('quantize after applyLoRA: the LoRA bases become QuantizedLinear and the adapters keep working', () => {
  manualSeed(18)
  const m = new Toy()
  applyLoRA(m, { rank: 2 })
  for (const [, l] of loraAdapters(m)) l.loraB.data.set(normal([16, 2], 0.1).data)
  const x = uniform([3, 16])
  const before = m.forward(x)
  const { paths } = quantize(m, { mode: 'affine', bits: 8, groupSize: 16 })
  assert.ok(paths.includes('blocks.0.qProj.base') && paths.includes('blocks.2.fc'))
  assert.instance((m.blocks[0].qProj as unknown as LoRALinear).base, QuantizedLinear)
  assertClose(m.forward(x).data, before.data, { atol: 0.02 })
  assert.equal(m.trainableParameters().length, 12)
})

test('printTrainable: prints PEFT-style counts and the LoRA setting, returns count and percent', () => {
  manualSeed(11)
  const m = new Toy()
  quantize(m, { mode: 'int8', filter: (p) => p.endsWith('fc') })
  applyLoRA(m, { rank: 2, alpha: 4 })
  const lines: string[] = []
  const r = printTrainable(m, (l) => lines.push(l))
  const total = 3 * (2 * (16 * 16 + 16) + 16 * 16 + 16) + 16 * 4 + 4 + 6 * 2 * 32 // quantized weights count by elements
  assert.is(r.total, total)
  assert.is(r.trainable, 384)
  assertClose([r.percent], [(100 * 384) / total])
  assert.match(lines[0], `trainable params: 384 || all params: ${total.toLocaleString('en-US')} || trainable%: `)
  assert.equal(lines[1], "LoRA 'default': rank 2, alpha 4, scale 2 (alpha/rank), strength 1, active: 6 layers")
})

test('mergeLoRA: swaps every LoRALinear for a Linear; the model computes the same within 1e-5', () => {
  manualSeed(12)
  const m = new Toy()
  quantize(m, { mode: 'affine', bits: 8, groupSize: 16, filter: (p) => p.endsWith('vProj') })
  applyLoRA(m, { rank: 2 })
  for (const [, l] of loraAdapters(m)) l.loraB.data.set(normal([16, 2], 0.1).data)
  const x = uniform([5, 16])
  const before = m.forward(x)
  const { paths, reports } = mergeLoRA(m)
  assert.is(paths.length, 6)
  assert.equal(reports, {})
  assert.is(loraLayers(m).length, 0)
  assert.instance(m.blocks[1].vProj, Linear)
  assertClose(m.forward(x).data, before.data, { atol: 1e-5, rtol: 0 })
})

test('fuse into a quantized base: a fresh adapter changes no code; a tiny ΔW is reported lost, a large one kept', () => {
  manualSeed(13)
  const q = QuantizedLinear.fromLinear(gaussian(64, 16), { mode: 'affine', bits: 4, groupSize: 32 })
  const lora = LoRALinear.fromLinear(q, { rank: 2 })
  const fresh = lora.fuse()
  assert.instance(fresh.layer, QuantizedLinear)
  assert.is(fresh.report!.codesChanged, 0)
  assert.is(fresh.report!.retained, 1)
  lora.loraB.data.set(normal([16, 2], 1e-5).data) // ΔW far below a quantization step
  const tiny = lora.fuse().report! // the group scales shift (normRatio ~0.8), but not along ΔW
  assert.ok(
    tiny.groupsBelowHalfStep === 1 && tiny.codesChanged === 0 && Math.abs(tiny.retained) < 0.3,
    JSON.stringify(tiny),
  )
  lora.loraB.data.set(normal([16, 2], 0.5).data)
  const big = lora.fuse().report!
  assert.ok(
    big.codesChanged > 0.5 &&
      big.retained > 0.95 &&
      Math.abs(big.normRatio - 1) < 0.05 &&
      big.groupsBelowHalfStep === 0,
    JSON.stringify(big),
  )
  const float = lora.fuse({ dequantize: true })
  assert.instance(float.layer, Linear)
  assert.is(float.report, null)
  const x = uniform([3, 64])
  assertClose(float.layer.forward(x).data, lora.forward(x).data, { atol: 1e-5 })
})

function gaussian(inF: number, outF: number): Linear {
  const l = new Linear(inF, outF)
  l.weight = normal([outF, inF], 0.05, true)
  return l
}

test('model-level setAdapters / setAdapter / disableAdapters, with errors naming unknown adapters', () => {
  manualSeed(14)
  const m = new Toy()
  const x = uniform([2, 16])
  const y0 = m.forward(x)
  applyLoRA(m, { rank: 2, name: 'cwk' })
  applyLoRA(m, { rank: 2, name: 'rj', targets: ['qProj'] })
  for (const [, l] of loraLayers(m))
    for (const n of adapterNames(l)) getAdapter(l, n)!.loraB.data.set(normal([16, 2], 0.2).data)
  disableAdapters(m)
  assert.equal(bits(m.forward(x)), bits(y0))
  setAdapter(m, 'rj')
  assert.equal((m.blocks[0].vProj as unknown as NamedAdapters).strengths, [0]) // vProj has no 'rj': runs as base
  setAdapters(m, { cwk: 0.5, rj: 0.5 })
  assert.not.equal(bits(m.forward(x)), bits(y0))
  assert.throws(() => setAdapters(m, { nope: 1 }), /no adapter named "nope"; this model has 'cwk', 'rj'/)
  assert.throws(() => setAdapter(m, 'x'), /setAdapter: no adapter named "x"/)
})

test('QLoRA trains in each quantization mode: loss falls with only A and B updated', () => {
  for (const opts of [
    { mode: 'affine', bits: 4, groupSize: 16 },
    { mode: 'int8' },
    { mode: 'nf4', groupSize: 16 },
  ] as const) {
    manualSeed(15)
    const m = new Toy()
    const x = uniform([32, 16]),
      target = uniform([32, 4])
    quantize(m, opts)
    applyLoRA(m, { rank: 4, targets: ['qProj', 'vProj', 'fc'] })
    const opt = new AdamW(m.trainableParameters(), { lr: 1e-2, weightDecay: 0 })
    const first = mseLoss(m.forward(x), target).item()
    let last = first
    for (let i = 0; i < 60; i++) {
      opt.zeroGrad()
      const loss = mseLoss(m.forward(x), target)
      loss.backward()
      opt.step()
      last = loss.item()
    }
    assert.ok(last < 0.5 * first, `${opts.mode}: loss ${first} → ${last}`)
  }
})

test('toy task: LoRA (under 5% of the parameters) gets within 10% of full fine-tuning on held-out loss', () => {
  // A "pretrained" MLP; the task is that MLP with a rank-2 change to its two hidden layers, plus label noise.
  manualSeed(16)
  const teacher = new Mlp(),
    base = new Mlp()
  base.loadStateDict(teacher.stateDict())
  for (const l of [teacher.fc1, teacher.fc2]) {
    const [o, i] = l.weight.shape
    l.weight.data.set(add(l.weight, mul(matmul(normal([o, 2]), normal([2, i])), 0.6 / Math.sqrt(i))).data)
  }
  const data = (n: number) => {
    const x = normal([n, 16])
    return {
      x,
      y: add(
        noGrad(() => teacher.forward(x)),
        normal([n, 4], 0.1),
      ),
    }
  }
  const train = data(128),
    val = data(256)
  const run = (model: Mlp, lr: number) => {
    const opt = new AdamW(model.trainableParameters(), { lr, weightDecay: 0 })
    for (let step = 0; step < 150; step++) {
      opt.zeroGrad()
      mseLoss(model.forward(train.x), train.y).backward()
      opt.step()
    }
    return noGrad(() => mseLoss(model.forward(val.x), val.y).item())
  }
  const full = new Mlp()
  full.loadStateDict(base.stateDict())
  const lora = new Mlp()
  lora.loadStateDict(base.stateDict())
  const { trainable, total } = applyLoRA(lora, { targets: ['fc1', 'fc2'], rank: 2, alpha: 4 })
  assert.ok(trainable / total < 0.05, `LoRA trains ${((100 * trainable) / total).toFixed(2)}%`)
  const start = noGrad(() => mseLoss(base.forward(val.x), val.y).item())
  const fullLoss = run(full, 3e-3),
    loraLoss = run(lora, 1e-2)
  assert.ok(fullLoss < 0.5 * start, `full fine-tuning learnt: ${start} → ${fullLoss}`)
  assert.ok(loraLoss <= 1.1 * fullLoss, `LoRA ${loraLoss} vs full ${fullLoss} (start ${start})`)
})

class Mlp extends Module {
  fc1 = new Linear(16, 128)
  fc2 = new Linear(128, 128)
  head = new Linear(128, 4)
  forward(x: Tensor): Tensor {
    return this.head.forward(tanh(this.fc2.forward(tanh(this.fc1.forward(x)))))
  }
}

test('GPT: LoRA on qProj/vProj starts equal to the base, trains only adapters, and merges back', () => {
  manualSeed(17)
  const gpt = new GPT(TINY_GPT)
  const idx = tensor([
    [1, 2, 3, 4, 5, 6],
    [6, 5, 4, 3, 2, 1],
  ])
  const targets = tensor([
    [2, 3, 4, 5, 6, 7],
    [5, 4, 3, 2, 1, 0],
  ])
  const before = gpt.forward(idx)
  const { paths } = applyLoRA(gpt, { rank: 2, layers: 1 })
  assert.equal(paths, ['blocks.1.attn.qProj', 'blocks.1.attn.vProj'])
  assert.equal(bits(gpt.forward(idx)), bits(before))
  const opt = new AdamW(gpt.trainableParameters(), { lr: 1e-2 })
  const first = gpt.loss(idx, targets).item()
  for (let i = 0; i < 30; i++) {
    opt.zeroGrad()
    gpt.loss(idx, targets).backward()
    opt.step()
  }
  assert.ok(gpt.loss(idx, targets).item() < first, 'loss fell')
  const frozen = [...gpt.namedParameters()].filter(([n]) => !n.includes('lora'))
  assert.ok(
    frozen.every(([, t]) => t.grad === null),
    'no base parameter got a gradient',
  )
  const adapted = gpt.forward(idx)
  mergeLoRA(gpt)
  assertClose(gpt.forward(idx).data, adapted.data, { atol: 1e-5, rtol: 0 })
})

test("applyLoRA: a string target is a regular expression over the whole path, as PEFT's target_modules string", () => {
  // before: targets.some is not a function
  assert.throws(
    () => applyLoRA(new Toy(), { targets: 'qProj' }),
    /^applyLoRA: no Linear layer matches targets "qProj" \(a string is a regular expression over the whole path\); linear layers here: blocks\.0\.qProj/,
  )
  assert.equal(applyLoRA(new Toy(), { targets: 'blocks\\.\\d+\\.qProj' }).paths, [
    'blocks.0.qProj',
    'blocks.1.qProj',
    'blocks.2.qProj',
  ])
  assert.equal(applyLoRA(new Toy(), { targets: '.*(fc|head)' }).paths, [
    'blocks.0.fc',
    'blocks.1.fc',
    'blocks.2.fc',
    'head',
  ])
  assert.throws(() => applyLoRA(new Toy(), { targets: '(' }), /^applyLoRA: targets "\(" is not a regular expression/)
  for (const bad of [42, [1], null])
    assert.throws(
      () => applyLoRA(new Toy(), { targets: bad as unknown as string[] }),
      /^applyLoRA: targets must be names, a regular expression or a predicate, got /,
    )
  assert.throws(() => applyLoRA(new Toy(), { layers: '1' as unknown as number }), /^applyLoRA: layers must be a count/)
  assert.equal(applyLoRA(new Toy(), null as unknown as undefined).paths.length, 6, 'null options: the defaults')
})

test.run()
