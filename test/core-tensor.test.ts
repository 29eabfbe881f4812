import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  Tensor,
  tensor,
  zeros,
  ones,
  full,
  arange,
  eye,
  rand,
  randn,
  randint,
  noGrad,
  isGradEnabled,
} from '../src/tensor'
import { manualSeed, rngState, setRngState, random } from '../src/random'
import { add, mul, sum, matmul, exp } from '../ops'
import { SGD } from '../nn/optim'
import { Linear } from '../nn/linear'
import { assertClose } from './helpers'

test('tensor: nested arrays give shape and row-major data', () => {
  const t = tensor([
    [1, 2, 3],
    [4, 5, 6],
  ])
  assert.equal(t.shape, [2, 3])
  assert.equal(Array.from(t.data), [1, 2, 3, 4, 5, 6])
  assert.equal(t.toArray(), [
    [1, 2, 3],
    [4, 5, 6],
  ])
  assert.is(t.ndim, 2)
  assert.is(t.size, 6)
  assert.is(tensor(7).item(), 7)
  assert.equal(tensor(7).shape, [])
})

test('tensor: ragged arrays and data/shape mismatch are errors', () => {
  assert.throws(() => tensor([[1, 2], [3]]), /ragged/)
  assert.throws(() => tensor(new Float32Array(5), [2, 3]), /5 elements but shape \(2,3\) needs 6/)
  assert.throws(() => tensor([1, 2]).item(), /item: .* 2 elements/)
})

test('creation: zeros ones full arange eye', () => {
  assert.equal(Array.from(zeros([2]).data), [0, 0])
  assert.equal(Array.from(ones([3]).data), [1, 1, 1])
  assert.equal(Array.from(full([2], 7).data), [7, 7])
  assert.equal(Array.from(arange(4).data), [0, 1, 2, 3])
  assert.equal(Array.from(arange(1, 2, 0.25).data), [1, 1.25, 1.5, 1.75])
  assert.equal(eye(2, 3).toArray(), [
    [1, 0, 0],
    [0, 1, 0],
  ])
})

test('randint: integers in [low, high); bad bounds are an error', () => {
  const r = randint(-2, 3, [1000])
  assert.ok(r.data.every((v) => Number.isInteger(v) && v >= -2 && v < 3))
  assert.equal(new Set(r.data).size, 5, 'every value in range is drawn')
  assert.throws(() => randint(5, 3, [4]), /randint: expected integers low < high, got \[5, 3\)/)
  assert.throws(() => randint(0.5, 3, [4]), /randint: expected integers low < high/)
})

test('random: manualSeed makes rand, randn and randint reproducible', () => {
  manualSeed(42)
  const a = [rand([5]), randn([5]), randint(0, 10, [5])]
  manualSeed(42)
  const b = [rand([5]), randn([5]), randint(0, 10, [5])]
  for (let i = 0; i < 3; i++) assert.equal(Array.from(a[i].data), Array.from(b[i].data))
  assert.ok(a[2].data.every((v) => Number.isInteger(v) && v >= 0 && v < 10))
})

test('autograd: micrograd sanity check by hand', () => {
  const x = tensor(-4, undefined, { requiresGrad: true })
  const z = add(mul(x, 2), add(x, 2)) // z = 3x + 2
  const y = mul(z, z) // y = (3x + 2)²
  y.backward()
  assert.is(y.item(), 100)
  assert.is(x.grad!.item(), 2 * -10 * 3) // dy/dx = 2z·3
})

test('autograd: gradients accumulate across uses and across backward calls', () => {
  const x = tensor([1, 2], undefined, { requiresGrad: true })
  sum(mul(x, x)).backward() // 2x
  assert.equal(Array.from(x.grad!.data), [2, 4])
  sum(add(x, x)).backward() // + 2
  assert.equal(Array.from(x.grad!.data), [4, 6])
})

test('autograd: a 100,000-op chain runs backward without overflowing the stack', () => {
  const x = tensor([1], undefined, { requiresGrad: true })
  let y: Tensor = x
  for (let i = 0; i < 100_000; i++) y = add(y, 1e-6)
  sum(y).backward()
  assert.is(x.grad!.data[0], 1)
})

test('autograd: frozen tensors get no grad and no backward work', () => {
  const w = tensor([
    [1, 2],
    [3, 4],
  ]) // requiresGrad false
  const x = tensor([[1, 1]], undefined, { requiresGrad: true })
  sum(matmul(x, w)).backward()
  assert.is(w.grad, null)
  assert.equal(Array.from(x.grad!.data), [3, 7])
})

test('autograd: noGrad records nothing', () => {
  const x = tensor([1], undefined, { requiresGrad: true })
  const y = noGrad(() => mul(x, 3))
  assert.is(y.requiresGrad, false)
  assert.is(y.backwardFn, null)
})

test('autograd: the graph is freed after backward unless retainGraph', () => {
  const x = tensor([2], undefined, { requiresGrad: true })
  const y = sum(mul(x, x))
  y.backward(undefined, { retainGraph: true })
  y.backward()
  assert.is(x.grad!.data[0], 8)
  assert.throws(() => y.backward(), /already freed/)
})

test('autograd: backward through a tensor whose graph was freed is an error, not a silently missing gradient', () => {
  const x = tensor([1, 1], undefined, { requiresGrad: true })
  const y = mul(x, 2)
  sum(y).backward() // frees y's link to x
  assert.equal(Array.from(x.grad!.data), [2, 2])
  assert.throws(
    () => sum(mul(y, 3)).backward(),
    /backward: the graph passes through a \(2\) tensor whose own graph an earlier backward\(\) freed/,
  )
  const x2 = tensor([1, 1], undefined, { requiresGrad: true })
  const y2 = mul(x2, 2)
  sum(y2).backward(undefined, { retainGraph: true })
  sum(mul(y2, 3)).backward() // kept: x2 gets 2 + 6
  assert.equal(Array.from(x2.grad!.data), [8, 8])
})

test('autograd: a non-scalar needs an explicit gradient', () => {
  const x = tensor([1, 2], undefined, { requiresGrad: true })
  assert.throws(() => mul(x, 2).backward(), /not a scalar/)
  mul(x, 2).backward(tensor([1, 10]))
  assert.equal(Array.from(x.grad!.data), [2, 20])
})

test('toArray, item and toString: scalars, 3-D tensors and empty tensors', () => {
  assert.equal(tensor(3).toArray(), 3)
  assert.equal(
    tensor([
      [[1], [2]],
      [[3], [4]],
    ]).toArray(),
    [
      [[1], [2]],
      [[3], [4]],
    ],
  )
  assert.equal(zeros([2, 0]).toArray(), [[], []])
  assert.is(sum(tensor([1, 2, 3])).item(), 6)
  assert.is(tensor([[5]]).item(), 5)
  assert.is(tensor([[1, 2]]).toString(), 'Tensor(1,2) [[1,2]]')
  assert.equal(tensor(Float32Array.from([1, 2, 3, 4]), [2, 2]).toArray(), [
    [1, 2],
    [3, 4],
  ])
})

test('detach: shares data, requires no grad, and stops gradients along its path only', () => {
  const x = tensor([3], { requiresGrad: true })
  const d = mul(x, 2).detach()
  assert.is(d.requiresGrad, false)
  assert.is(d.parents.length, 0)
  const y = mul(d, x) // y = (2x)·x with the first factor held constant: dy/dx = 2x = 6, not 4x = 12
  y.backward(tensor([1]))
  assert.equal(Array.from(x.grad!.data), [6])
  const z = mul(x, 1)
  assert.is(z.detach().data, z.data)
})

test('autograd: a node used by several paths sums their gradients (diamond graphs)', () => {
  const a = tensor([2], { requiresGrad: true }),
    b = tensor([3], { requiresGrad: true })
  const z = mul(a, b) // 6
  const y = add(z, mul(z, z)) // z + z²: dy/dz = 1 + 2z = 13
  y.backward(tensor([1]))
  assert.equal([a.grad!.item(), b.grad!.item()], [13 * 3, 13 * 2])
  const x = tensor([1.5], { requiresGrad: true })
  sum(add(mul(x, x), x)).backward() // x² + x: 2x + 1
  assert.is(x.grad!.item(), 4)
})

test('autograd: one dy handed to several parents stays unchanged while one of them accumulates more, and leaves own their grads', () => {
  const x = tensor([1, 1], { requiresGrad: true })
  const h1 = mul(x, 2),
    h2 = mul(x, 3) // intermediates
  const v = add(add(h1, h2), h1) // add hands its dy to both parents; h1 then gets a second gradient
  v.backward(tensor([1, 10]))
  assert.equal(Array.from(x.grad!.data), [2 + 3 + 2, 20 + 30 + 20]) // h2's share read after h1 accumulated: still dy
  const seed = new Float32Array([1, 1])
  const a = tensor([1, 2], { requiresGrad: true }),
    b = tensor([3, 4], { requiresGrad: true })
  const w = add(a, b)
  w.backward(seed)
  a.grad!.data[0] = 100 // a caller may scale a leaf's grad in place (gradient clipping does)
  assert.equal(
    [b.grad!.data[0], seed[0], w.grad!.data[0]],
    [1, 1, 1],
    "b.grad, the seed and the root's grad are not a.grad's array",
  )
})

test('autograd: leaves keep their grad, intermediates do not, and retainGraph replays without double counting inside the graph', () => {
  const x = tensor([1, 2], { requiresGrad: true })
  const h = exp(x)
  const y = sum(mul(h, h)) // Σ e^{2x}: dy/dx = 2e^{2x}
  y.backward(undefined, { retainGraph: true })
  assert.is(h.grad, null)
  const once = Array.from(x.grad!.data)
  assert.ok(Math.abs(once[0] - 2 * Math.exp(2)) < 1e-4)
  y.backward(undefined, { retainGraph: true })
  y.backward()
  assert.equal(
    Array.from(x.grad!.data),
    once.map((g) => Math.fround(Math.fround(g + g) + g)),
  )
  x.grad = null // zeroing is the caller's job, as in PyTorch
  sum(mul(x, 3)).backward()
  assert.equal(Array.from(x.grad!.data), [3, 3])
})

test('autograd: backward errors name the problem', () => {
  assert.throws(() => sum(tensor([1, 2])).backward(), /^backward: this tensor does not require grad/)
  const x = tensor([1, 2], { requiresGrad: true })
  assert.throws(() => mul(x, 2).backward(tensor([1, 2, 3])), /^backward: gradient has 3 elements, tensor \(2\) has 2/)
  assert.throws(() => mul(x, 2).backward(new Float32Array(1)), /^backward: gradient has 1 elements/)
})

test('noGrad: nests, returns the value, and restores grad mode after a throw', () => {
  const x = tensor([1], { requiresGrad: true })
  assert.throws(
    () =>
      noGrad(() => {
        throw new Error('boom')
      }),
    /boom/,
  )
  assert.is(isGradEnabled(), true)
  const y = noGrad(() => noGrad(() => mul(x, 2)))
  assert.is(y.requiresGrad, false)
  assert.is(isGradEnabled(), true)
  assert.is(mul(x, 2).requiresGrad, true)
})

test('random: rngState / setRngState reproduce a stream exactly, also after a JSON round trip', () => {
  manualSeed(123)
  rand([3])
  const saved = rngState()
  const a = [rand([4]), randn([4]), randint(0, 100, [4])].map((t) => Array.from(t.data))
  const then = random()
  setRngState(saved)
  const b = [rand([4]), randn([4]), randint(0, 100, [4])].map((t) => Array.from(t.data))
  assert.equal(b, a)
  assert.is(random(), then)
  setRngState(JSON.parse(JSON.stringify(saved))) // checkpoints store it as JSON
  assert.equal(Array.from(rand([4]).data), a[0])
  setRngState(saved) // restoring does not consume the saved state
  assert.equal(Array.from(rand([4]).data), a[0])
})

test('random: different seeds give different streams; string and number seeds both work', () => {
  manualSeed(1)
  const a = Array.from(rand([8]).data)
  manualSeed(2)
  const b = Array.from(rand([8]).data)
  assert.not.equal(a, b)
  manualSeed('1')
  assert.equal(Array.from(rand([8]).data), a)
  manualSeed(5)
  const r = rand([1000], { low: -2, high: 3 })
  assert.ok(r.data.every((v) => v >= -2 && v < 3))
  const n = randn([2000], { mean: 1, std: 2 })
  const m = n.data.reduce((s, v) => s + v, 0) / n.size
  assert.ok(Math.abs(m - 1) < 0.2, `sample mean ${m}`)
})

test('version counter: a parameter an optimizer steps or loadStateDict overwrites after the forward makes backward an error, not a wrong gradient', () => {
  const w = tensor([1, 2, 3], { requiresGrad: true })
  const x = tensor([4, 5, 6])
  const loss = sum(mul(mul(w, w), x))
  assert.is(w.version, 0)
  const opt = new SGD([w], { lr: 0.1 })
  w.grad = tensor([1, 1, 1])
  opt.step() // w changes in place, after the graph above saved it
  assert.is(w.version, 1)
  assert.throws(
    () => loss.backward(),
    /^backward: input 0 \(3\) of an op was changed in place after the forward \(version 0 → 1, e\.g\. by an optimizer step\), so its gradient would be wrong; run the forward again/,
  )
  const again = sum(mul(mul(w, w), x)) // a new forward sees the new values: fine
  w.grad = null
  again.backward()
  assertClose(
    w.grad!.data,
    Array.from(w.data, (v, i) => 2 * v * x.data[i]),
  )
  const m = new Linear(2, 1)
  const out = sum(m.forward(tensor([[1, 2]])))
  m.loadStateDict(new Linear(2, 1).stateDict())
  assert.throws(() => out.backward(), /was changed in place after the forward/)
})

test.run()
