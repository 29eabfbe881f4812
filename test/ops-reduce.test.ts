// Reductions over one axis, several, or all, with and without keepDims: values by hand, gradcheck, errors.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Tensor, tensor } from '../src/tensor'
import { manualSeed, random } from '../src/random'
import { sum, mean, max, min, variance, logsumexp, argmax } from '../ops'
import { gradcheck, assertClose, uniform } from './helpers'

const vals = (t: Tensor) => Array.from(t.data)
const x23 = () =>
  tensor([
    [1, 2, 3],
    [4, 5, 6],
  ])

/** Distinct values 0.1 apart in a seeded order, so max/min have one clear winner per slice. */
function distinct(shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1)
  const v = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.1)
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[v[i], v[j]] = [v[j], v[i]]
  }
  return tensor(Float32Array.from(v), shape, { requiresGrad: true })
}

/** The axis choices every reduction is checked on, for a (2, 3, 4) input. */
const AXES: (number | number[] | undefined)[] = [0, 1, 2, -1, [0, 2], [2, 0], [0, 1, 2], [], undefined]

test('sum and mean: by hand over one axis, several, all, with keepDims', () => {
  assert.equal(sum(x23()).shape, [])
  assert.is(sum(x23()).item(), 21)
  assert.equal(sum(x23(), 0).toArray(), [5, 7, 9])
  assert.equal(sum(x23(), -1).toArray(), [6, 15])
  assert.equal(sum(x23(), 1, true).toArray(), [[6], [15]])
  assert.equal(sum(x23(), [0, 1], true).toArray(), [[21]])
  assert.equal(mean(x23(), 0).toArray(), [2.5, 3.5, 4.5])
  assert.equal(mean(x23(), 1, true).toArray(), [[2], [5]])
  assert.is(mean(x23()).item(), 3.5)
  assert.equal(sum(tensor(5)).toArray(), 5)
})

test('max and min: by hand, over several axes, and argmax', () => {
  const x = tensor([
    [1, 9, 3],
    [7, 5, 6],
  ])
  assert.equal(max(x, 1).toArray(), [9, 7])
  assert.equal(min(x, 0).toArray(), [1, 5, 3])
  assert.equal(max(x, 0, true).toArray(), [[7, 9, 6]])
  assert.is(max(x).item(), 9)
  assert.is(min(x).item(), 1)
  assert.equal(
    max(
      tensor([
        [
          [1, 8],
          [3, 4],
        ],
        [
          [5, 2],
          [7, 6],
        ],
      ]),
      [0, 2],
    ).toArray(),
    [8, 7],
  )
  assert.equal(argmax(x).toArray(), [1, 0])
  assert.equal(argmax(x, 0, true).toArray(), [[1, 0, 1]])
})

test('max and min: the gradient goes to the first extreme element only', () => {
  const x = tensor(
    [
      [2, 5, 5],
      [1, 1, 0],
    ],
    { requiresGrad: true },
  )
  sum(max(x, 1)).backward()
  assert.equal(vals(x.grad!), [0, 1, 0, 1, 0, 0])
  x.grad = null
  sum(min(x)).backward()
  assert.equal(vals(x.grad!), [0, 0, 0, 0, 0, 1])
})

test('variance and logsumexp: by hand', () => {
  assert.equal(variance(tensor([1, 2, 3, 4])).toArray(), Math.fround(5 / 3)) // unbiased by default
  assert.equal(variance(tensor([1, 2, 3, 4]), 0, false, { unbiased: false }).toArray(), 1.25)
  assert.equal(variance(x23(), 1, true).toArray(), [[1], [1]])
  assertClose(
    vals(
      logsumexp(
        tensor([
          [0, 0],
          [1000, 1000],
        ]),
        1,
      ),
    ),
    [Math.LN2, 1000 + Math.LN2],
  ) // stable for large inputs
  assertClose(vals(logsumexp(tensor([Math.log(2), Math.log(3)]))), [Math.log(5)])
  assert.equal(logsumexp(x23(), 0, true).shape, [1, 3])
  assert.equal(logsumexp(tensor([-Infinity, 0])).item(), 0)
  assert.equal(
    logsumexp(
      tensor([
        [-Infinity, -Infinity],
        [Infinity, 0],
      ]),
      1,
    ).toArray(),
    [-Infinity, Infinity],
  ) // not NaN
})

test('reductions: output shapes for every axis choice, with and without keepDims', () => {
  const x = uniform([2, 3, 4])
  const expected: Record<string, [number[], number[]]> = {
    '0': [
      [3, 4],
      [1, 3, 4],
    ],
    '1': [
      [2, 4],
      [2, 1, 4],
    ],
    '2': [
      [2, 3],
      [2, 3, 1],
    ],
    '-1': [
      [2, 3],
      [2, 3, 1],
    ],
    '[0,2]': [[3], [1, 3, 1]],
    '[2,0]': [[3], [1, 3, 1]],
    '[0,1,2]': [[], [1, 1, 1]],
    '[]': [
      [2, 3, 4],
      [2, 3, 4],
    ],
    undefined: [[], [1, 1, 1]],
  }
  for (const axis of AXES) {
    const [dropped, kept] = expected[JSON.stringify(axis) ?? 'undefined']
    for (const op of [sum, mean, max, min, variance, logsumexp]) {
      assert.equal(op(x, axis).shape, dropped, `${op.name} ${JSON.stringify(axis)}`)
      assert.equal(op(x, axis, true).shape, kept, `${op.name} ${JSON.stringify(axis)} keepDims`)
    }
  }
})

test('sum mean max min variance logsumexp: gradients match finite differences for every axis choice', () => {
  manualSeed(20)
  for (const axis of AXES)
    for (const keepDims of [false, true]) {
      const x = uniform([2, 3, 4], 1, true)
      for (const op of [sum, mean, logsumexp]) gradcheck(() => op(x, axis, keepDims), [x])
      if (!(Array.isArray(axis) && axis.length === 0)) gradcheck(() => variance(x, axis, keepDims), [x]) // a variance over no axis is 0/0
      gradcheck(() => variance(x, axis, keepDims, { unbiased: false }), [x])
      const d = distinct([2, 3, 4])
      gradcheck(() => max(d, axis, keepDims), [d])
      gradcheck(() => min(d, axis, keepDims), [d])
    }
})

test('errors: axes out of range or repeated, and empty reductions, name the op', () => {
  const x = x23()
  assert.throws(() => sum(x, 2), /^sum: axis 2 is out of range for a tensor with 2 dims/)
  assert.throws(() => mean(x, -3), /^mean: axis -3 is out of range for a tensor with 2 dims/)
  assert.throws(() => max(x, 5), /^max: axis 5 is out of range/)
  assert.throws(() => min(x, 1.5), /^min: axis 1.5 is out of range/)
  assert.throws(() => variance(x, [0, 0]), /^variance: axis \[0, 0\] names an axis twice/)
  assert.throws(() => logsumexp(x, 3), /^logsumexp: axis 3 is out of range/)
  assert.throws(() => argmax(x, 2), /^argmax: axis 2 is out of range/)
  assert.throws(
    () => max(tensor(new Float32Array(0), [2, 0]), 1),
    /^max: cannot reduce over axis 1 of size 0 in shape \(2,0\)/,
  )
})

test.run()
