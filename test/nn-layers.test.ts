import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Tensor, tensor, zeros } from '../src/tensor'
import { manualSeed } from '../src/random'
import { Linear } from '../nn/linear'
import { Embedding } from '../nn/embedding'
import { LayerNorm } from '../nn/layernorm'
import { Dropout } from '../nn/dropout'
import { MLP } from '../nn/gpt'
import { gradcheck, assertClose, uniform } from './helpers'

test('Linear: gradients of input, weight and bias match finite differences', () => {
  manualSeed(1)
  const lin = new Linear(3, 4)
  const x = uniform([2, 5, 3], 1, true)
  gradcheck(() => lin.forward(x), [x, lin.weight, lin.bias!])
})

test("Linear(0, n): no inputs, so its bias starts at 0 (PyTorch's bound for fan_in 0), not NaN from U(±1/√0)", () => {
  const layer = new Linear(0, 3)
  assert.equal(Array.from(layer.bias!.data), [0, 0, 0])
  assert.equal(Array.from(layer.forward(zeros([2, 0])).data), [0, 0, 0, 0, 0, 0])
})

test('LayerNorm: normalises each row to mean 0, variance 1, then applies weight and bias', () => {
  const ln = new LayerNorm(4)
  const y = ln.forward(
    tensor([
      [1, 2, 3, 4],
      [2, 2, 2, 6],
    ]),
  )
  const s = 1 / Math.sqrt(1.25 + 1e-5),
    s2 = 1 / Math.sqrt(3 + 1e-5)
  assertClose(y.data, [-1.5 * s, -0.5 * s, 0.5 * s, 1.5 * s, -s2, -s2, -s2, 3 * s2], { atol: 1e-6 })
  ln.weight.data.set([2, 2, 2, 2])
  ln.bias.data.set([1, 1, 1, 1])
  assertClose(ln.forward(tensor([[1, 2, 3, 4]])).data, [1 - 3 * s, 1 - s, 1 + s, 1 + 3 * s], { atol: 1e-6 })
})

test('LayerNorm: gradients of input, weight and bias match finite differences', () => {
  manualSeed(2)
  const ln = new LayerNorm(5, { eps: 1e-3 })
  ln.weight.data.set(uniform([5]).data)
  ln.bias.data.set(uniform([5]).data)
  const x = uniform([3, 5], 2, true)
  gradcheck(() => ln.forward(x), [x, ln.weight, ln.bias], { eps: 1e-3, tol: 2e-2 })
})

test('Embedding: looks up rows by id and sends gradients back only to the rows used', () => {
  const emb = new Embedding(4, 2)
  emb.weight.data.set([0, 1, 10, 11, 20, 21, 30, 31])
  const y = emb.forward(tensor([[3, 1, 3]]))
  assert.equal(y.shape, [1, 3, 2])
  assert.equal(Array.from(y.data), [30, 31, 10, 11, 30, 31])
  y.backward(new Float32Array([1, 2, 3, 4, 5, 6]))
  assert.equal(Array.from(emb.weight.grad!.data), [0, 0, 3, 4, 0, 0, 6, 8])
  assert.throws(() => emb.forward(tensor([4])), /embedding/)
})

test('Dropout: zeroes about p of the values and rescales the rest while training; identity in eval mode', () => {
  manualSeed(3)
  const drop = new Dropout(0.25)
  const x = new Tensor(new Float32Array(4000).fill(1), [4000])
  const y = drop.forward(x)
  const zeros = y.data.filter((v) => v === 0).length
  assert.ok(zeros > 850 && zeros < 1150, `zeroed ${zeros} of 4000`)
  assert.ok(y.data.every((v) => v === 0 || Math.abs(v - 4 / 3) < 1e-6))
  drop.eval()
  assert.is(drop.forward(x), x)
  assert.throws(() => new Dropout(1), /p must be in \[0, 1\)/)
})

test('MLP: C → 4C → C with gelu between, and gradients match finite differences', () => {
  manualSeed(4)
  const mlp = new MLP({ nEmbd: 3 })
  assert.equal([mlp.fc.inFeatures, mlp.fc.outFeatures, mlp.proj.inFeatures, mlp.proj.outFeatures], [3, 12, 12, 3])
  const x = uniform([2, 3], 1, true)
  gradcheck(() => mlp.forward(x), [x, ...mlp.parameters()])
})

test.run()
