import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { tensor, noGrad } from '../src/tensor'
import { manualSeed } from '../src/random'
import { Linear } from '../nn/linear'
import { Adam } from '../nn/optim'
import { LoRALinear } from '../nn/lora'
import { PiSSALinear } from '../nn/pissa'
import { applyLoRA, loraLayers } from '../nn/lora-model'
import { loraReport, adapterReport, subspaceSimilarity } from '../nn/files/lora-report'
import { matmul, mseLoss, mul, sub, slice, transpose } from '../ops'
import * as linalg from '../ops/linalg'
import { assertClose, normal, uniform } from './helpers'
import { TwoLayer } from './fixtures'

/** A TwoLayer with rank-`rank` LoRA on both layers, trained 40 Adam steps towards a random target. */
function trainedModel(rank: number): TwoLayer {
  const model = new TwoLayer()
  applyLoRA(model, { targets: ['fc1', 'fc2'], rank, alpha: 2 * rank })
  const x = uniform([32, 12]),
    y = normal([32, 6])
  const opt = new Adam(model.trainableParameters(), { lr: 1e-2 })
  for (let step = 0; step < 40; step++) {
    opt.zeroGrad()
    mseLoss(model.forward(x), y).backward()
    opt.step()
  }
  return model
}

const quiet = () => {}

test("loraReport: a trained adapter's ΔW has rank ≤ r, and every number agrees with the formed ΔW", () => {
  manualSeed(1)
  const model = trainedModel(3)
  const reports = loraReport(model, { log: quiet })
  assert.equal(
    reports.map((r) => r.path),
    ['fc1', 'fc2'],
  )
  for (const [[path, layer], r] of loraLayers(model).map((l, i) => [l, reports[i]] as const)) {
    const dW = layer.deltaWeight() // (out, in), formed only here, to check the factored numbers against
    const W = (layer.base as Linear).weight
    assert.ok(r.deltaRank <= r.rank, `${path}: rank(ΔW) = ${r.deltaRank} > r = ${r.rank}`)
    assert.is(r.deltaRank, linalg.matrixRank(dW), `${path}: rank(ΔW)`)
    assert.is(r.deltaRank, 3, `${path}: 40 steps of training use all 3 directions`)
    const dense = linalg.svd(dW)
    assertClose(r.singularValues, dense.S.data.slice(0, 3), { rtol: 1e-4, atol: 1e-6, what: `${path}: σ(ΔW)` })
    assertClose([r.deltaNorm, r.weightNorm], [linalg.norm(dW), linalg.norm(W)], { rtol: 1e-5, what: `${path}: norms` })
    assertClose([r.relativeNorm], [linalg.norm(dW) / linalg.norm(W)], { rtol: 1e-5 })
    const U = slice(dense.U, 1, 0, 3),
      V = slice(dense.V, 1, 0, 3) // ΔW's top-3 directions, from the dense SVD
    const amplification = linalg.norm(dW) / linalg.norm(matmul(matmul(transpose(U), W), V))
    assertClose([r.amplification], [amplification], { rtol: 1e-3, what: `${path}: amplification` })
  }
})

test('loraReport: a fresh adapter (B = 0) has ΔW = 0: rank 0, all σ zero, relative norm and amplification 0', () => {
  manualSeed(2)
  const model = new TwoLayer()
  applyLoRA(model, { targets: ['fc1'], rank: 4 })
  const [r] = loraReport(model, { log: quiet })
  assert.equal([r.deltaRank, r.singularValues, r.relativeNorm, r.amplification], [0, [0, 0, 0, 0], 0, 0])
})

test('adapterReport: amplification by hand, ΔW along a weak direction of W is amplified, along a strong one not', () => {
  const base = Linear.fromWeights(
    tensor([
      [10, 0],
      [0, 1],
    ]),
  ) // W = diag(10, 1)
  const layer = LoRALinear.fromLinear(base, { rank: 1, alpha: 1 }) // scale 1
  layer.loraA.data.set([0, 1])
  layer.loraB.data.set([0, 0.5]) // ΔW = 0.5·e₂e₂ᵀ: W's weak direction, where Uᵀ·W·V = 1
  let r = adapterReport(layer)
  assertClose([r.deltaRank, r.deltaNorm, r.relativeNorm, r.amplification], [1, 0.5, 0.5 / Math.sqrt(101), 0.5])
  layer.loraA.data.set([1, 0])
  layer.loraB.data.set([0.5, 0]) // ΔW = 0.5·e₁e₁ᵀ: W's strong direction, where Uᵀ·W·V = 10
  r = adapterReport(layer)
  assertClose([r.amplification], [0.05])
})

test('loraReport: prints one line per LoRA layer; picks a named adapter; clear errors', () => {
  manualSeed(3)
  const model = trainedModel(2)
  const lines: string[] = []
  loraReport(model, { log: (l) => lines.push(l) })
  assert.is(lines.length, 3)
  assert.match(lines[0], 'rank(ΔW) ≤ r')
  assert.match(lines[1], /^fc1\s+default\s+2 ≤ 2/)
  assert.match(lines[2], /^fc2\s+default\s+2 ≤ 2/)
  applyLoRA(model, { targets: ['fc2'], rank: 5, name: 'extra' })
  assert.equal(
    loraReport(model, { adapter: 'extra', log: quiet }).map((r) => [r.path, r.rank, r.deltaRank]),
    [['fc2', 5, 0]],
  )
  assert.throws(() => loraReport(new TwoLayer(), { log: quiet }), /loraReport: the model has no LoRALinear layers/)
  assert.throws(
    () => loraReport(model, { adapter: 'nope', log: quiet }),
    /loraReport: no LoRA layer has an adapter named 'nope'/,
  )
  assert.throws(
    () => adapterReport(loraLayers(model)[0][1], 'extra', 'fc1'),
    /adapterReport: layer 'fc1' has no adapter named 'extra'; it has 'default'/,
  )
})

test('subspaceSimilarity: 1 for the same row space, 0 for orthogonal ones, cos² of the angle in between', () => {
  manualSeed(4)
  const A = normal([4, 10])
  assertClose([subspaceSimilarity(A, A, 4, 4)], [1])
  const mixed = matmul(normal([4, 4]), A) // other rows, the same row space
  assertClose([subspaceSimilarity(A, mixed, 4, 4)], [1], { atol: 1e-5 })
  const big = normal([8, 10]) // its top 8 of 10 input directions hold most, not all, of A's 4
  const phi = subspaceSimilarity(A, big, 4, 8)
  assert.ok(phi > 0 && phi < 1, `φ = ${phi}`)
  assertClose([subspaceSimilarity(big, A, 8, 4)], [phi], { atol: 1e-6, what: 'symmetric' })
  const e12 = tensor([
      [1, 0, 0, 0],
      [0, 1, 0, 0],
    ]),
    e34 = tensor([
      [0, 0, 2, 0],
      [0, 0, 0, 3],
    ])
  assertClose([subspaceSimilarity(e12, e34, 2, 2)], [0])
  assertClose([subspaceSimilarity(tensor([[1, 0, 0]]), tensor([[1, 1, 0]]), 1, 1)], [0.5]) // 45°: cos² = ½
  const A2 = tensor([
    [2, 2, 0, 0],
    [0, 0, 1, 0],
  ]) // top direction (e₁ + e₂)/√2 (σ = 2√2), then e₃ (σ = 1)
  assertClose([subspaceSimilarity(e12, A2, 2, 1), subspaceSimilarity(e12, A2, 2, 2)], [1, 0.5]) // its top direction lies in span(e₁, e₂); of its top two, only one
})

test('subspaceSimilarity: errors name the shapes and the allowed i, j', () => {
  const A = normal([3, 5])
  assert.throws(
    () => subspaceSimilarity(A, normal([3, 6]), 1, 1),
    /subspaceSimilarity: expected A1 \(r1, in\) and A2 \(r2, in\) with the same in, got \(3,5\) and \(3,6\)/,
  )
  assert.throws(
    () => subspaceSimilarity(A, A, 4, 1),
    /subspaceSimilarity: i must be an integer in 1\.\.3 for A1 \(3,5\), got 4/,
  )
  assert.throws(() => subspaceSimilarity(A, A, 1, 0), /subspaceSimilarity: j must be an integer in 1\.\.3/)
})

test('PiSSA recipe: B, A from the top-r singular triplets of W, base keeps W − scale·B·A; the layer equals W at init', () => {
  manualSeed(5)
  const original = new Linear(24, 16)
  const rank = 4,
    alpha = 8,
    scale = alpha / rank
  const W = original.weight
  const { B, A } = linalg.lowRank(W, rank) // W_r = B·A, the principal part
  const loraB = mul(B, 1 / Math.sqrt(scale)),
    loraA = mul(A, 1 / Math.sqrt(scale)) // so scale·loraB·loraA = W_r
  const residual = noGrad(() => sub(W, mul(matmul(loraB, loraA), scale))) // (16, 24)
  const layer = LoRALinear.fromLinear(Linear.fromWeights(residual, original.bias), { rank, alpha })
  layer.loraA.data.set(loraA.data)
  layer.loraB.data.set(loraB.data)
  const x = uniform([5, 24])
  assertClose(layer.forward(x).data, original.forward(x).data, { atol: 1e-5, rtol: 1e-5 })
  const r = adapterReport(layer)
  assertClose(r.singularValues, linalg.svdvals(W).data.slice(0, rank), { rtol: 1e-5, what: "ΔW holds W's top-r σ" })
  assertClose(linalg.svdvals(residual).data.slice(0, 16 - rank), linalg.svdvals(W).data.slice(rank), {
    atol: 1e-5,
    what: 'the residual holds the rest',
  })
})

test('adapterReport on init pissa: ΔW is measured against the original W, so a fresh PiSSA adapter has learned nothing', () => {
  manualSeed(5)
  const original = new Linear(24, 16)
  const layer = PiSSALinear.fromLinear(original, { rank: 4, alpha: 8 })
  let r = adapterReport(layer)
  assertClose([r.weightNorm], [linalg.norm(original.weight)], {
    rtol: 1e-5,
    what: '‖W‖ of the original, not of the residual',
  })
  assert.ok(r.deltaNorm < 1e-5 * r.weightNorm, `fresh PiSSA adapter: ‖ΔW‖ = ${r.deltaNorm}`)
  layer.loraB.data[0] += 0.25 // one step of 'training': ΔW = scale·0.25·e₁·A[0]
  r = adapterReport(layer)
  assertClose([r.deltaNorm], [layer.scale * 0.25 * linalg.norm(slice(layer.loraA, 0, 0, 1))], { rtol: 1e-4 })
  assert.is(r.deltaRank, 1)
})

test.run()
