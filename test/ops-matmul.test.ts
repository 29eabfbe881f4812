// matmul (2-D, batched with broadcast batch dims, 1-D operands) and linear: values by hand, gradcheck,
// fused linear against its composite, and shape errors that name both operands.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { tensor, zeros } from '../src/tensor'
import { manualSeed } from '../src/random'
import { matmul, linear, add, transpose, sum } from '../ops'
import { gradcheck, assertClose, uniform, matchesComposite } from './helpers'

test('matmul: 2-D product by hand, and 1-D operands acting as row / column vectors', () => {
  const a = tensor([
      [1, 2],
      [3, 4],
    ]),
    b = tensor([
      [5, 6],
      [7, 8],
    ])
  assert.equal(matmul(a, b).toArray(), [
    [19, 22],
    [43, 50],
  ])
  assert.equal(matmul(tensor([[1, 2, 3]]), tensor([[1], [1], [1]])).toArray(), [[6]])
  assert.equal(matmul(tensor([1, 1]), b).toArray(), [12, 14]) // (2) @ (2,2) → (2)
  assert.equal(matmul(a, tensor([1, 1])).toArray(), [3, 7]) // (2,2) @ (2) → (2)
  const dot = matmul(tensor([1, 2, 3]), tensor([4, 5, 6]))
  assert.equal([dot.shape, dot.item()], [[], 32])
  assert.equal(
    matmul(
      tensor([1, 0]),
      tensor([
        [
          [1, 2],
          [3, 4],
        ],
        [
          [5, 6],
          [7, 8],
        ],
      ]),
    ).toArray(),
    [
      [1, 2],
      [5, 6],
    ],
  ) // (2) @ (2,2,2) → (2,2)
  assert.equal(matmul(zeros([0, 3]), zeros([3, 2])).shape, [0, 2])
})

test('matmul: batched products broadcast their batch dims, each slice equal to its own 2-D product', () => {
  manualSeed(40)
  const a = uniform([2, 1, 3, 4]),
    b = uniform([5, 4, 2])
  const y = matmul(a, b)
  assert.equal(y.shape, [2, 5, 3, 2])
  for (let i = 0; i < 2; i++)
    for (let j = 0; j < 5; j++) {
      const ai = tensor(a.data.slice(i * 12, (i + 1) * 12), [3, 4]),
        bj = tensor(b.data.slice(j * 8, (j + 1) * 8), [4, 2])
      assertClose(y.data.subarray((i * 5 + j) * 6, (i * 5 + j + 1) * 6), matmul(ai, bj).data, {
        what: `slice (${i},${j})`,
      })
    }
  const x = uniform([2, 3, 4]),
    w = uniform([4, 5]) // (B, T, C) @ (C, N): folded into one 2-D call
  assert.equal(matmul(x, w).shape, [2, 3, 5])
  assertClose(matmul(x, w).data, matmul(tensor(x.data, [6, 4]), w).data)
  assert.equal(matmul(uniform([3, 4]), uniform([2, 4, 5])).shape, [2, 3, 5]) // (m, k) @ (B, k, n)
})

test('matmul: gradients match finite differences for 2-D, batched, broadcast, (B,T,C)@(C,N) and 1-D cases', () => {
  manualSeed(41)
  const cases: [number[], number[]][] = [
    [
      [3, 4],
      [4, 2],
    ],
    [
      [1, 1],
      [1, 1],
    ],
    [
      [2, 1, 3, 4],
      [5, 4, 2],
    ],
    [
      [2, 3, 4],
      [4, 5],
    ],
    [
      [3, 4],
      [2, 4, 5],
    ],
    [
      [2, 2, 3],
      [1, 3, 2],
    ],
    [[4], [4, 3]],
    [[3, 4], [4]],
    [[4], [4]],
    [[3], [2, 3, 2]],
    [[2, 2, 3], [3]],
  ]
  for (const [sa, sb] of cases) {
    const a = uniform(sa, 1, true),
      b = uniform(sb, 1, true)
    gradcheck(() => matmul(a, b), [a, b])
  }
})

test('matmul: a frozen operand gets no gradient and the other still gets the right one', () => {
  const w = tensor([
    [1, 2],
    [3, 4],
  ])
  const x = tensor([[1, 1]], { requiresGrad: true })
  sum(matmul(x, w)).backward()
  assert.is(w.grad, null)
  assert.equal(x.grad!.toArray(), [[3, 7]]) // dx = dy · wᵀ with dy = 1
})

test('linear: x · wᵀ + b by hand, with and without bias, on 1-D, 2-D and 3-D inputs', () => {
  const x = tensor([[1, 2]]),
    w = tensor([
      [1, 0],
      [0, 1],
      [1, 1],
    ]),
    b = tensor([10, 20, 30])
  assert.equal(linear(x, w).toArray(), [[1, 2, 3]])
  assert.equal(linear(x, w, b).toArray(), [[11, 22, 33]])
  assert.equal(linear(tensor([1, 2]), w, b).toArray(), [11, 22, 33])
  assert.equal(linear(zeros([2, 4, 2]), w, b).shape, [2, 4, 3])
})

test('linear: gradients of x, w and b match finite differences, with and without bias', () => {
  manualSeed(42)
  for (const xs of [[4, 3], [2, 3, 3], [3]]) {
    const x = uniform(xs, 1, true),
      w = uniform([5, 3], 1, true),
      b = uniform([5], 1, true)
    gradcheck(() => linear(x, w, b), [x, w, b])
    gradcheck(() => linear(x, w), [x, w])
  }
})

test('linear: the fused op equals its composite add(matmul(x, transpose(w)), b) in values and gradients', () => {
  manualSeed(43)
  const x = uniform([2, 3, 6], 1, true),
    w = uniform([4, 6], 1, true),
    b = uniform([4], 1, true)
  matchesComposite(
    () => linear(x, w, b),
    () => add(matmul(x, transpose(w)), b),
    [x, w, b],
  )
  matchesComposite(
    () => linear(x, w),
    () => matmul(x, transpose(w)),
    [x, w],
  )
})

test('errors: matmul and linear name the op and both shapes', () => {
  assert.throws(
    () => matmul(zeros([2, 3]), zeros([4, 5])),
    (e: Error) => e.message === 'matmul: (2,3) @ (4,5): inner dimensions 3 and 4 differ',
  )
  assert.throws(() => matmul(zeros([3]), zeros([4])), /^matmul: \(3\) @ \(4\): inner dimensions 3 and 4 differ/)
  assert.throws(() => matmul(zeros([2, 3]), zeros([2])), /^matmul: \(2,3\) @ \(2\): inner dimensions 3 and 2 differ/)
  assert.throws(
    () => matmul(zeros([2, 2, 3]), zeros([3, 3, 5])),
    /^matmul: \(2,2,3\) @ \(3,3,5\): batch dims: shapes \(2\) and \(3\) cannot be broadcast/,
  )
  assert.throws(() => matmul(tensor(2), zeros([2])), /^matmul: \(\) @ \(2\): scalars cannot be multiplied as matrices/)
  assert.throws(
    () => linear(zeros([2, 3]), zeros([4, 2])),
    /^linear: input \(2,3\) does not end in 2, the weight's in-features \(4,2\)/,
  )
  assert.throws(() => linear(zeros([2, 3]), zeros([3])), /^linear: weight must be 2-D \(out, in\), got \(3\)/)
  assert.throws(() => linear(zeros([2, 3]), zeros([4, 3]), zeros([3])), /^linear: bias \(3\) must be \(4\)/)
})

test('matmul and linear with an inner dimension of 0: zeros of the right shape (as PyTorch), and empty gradients', () => {
  const a = zeros([3, 0], { requiresGrad: true }),
    b = zeros([0, 4], { requiresGrad: true })
  const y = matmul(a, b)
  assert.equal(y.shape, [3, 4])
  assert.equal(Array.from(y.data), new Array(12).fill(0))
  sum(y).backward()
  assert.equal(
    [a.grad!.shape, b.grad!.shape],
    [
      [3, 0],
      [0, 4],
    ],
  )
  const x = zeros([2, 3, 0]),
    w = zeros([5, 0], { requiresGrad: true })
  assert.equal(linear(x, w).shape, [2, 3, 5])
  assert.equal(Array.from(linear(x, w, tensor([1, 2, 3, 4, 5])).data.slice(0, 5)), [1, 2, 3, 4, 5]) // x·wᵀ = 0, then + b
  assert.equal(matmul(zeros([2, 5, 0]), zeros([2, 0, 3])).shape, [2, 5, 3])
})

test.run()
