// GPT-2's Conv1D layout (weight stored (in, out), y = x·W + b, as transformers' Conv1D): the same function as a
// Linear holding Wᵀ, and LoRA, DoRA, PiSSA and quantization over it, as PEFT's fan_in_fan_out handles it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Tensor, noGrad } from '../src/tensor'
import { manualSeed, rngState } from '../src/random'
import { Module } from '../nn/module'
import { Linear, Conv1D, type LinearLike } from '../nn/linear'
import { QuantizedLinear, quantize } from '../nn/quantized'
import { LoRALinear } from '../nn/lora'
import { DoRALinear } from '../nn/dora'
import { PiSSALinear } from '../nn/pissa'
import { applyLoRA, mergeLoRA, loraAdapters } from '../nn/lora-model'
import { add, gelu, matmul, mseLoss, mul, slice, transpose } from '../ops'
import { AdamW } from '../nn/optim'
import { assertClose, gradcheck, normal, uniform } from './helpers'

const bits = (t: Tensor) => Array.from(t.data)

/** A Conv1D with a random weight (in, out) and bias, and the Linear holding the same function (Wᵀ). */
function pair(inF: number, outF: number): { conv: Conv1D; lin: Linear } {
  const conv = Conv1D.fromWeights(normal([inF, outF], 0.5), normal([outF], 0.5))
  return {
    conv,
    lin: Linear.fromWeights(
      noGrad(() => transpose(conv.weight)),
      conv.bias,
    ),
  }
}

test('Conv1D: y = x·W + b with W (in, out); the same as a Linear holding Wᵀ, in values and in gradients', () => {
  manualSeed(1)
  const { conv, lin } = pair(5, 3)
  assert.equal([conv.inFeatures, conv.outFeatures, conv.weight.shape], [5, 3, [5, 3]])
  const x = uniform([2, 4, 5], 1, true) // (B, T, in)
  const y = conv.forward(x) // (B, T, out)
  assert.equal(y.shape, [2, 4, 3])
  assertClose(y.data, add(matmul(x, conv.weight), conv.bias!).data, { atol: 1e-6, what: 'x·W + b' })
  assertClose(y.data, lin.forward(x).data, { atol: 1e-5, what: 'Linear with Wᵀ' })
  const probe = uniform([2, 4, 3])
  y.backward(probe)
  const dxConv = x.grad!.data.slice()
  x.grad = null
  lin.forward(x).backward(probe)
  assertClose(dxConv, x.grad!.data, { atol: 1e-5, what: 'dx' })
  assertClose(conv.weight.grad!.data, transpose(lin.weight.grad!).data, {
    atol: 1e-5,
    what: 'dW = (dWᵀ of the Linear)ᵀ',
  })
  assertClose(conv.bias!.grad!.data, lin.bias!.grad!.data, { atol: 1e-5, what: 'db' })
})

test('Conv1D: gradients of input, weight and bias match finite differences; toLinear / fromLinear round-trip', () => {
  manualSeed(2)
  const conv = new Conv1D(3, 4)
  const x = uniform([2, 3], 1, true)
  gradcheck(() => conv.forward(x), [x, conv.weight, conv.bias!])
  const back = Conv1D.fromLinear(conv.toLinear())
  assert.equal(bits(back.weight), bits(conv.weight))
  assert.equal(bits(back.bias!), bits(conv.bias!))
})

test("Conv1D: GPT-2's init (W ~ N(0, 0.02²), b = 0); fromWeights copies, draws nothing and checks the (in, out) layout", () => {
  manualSeed(3)
  const wide = new Conv1D(200, 100)
  const w = wide.weight.data
  const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length)
  assert.ok(Math.abs(std - 0.02) < 0.001, `std ${std}`)
  assert.ok(wide.bias!.data.every((v) => v === 0))
  assert.is(new Conv1D(4, 2, { bias: false }).bias, null)
  const weight = new Tensor(Float32Array.from([1, 2, 3, 4, 5, 6]), [3, 2]) // (in 3, out 2)
  const stream = rngState()
  const conv = Conv1D.fromWeights(weight, Float32Array.from([10, 20]))
  assert.equal(rngState(), stream, 'no draws')
  assert.equal([conv.inFeatures, conv.outFeatures], [3, 2])
  weight.data[0] = 99
  assert.is(conv.weight.data[0], 1, 'a copy')
  assert.equal(bits(conv.forward(new Tensor(Float32Array.from([1, 0, -1]), [1, 3]))), [1 - 5 + 10, 2 - 6 + 20])
  assert.throws(
    () => Conv1D.fromWeights(new Float32Array(6)),
    /^Conv1D\.fromWeights: .* needs \{ shape: \[in, out\] \}$/,
  )
  assert.throws(() => Conv1D.fromWeights(weight, new Float32Array(3)), /bias must be \(2\) for a \(3,2\) weight, got 3/)
})

test('LoRA over a Conv1D: A (rank, in), B (out, rank) as over a Linear; gradients; merge gives a Conv1D holding W + ΔWᵀ', () => {
  manualSeed(4)
  const { conv, lin } = pair(6, 4)
  const lora = LoRALinear.fromLinear(conv, { rank: 2, alpha: 3 })
  assert.equal(
    [lora.loraA.shape, lora.loraB.shape],
    [
      [2, 6],
      [4, 2],
    ],
  )
  lora.loraB.data.set(normal([4, 2]).data)
  const twin = LoRALinear.fromLinear(lin, { rank: 2, alpha: 3 }) // the same adapter over the Linear layout
  twin.loraA.data.set(lora.loraA.data)
  twin.loraB.data.set(lora.loraB.data)
  const x = uniform([3, 6], 1, true)
  assertClose(lora.forward(x).data, twin.forward(x).data, { atol: 1e-5, what: 'over Conv1D = over Linear' })
  gradcheck(() => lora.forward(x), [lora.loraA, lora.loraB, x])
  const merged = lora.merge()
  assert.instance(merged, Conv1D) // a fused Hugging Face checkpoint keeps its layout
  const dW = lora.deltaWeight() // (out, in)
  assertClose(merged.weight.data, add(conv.weight, transpose(dW)).data, { atol: 1e-6, what: 'W + ΔWᵀ' })
  assertClose(merged.forward(x).data, lora.forward(x).data, { atol: 1e-5, what: 'merged' })
  const back = lora.unmerge(merged)
  assert.instance(back, Conv1D)
  assertClose(back.weight.data, conv.weight.data, { atol: 1e-6, what: 'unmerged' })
  assert.instance(lora.fuse().layer, Conv1D)
})

test('DoRA and PiSSA over a Conv1D compute what they do over the equivalent Linear, and merge back to Conv1D', () => {
  manualSeed(5)
  const { conv, lin } = pair(8, 5)
  const dora = DoRALinear.fromLinear(conv, { rank: 2 }),
    twin = DoRALinear.fromLinear(lin, { rank: 2 })
  assertClose(dora.magnitude.data, twin.magnitude.data, { atol: 1e-6, what: "m = W's row norms (out)" })
  dora.loraB.data.set(normal([5, 2], 0.3).data)
  for (const [to, from] of [
    [twin.loraA, dora.loraA],
    [twin.loraB, dora.loraB],
  ])
    to.data.set(from.data)
  const x = uniform([3, 8], 1, true)
  assertClose(dora.forward(x).data, twin.forward(x).data, { atol: 1e-5, what: 'DoRA' })
  assert.instance(dora.merge(), Conv1D)
  assertClose(dora.merge().forward(x).data, dora.forward(x).data, { atol: 1e-5, what: 'DoRA merged' })
  const pissa = PiSSALinear.fromLinear(conv, { rank: 2, alpha: 2 })
  assert.instance(pissa.base, Conv1D) // the residual keeps the layout
  assertClose(pissa.forward(x).data, conv.forward(x).data, { atol: 1e-5, what: 'PiSSA at init is W' })
  assert.instance(pissa.merge(), Conv1D)
})

test('quantize over Conv1D: a QuantizedLinear computing the same function (packed as the Linear of Wᵀ would be)', () => {
  manualSeed(6)
  const model = new Gpt2Like()
  const x = uniform([2, 3, 16])
  const before = model.forward(x)
  const { paths } = quantize(model, { mode: 'affine', bits: 8, groupSize: 16 })
  assert.equal(paths, ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'])
  assert.instance(model.attn.c_attn, QuantizedLinear)
  assertClose(model.forward(x).data, before.data, { atol: 0.02, what: '8-bit' })
  const { conv, lin } = pair(32, 8)
  const q = QuantizedLinear.fromLinear(conv, { groupSize: 32 }),
    ql = QuantizedLinear.fromLinear(lin, { groupSize: 32 })
  assert.equal(Array.from(q.packed.codes), Array.from(ql.packed.codes))
  const x2 = uniform([4, 32])
  assert.equal(bits(q.forward(x2)), bits(ql.forward(x2)))
})

test("applyLoRA targets Conv1D layers by name (['c_attn'], PEFT's gpt2 default), trains them and merges back to Conv1D", () => {
  manualSeed(7)
  const model = new Gpt2Like()
  const x = uniform([2, 3, 16])
  const before = model.forward(x)
  const { paths } = applyLoRA(model, { targets: ['c_attn'], rank: 2 })
  assert.equal(paths, ['attn.c_attn'])
  assert.instance(model.attn.c_attn, LoRALinear)
  assert.equal(bits(model.forward(x)), bits(before), 'a fresh adapter changes nothing')
  const target = uniform([2, 3, 16]),
    opt = new AdamW(model.trainableParameters(), { lr: 1e-2 })
  const losses = Array.from({ length: 20 }, () => {
    opt.zeroGrad()
    const loss = mseLoss(model.forward(x), target)
    loss.backward()
    opt.step()
    return loss.item()
  })
  assert.ok(losses[19] < losses[0], `the loss falls: ${losses[0]} → ${losses[19]}`)
  assert.ok(
    loraAdapters(model)[0][1].loraB.data.some((v) => v !== 0),
    'B moved',
  )
  const adapted = model.forward(x)
  assert.equal(applyLoRA(new Gpt2Like(), { targets: '.*c_proj' }).paths, ['attn.c_proj', 'mlp.c_proj'])
  mergeLoRA(model)
  assert.instance(model.attn.c_attn, Conv1D)
  assertClose(model.forward(x).data, adapted.data, { atol: 1e-5, what: 'merged' })
})

/** transformers' GPT-2 block in miniature: Conv1D c_attn (C → 3C), c_proj, and the MLP's c_fc / c_proj. */
class Gpt2Like extends Module {
  attn = new Attn()
  mlp = new Mlp()
  forward(x: Tensor): Tensor {
    return this.mlp.forward(this.attn.forward(x)) // (B, T, C)
  }
}
class Attn extends Module {
  c_attn: LinearLike = new Conv1D(16, 48)
  c_proj: LinearLike = new Conv1D(16, 16)
  forward(x: Tensor): Tensor {
    const v = slice(this.c_attn.forward(x), -1, 32, 48) // (B, T, C): v of (B, T, 3C); a stand-in, not attention
    return this.c_proj.forward(add(x, mul(v, 0.1)))
  }
}
class Mlp extends Module {
  c_fc: LinearLike = new Conv1D(16, 64)
  c_proj: LinearLike = new Conv1D(64, 16)
  forward(x: Tensor): Tensor {
    return this.c_proj.forward(gelu(this.c_fc.forward(x))) // (B, T, 4C) → (B, T, C)
  }
}

test.run()
