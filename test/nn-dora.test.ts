// DoRA: starts as its base, matches its composite (the norm a constant), trains, merges, and round-trips through
// Tenny's, PEFT's and mlx-lm's adapter layouts.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { Tensor, noGrad } from '../src/tensor'
import { manualSeed } from '../src/random'
import { loadSafetensors } from '../src/formats/safetensors-node'
import { Linear } from '../nn/linear'
import { QuantizedLinear, quantize } from '../nn/quantized'
import { LoRALinear } from '../nn/lora'
import { DoRALinear } from '../nn/dora'
import {
  NamedAdapters,
  getAdapter,
  applyLoRA,
  loraLayers,
  loraAdapters,
  setAdapters,
  disableAdapters,
  printTrainable,
  mergeLoRA,
  addAdapter,
} from '../nn/lora-model'
import { saveAdapters, loadAdapters, exportPEFT, importPEFT, exportMLX, importMLX } from '../nn/files/adapters-node'
import { AdamW } from '../nn/optim'
import { add, sub, mul, div, sqrt, sum, linear, matmul, reshape, mseLoss } from '../ops'
import { assertClose, gradcheck, matchesComposite, normal, uniform } from './helpers'
import { Toy, withDir } from './fixtures'

const bits = (t: Tensor) => Array.from(t.data)

/** ‖V‖ per row, (out, in) → (out). */
const rowNorms = (V: Tensor) => sqrt(sum(mul(V, V), 1))

/** A DoRA layer whose A, B and m have moved away from their start, as training would move them. */
function trained(base: Linear | QuantizedLinear, rank = 3): DoRALinear {
  const layer = DoRALinear.fromLinear(base, { rank, alpha: 2 * rank })
  layer.loraB.data.set(normal(layer.loraB.shape, 0.3).data)
  for (let i = 0; i < layer.magnitude.size; i++) layer.magnitude.data[i] *= 1 + 0.2 * normal([1]).data[0]
  return layer
}

test('DoRA: m starts at the row norms of W, so the layer starts as its base (float and quantized); A, B and m train', () => {
  manualSeed(1)
  const base = new Linear(12, 8)
  const dora = DoRALinear.fromLinear(base, { rank: 4 })
  assertClose(dora.magnitude.data, rowNorms(base.weight).data, { rtol: 1e-6, what: 'm = ‖W‖_row' })
  const x = uniform([5, 12])
  assertClose(dora.forward(x).data, base.forward(x).data, { atol: 1e-6, what: 'float base' })
  assert.equal(dora.trainableParameters(), [dora.loraA, dora.loraB, dora.magnitude])
  const q = QuantizedLinear.fromLinear(new Linear(32, 8), { mode: 'affine', bits: 4, groupSize: 16 })
  const x2 = uniform([3, 32])
  assertClose(DoRALinear.fromLinear(q, { rank: 2 }).forward(x2).data, q.forward(x2).data, {
    atol: 1e-6,
    what: 'quantized base',
  })
})

test('DoRA: y = (m / ‖W + s·B·A‖_row) ⊙ (x·Wᵀ + s·x·Aᵀ·Bᵀ) + b, values and gradients against the composite with the norm a constant', () => {
  manualSeed(2)
  const base = new Linear(10, 6)
  const dora = trained(base)
  const x = uniform([4, 10], 1, true)
  const W = base.weight,
    s = dora.scale
  // the norm, computed once from the current A and B and then held fixed: what DoRA's section 4.3 detaches
  const norm = noGrad(() => rowNorms(add(W, mul(matmul(dora.loraB, dora.loraA), s))))
  const composite = () =>
    add(
      mul(add(linear(x, W), mul(linear(linear(x, dora.loraA), dora.loraB), s)), div(dora.magnitude, norm)),
      base.bias!,
    )
  matchesComposite(() => dora.forward(x), composite, [x, dora.loraA, dora.loraB, dora.magnitude], {
    atol: 1e-5,
    rtol: 1e-4,
  })
  gradcheck(() => dora.forward(x), [x, dora.magnitude]) // the norm depends on neither: exact gradients
  gradcheck(composite, [dora.loraA, dora.loraB]) // A and B: the composite the layer matched above
  // and the norm really is held constant: differentiating through it gives another gradient for A
  const through = () =>
    add(
      mul(
        add(linear(x, W), mul(linear(linear(x, dora.loraA), dora.loraB), s)),
        div(dora.magnitude, rowNorms(add(W, mul(matmul(dora.loraB, dora.loraA), s)))),
      ),
      base.bias!,
    )
  const probe = uniform([4, 6])
  dora.loraA.grad = null
  dora.forward(x).backward(probe.data)
  const detached = dora.loraA.grad!.data.slice()
  dora.loraA.grad = null
  through().backward(probe.data)
  const gap = Math.max(...detached.map((g, i) => Math.abs(g - dora.loraA.grad!.data[i])))
  assert.ok(gap > 1e-3, `dA with the norm detached differs from dA through it (max gap ${gap})`)
})

test('DoRA: merge equals forward, unmerge restores W, fuse requantizes; strengths interpolate and 0 is the base bitwise', () => {
  manualSeed(3)
  const base = new Linear(16, 8)
  const dora = trained(base)
  const x = uniform([5, 16])
  const y = dora.forward(x),
    y0 = base.forward(x)
  const merged = dora.merge()
  assertClose(merged.forward(x).data, y.data, { atol: 1e-5, rtol: 0, what: 'merged' })
  assertClose(dora.unmerge(merged).weight.data, base.weight.data, { atol: 1e-6, rtol: 0, what: 'unmerged' })
  const mixed = new NamedAdapters([dora]) // strengths live with the named adapters
  setAdapters(mixed, { default: 0.5 })
  assertClose(mixed.forward(x).data, add(y0, mul(sub(y, y0), 0.5)).data, { atol: 1e-6, what: 'strength 0.5' })
  assertClose(mixed.merge().forward(x).data, mixed.forward(x).data, { atol: 1e-5, what: 'merged at strength 0.5' })
  disableAdapters(mixed)
  assert.equal(bits(mixed.forward(x)), bits(y0))
  const q = QuantizedLinear.fromLinear(new Linear(32, 8), { mode: 'affine', bits: 8, groupSize: 16 })
  const qdora = trained(q)
  const fused = qdora.fuse()
  assert.instance(fused.layer, QuantizedLinear)
  assert.ok(fused.report!.retained > 0.9, JSON.stringify(fused.report))
  const x2 = uniform([3, 32])
  assertClose(fused.layer.forward(x2).data, qdora.forward(x2).data, { atol: 0.02, what: "Q(W') against DoRA on Q(W)" })
})

test('applyLoRA({ useDora: true }) trains: the loss falls, only A, B and m change, printTrainable says DoRA, mergeLoRA folds it', () => {
  manualSeed(4)
  const m = new Toy()
  const x = uniform([32, 16]),
    target = uniform([32, 4])
  const frozen = m.blocks[0].fc!.weight.data.slice()
  const { paths, trainable } = applyLoRA(m, { useDora: true, rank: 2, targets: ['qProj', 'vProj'] })
  assert.is(paths.length, 6)
  assert.is(trainable, 6 * (2 * (16 + 16) + 16)) // A, B and m (out = 16) per layer
  assert.ok(loraLayers(m).every(([, l]) => l instanceof DoRALinear))
  const lines: string[] = []
  printTrainable(m, (l) => lines.push(l))
  assert.equal(lines[1], "DoRA 'default': rank 2, alpha 16, scale 8 (alpha/rank), strength 1, active: 6 layers")
  const opt = new AdamW(m.trainableParameters(), { lr: 1e-2, weightDecay: 0 })
  const first = mseLoss(m.forward(x), target).item()
  for (let i = 0; i < 40; i++) {
    opt.zeroGrad()
    mseLoss(m.forward(x), target).backward()
    opt.step()
  }
  const last = mseLoss(m.forward(x), target).item()
  assert.ok(last < 0.7 * first, `loss ${first} → ${last}`)
  assert.equal(m.blocks[0].fc!.weight.data, frozen)
  const before = m.forward(x)
  mergeLoRA(m)
  assertClose(m.forward(x).data, before.data, { atol: 1e-5 })
})

test("DoRA round-trips through Tenny, PEFT and MLX files (float and quantized base), with the magnitude under each layout's key", () =>
  withDir((dir) => {
    manualSeed(5)
    const adapted = new Toy({ d: 8, n: 2, fc: false, head: false })
    const baseState = adapted.stateDict()
    const fresh = () => {
      const model = new Toy({ d: 8, n: 2, fc: false, head: false })
      model.loadStateDict(baseState)
      return model
    }
    applyLoRA(adapted, { useDora: true, rank: 2, alpha: 4 })
    for (const [, l] of loraAdapters(adapted)) {
      l.loraB.data.set(normal(l.loraB.shape, 0.3).data)
      const m = (l as DoRALinear).magnitude
      for (let i = 0; i < m.size; i++) m.data[i] *= 1.1
    }
    const x = uniform([3, 8]),
      want = adapted.forward(x)
    const file = join(dir, 'adapters.safetensors')
    const config = saveAdapters(file, adapted)
    assert.is(config.useDora, true)
    assert.equal(loadSafetensors(file).tensors['blocks.0.qProj.magnitude'].shape, [8])
    const tenny = fresh()
    loadAdapters(tenny, file)
    assert.equal(bits(tenny.forward(x)), bits(want))
    assert.ok(loraLayers(tenny).every(([, l]) => l instanceof DoRALinear))

    exportPEFT(join(dir, 'peft'), adapted)
    const peftCfg = JSON.parse(readFileSync(join(dir, 'peft', 'adapter_config.json'), 'utf8'))
    assert.is(peftCfg.use_dora, true)
    const peftKeys = Object.keys(loadSafetensors(join(dir, 'peft', 'adapter_model.safetensors')).tensors)
    assert.ok(peftKeys.includes('base_model.model.blocks.1.vProj.lora_magnitude_vector'), peftKeys.join(', '))
    const peft = fresh()
    importPEFT(peft, join(dir, 'peft'))
    assert.equal(bits(peft.forward(x)), bits(want))

    for (const name of ['adapters.safetensors', 'adapters.npz']) {
      mkdirSync(join(dir, 'mlx'), { recursive: true })
      const mlxFile = join(dir, 'mlx', name)
      exportMLX(mlxFile, adapted)
      assert.is(JSON.parse(readFileSync(join(dir, 'mlx', 'adapter_config.json'), 'utf8')).fine_tune_type, 'dora')
      if (name.endsWith('.safetensors')) assert.equal(loadSafetensors(mlxFile).tensors['blocks.0.vProj.m'].shape, [8])
      const mlx = fresh()
      importMLX(mlx, mlxFile)
      assertClose(mlx.forward(x).data, want.data, { atol: 1e-6, what: name })
    }

    const q = fresh()
    quantize(q, { mode: 'int8' })
    loadAdapters(q, file)
    assertClose(q.forward(x).data, want.data, { atol: 0.05, what: 'DoRA on an int8 base' })
  }))

test('DoRA beside a LoRA adapter on one base: each adds its own change; never wrapped around another adapter', () => {
  manualSeed(6)
  const base = new Linear(8, 4)
  const lora = LoRALinear.fromLinear(base, { rank: 2 })
  lora.loraB.data.set(normal([4, 2], 0.3).data)
  assert.throws(
    () => DoRALinear.fromLinear(lora as never, { rank: 2 }),
    /^DoRALinear: base must be a Linear, Conv1D or QuantizedLinear, got LoRALinear$/,
  )
  const both = addAdapter(lora, 'd', { useDora: true, rank: 2 }) as NamedAdapters
  const dora = getAdapter(both, 'd') as DoRALinear
  dora.loraB.data.set(normal([4, 2], 0.3).data)
  assert.is(dora.base, base)
  const x = uniform([3, 8])
  const y0 = base.forward(x)
  const want = add(y0, add(sub(lora.forward(x), y0), sub(dora.forward(x), y0))) // base + ΔLoRA + ΔDoRA
  assertClose(both.forward(x).data, want.data, { atol: 1e-6 })
  assertClose(both.merge().forward(x).data, want.data, { atol: 1e-5, what: 'merged' })
  assert.throws(
    () => applyLoRA(new Toy(), { useDora: true, init: 'pissa' }),
    /useDora and init 'pissa' cannot be combined/,
  )
})

test.run()
