// Elementwise ops: hand-checkable values, gradcheck for every op (binary ops on broadcast shapes),
// fused gelu against its composite, and the errors bad shapes raise.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Tensor, tensor } from '../src/tensor'
import { manualSeed, random } from '../src/random'
import {
  add,
  sub,
  mul,
  div,
  neg,
  pow,
  exp,
  log,
  sqrt,
  abs,
  tanh,
  sigmoid,
  relu,
  silu,
  gelu,
  clamp,
  where,
  maskedFill,
  sum,
} from '../ops'
import { gradcheck, assertClose, uniform, matchesComposite } from './helpers'

const vals = (t: Tensor) => Array.from(t.data)

/** Distinct values at least `gap` from each other and from 0 (so kinks sit far from the finite-difference step). */
function awayFromKinks(shape: number[], gap = 0.1, requiresGrad = true): Tensor {
  const n = shape.reduce((a, b) => a * b, 1)
  const v = Array.from({ length: n }, (_, i) => (i + 1) * gap * (i % 2 ? 1 : -1))
  for (let i = n - 1; i > 0; i--) {
    // seeded shuffle
    const j = Math.floor(random() * (i + 1))
    ;[v[i], v[j]] = [v[j], v[i]]
  }
  return tensor(Float32Array.from(v), shape, { requiresGrad })
}

/** Positive values in [lo, hi), for log, sqrt and pow bases. */
function positive(shape: number[], lo = 0.5, hi = 2): Tensor {
  const t = uniform(shape, 1, true)
  for (let i = 0; i < t.size; i++) t.data[i] = lo + ((hi - lo) * (t.data[i] + 1)) / 2
  return t
}

/** Shape pairs that exercise broadcasting: equal, trailing vector, scalar, both sides expanding. */
const BROADCAST: [number[], number[]][] = [
  [
    [2, 3],
    [2, 3],
  ],
  [[2, 3], [3]],
  [[4], []],
  [
    [2, 1, 3],
    [4, 1],
  ],
  [
    [1, 3],
    [2, 1],
  ],
]

test('add sub mul div: hand-checkable values, numbers as operands, broadcasting', () => {
  const a = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]),
    b = tensor([10, 20, 30])
  assert.equal(add(a, b).toArray(), [
    [11, 22, 33],
    [14, 25, 36],
  ])
  assert.equal(sub(a, b).toArray(), [
    [-9, -18, -27],
    [-6, -15, -24],
  ])
  assert.equal(mul(a, b).toArray(), [
    [10, 40, 90],
    [40, 100, 180],
  ])
  assert.equal(vals(div(b, tensor([[2], [4]]))), [5, 10, 15, 2.5, 5, 7.5])
  assert.equal(vals(add(a, 1)), [2, 3, 4, 5, 6, 7])
  assert.equal(vals(add(1, b)), [11, 21, 31])
  assert.equal(vals(sub(b, 1)), [9, 19, 29])
  assert.equal(vals(sub(1, b)), [-9, -19, -29])
  assert.equal(vals(mul(2, b)), [20, 40, 60])
  assert.equal(vals(div(b, 10)), [1, 2, 3])
  assert.equal(vals(div(60, b)), [6, 3, 2])
  assert.equal(vals(neg(b)), [-10, -20, -30])
  assert.equal(add(tensor([[1], [2]]), tensor([10, 20])).shape, [2, 2])
})

test('add sub mul div: gradients match finite differences on broadcast shapes', () => {
  manualSeed(10)
  for (const [sa, sb] of BROADCAST) {
    const a = uniform(sa, 1, true),
      b = positive(sb),
      c = positive(sa) // divisors away from 0
    for (const op of [add, sub, mul, div]) {
      gradcheck(() => op(a, b), [a, b])
      gradcheck(() => op(b, c), [b, c]) // the broadcast side first
    }
  }
})

test('scalar operands: gradients of add/sub/mul/div with a number on either side, and neg', () => {
  manualSeed(11)
  const x = positive([2, 3])
  for (const f of [
    () => add(x, 2),
    () => add(2, x),
    () => sub(x, 2),
    () => sub(2, x),
    () => mul(x, -3),
    () => mul(-3, x),
    () => div(x, 4),
    () => div(4, x),
    () => neg(x),
  ]) {
    gradcheck(f, [x])
  }
})

test('pow: values and gradients for a number exponent and a broadcast tensor exponent', () => {
  assert.equal(vals(pow(tensor([-2, 3]), 2)), [4, 9])
  assert.equal(vals(pow(tensor([4, 9]), 0.5)), [2, 3])
  assert.equal(vals(pow(tensor([2, 3]), tensor([3, 2]))), [8, 9])
  manualSeed(12)
  const x = uniform([2, 3], 1, true)
  gradcheck(() => pow(x, 3), [x])
  gradcheck(() => pow(x, 2), [x])
  const p = positive([2, 3])
  gradcheck(() => pow(p, 0.5), [p])
  gradcheck(() => pow(p, -1.5), [p])
  for (const [sa, sb] of BROADCAST) {
    const base = positive(sa),
      e = uniform(sb, 2, true)
    gradcheck(() => pow(base, e), [base, e])
  }
})

test('unary ops: hand-checkable values', () => {
  assertClose(vals(exp(tensor([0, 1]))), [1, Math.E])
  assertClose(vals(log(tensor([1, Math.E]))), [0, 1])
  assert.equal(vals(sqrt(tensor([4, 0.25]))), [2, 0.5])
  assert.equal(vals(abs(tensor([-2, 0, 3]))), [2, 0, 3])
  assertClose(vals(tanh(tensor([0, 1]))), [0, Math.tanh(1)])
  assertClose(vals(sigmoid(tensor([0, Math.log(3)]))), [0.5, 0.75])
  assert.equal(vals(relu(tensor([-1, 0, 2]))), [0, 0, 2])
  assertClose(vals(silu(tensor([0, Math.log(3)]))), [0, 0.75 * Math.log(3)])
  assertClose(vals(gelu(tensor([1, -1, 0]))), [0.8411919906082768, -0.15880800939172324, 0])
  assertClose(
    vals(gelu(tensor([1, -1, 2]), { approximate: 'none' })),
    [0.8413447460685429, -0.15865525393145707, 1.9544997361036416],
  )
  assert.equal(vals(clamp(tensor([-3, 0.5, 3]), -1, 1)), [-1, 0.5, 1])
  assert.equal(vals(clamp(tensor([-3, 3]), 0)), [0, 3])
})

test('unary ops: gradients match finite differences (kinked ones evaluated away from the kink)', () => {
  manualSeed(13)
  const x = uniform([3, 4], 2, true)
  for (const op of [exp, tanh, sigmoid, silu]) gradcheck(() => op(x), [x])
  gradcheck(() => gelu(x), [x])
  gradcheck(() => gelu(x, { approximate: 'none' }), [x])
  const p = positive([3, 4])
  gradcheck(() => log(p), [p])
  gradcheck(() => sqrt(p), [p])
  const k = awayFromKinks([3, 4], 0.1)
  gradcheck(() => abs(k), [k])
  gradcheck(() => relu(k), [k])
  gradcheck(() => clamp(k, -0.45, 0.75), [k]) // no value within eps of either bound
})

test('abs, relu and clamp: the gradient at a kink is 0 (abs, relu) or passes (clamp at a bound)', () => {
  const x = tensor([0, 0, 0], { requiresGrad: true })
  sum(add(add(abs(x), relu(x)), clamp(x, 0, 1))).backward()
  assert.equal(vals(x.grad!), [1, 1, 1]) // 0 + 0 + 1
})

test('gelu: the fused op equals its composite 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))) in values and gradients', () => {
  manualSeed(14)
  const x = uniform([4, 5], 3, true)
  const composite = () => mul(mul(x, 0.5), add(1, tanh(mul(add(x, mul(pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI)))))
  matchesComposite(() => gelu(x), composite, [x])
})

test('where and maskedFill: values, broadcast condition, gradients to both branches', () => {
  const cond = tensor([1, 0, 1])
  assert.equal(vals(where(cond, tensor([1, 2, 3]), tensor([10, 20, 30]))), [1, 20, 3])
  assert.equal(where(tensor([[1], [0]]), tensor([1, 2]), 0).toArray(), [
    [1, 2],
    [0, 0],
  ])
  assert.equal(vals(maskedFill(tensor([1, 2, 3]), cond, -Infinity)), [-Infinity, 2, -Infinity])
  manualSeed(15)
  const a = uniform([2, 3], 1, true),
    b = uniform([3], 1, true)
  const c = tensor([
    [1, 0, 1],
    [0, 0, 1],
  ])
  gradcheck(() => where(c, a, b), [a, b])
  gradcheck(() => where(tensor([[1], [0]]), a, b), [a, b])
  gradcheck(() => maskedFill(a, tensor([0, 1, 0]), 5), [a])
  a.grad = null
  sum(maskedFill(a, tensor([0, 1, 0]), 5)).backward()
  assert.equal(vals(a.grad!), [1, 0, 1, 1, 0, 1]) // masked positions get no gradient
})

test('errors: broadcast failures name the op and both shapes; clamp with min > max', () => {
  const a = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]),
    b = tensor([1, 2])
  for (const [name, op] of [
    ['add', add],
    ['sub', sub],
    ['mul', mul],
    ['div', div],
  ] as const) {
    assert.throws(
      () => op(a, b),
      (e: Error) => e.message.startsWith(`${name}: shapes (2,3) and (2) cannot be broadcast`),
    )
  }
  assert.throws(() => pow(a, b), /^pow: shapes \(2,3\) and \(2\) cannot be broadcast/)
  assert.throws(() => where(tensor([1, 0]), a, 0), /^where: shapes \(2\) and \(2,3\) cannot be broadcast/)
  assert.throws(() => clamp(a, 2, 1), /^clamp: min 2 is greater than max 1/)
})

test('pow at 0: d/dx x⁰ = 0 and d/de 0ᵉ = 0 for e ≥ 0, as PyTorch (was NaN); 0⁻¹ keeps its infinities', () => {
  const x = tensor([0, 0, 2, 0], { requiresGrad: true }),
    e = tensor([0, 2, 0, -1], { requiresGrad: true })
  pow(x, e).backward(Float32Array.from([1, 1, 1, 1]))
  assert.equal(Array.from(x.grad!.data), [0, 0, 0, -Infinity]) // e·x^(e−1): 0 where e = 0, then 2·0, 0, −1·0⁻²
  assert.equal(Array.from(e.grad!.data.slice(0, 2)), [0, 0])
  assertClose([e.grad!.data[2]], [Math.LN2], { rtol: 1e-6 }) // 2⁰·ln 2
  const y = tensor([0, 3], { requiresGrad: true })
  pow(y, 0).backward(Float32Array.from([1, 1]))
  assert.equal(Array.from(y.grad!.data), [0, 0])
})

test.run()
