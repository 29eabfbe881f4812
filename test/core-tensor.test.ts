import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Tensor, tensor, zeros, ones, full, arange, eye, rand, randn, randint, noGrad } from '../src/tensor'
import { manualSeed } from '../src/random'
import { add, mul, sum, matmul } from '../ops'

test('tensor: nested arrays give shape and row-major data', () => {
  const t = tensor([[1, 2, 3], [4, 5, 6]])
  assert.equal(t.shape, [2, 3])
  assert.equal(Array.from(t.data), [1, 2, 3, 4, 5, 6])
  assert.equal(t.toArray(), [[1, 2, 3], [4, 5, 6]])
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
  assert.equal(eye(2, 3).toArray(), [[1, 0, 0], [0, 1, 0]])
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
  const w = tensor([[1, 2], [3, 4]]) // requiresGrad false
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

test('autograd: a non-scalar needs an explicit gradient', () => {
  const x = tensor([1, 2], undefined, { requiresGrad: true })
  assert.throws(() => mul(x, 2).backward(), /not a scalar/)
  mul(x, 2).backward(tensor([1, 10]))
  assert.equal(Array.from(x.grad!.data), [2, 20])
})

test.run()
