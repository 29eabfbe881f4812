// Movement ops: values by hand, gradcheck for each, and the errors bad shapes and indices raise.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Tensor, tensor, zeros, full, rand } from '../src/tensor'
import { manualSeed } from '../src/random'
import {
  reshape,
  transpose,
  permute,
  slice,
  concat,
  stack,
  split,
  expand,
  gather,
  unsqueeze,
  squeeze,
  mul,
  sum,
} from '../ops'
import { gradcheck, uniform } from './helpers'

const x23 = () =>
  tensor([
    [1, 2, 3],
    [4, 5, 6],
  ])

test('reshape: shares data, infers one -1, and passes the gradient straight through', () => {
  const x = x23()
  const y = reshape(x, [3, -1])
  assert.equal(y.toArray(), [
    [1, 2],
    [3, 4],
    [5, 6],
  ])
  assert.is(y.data, x.data)
  assert.equal(reshape(x, [6]).shape, [6])
  assert.equal(reshape(tensor([5]), []).shape, [])
  manualSeed(30)
  const u = uniform([2, 3, 4], 1, true)
  gradcheck(() => reshape(u, [4, -1]), [u])
  gradcheck(() => mul(reshape(u, [6, 4]), 2), [u]) // through a following op
})

test('transpose and permute: values by hand and gradients', () => {
  assert.equal(transpose(x23()).toArray(), [
    [1, 4],
    [2, 5],
    [3, 6],
  ])
  const x = tensor([
    [
      [1, 2],
      [3, 4],
    ],
    [
      [5, 6],
      [7, 8],
    ],
  ]) // (2, 2, 2)
  assert.equal(transpose(x, 0, 2).toArray(), [
    [
      [1, 5],
      [3, 7],
    ],
    [
      [2, 6],
      [4, 8],
    ],
  ])
  assert.equal(permute(x, [1, 0, 2]).toArray(), [
    [
      [1, 2],
      [5, 6],
    ],
    [
      [3, 4],
      [7, 8],
    ],
  ])
  assert.equal(permute(uniform([2, 3, 4, 5]), [3, -4, 1, 2]).shape, [5, 2, 3, 4])
  manualSeed(31)
  const u = uniform([2, 3, 4], 1, true)
  gradcheck(() => transpose(u), [u])
  gradcheck(() => transpose(u, 0, 2), [u])
  gradcheck(() => permute(u, [2, 0, 1]), [u])
  gradcheck(() => permute(u, [1, 2, 0]), [u])
})

test('slice: Python-style negative and clipped bounds, gradient zero outside the slice', () => {
  const x = x23()
  assert.equal(slice(x, 1, 1).toArray(), [
    [2, 3],
    [5, 6],
  ])
  assert.equal(slice(x, 1, -2, -1).toArray(), [[2], [5]])
  assert.equal(slice(x, 0, 1, 10).toArray(), [[4, 5, 6]])
  assert.equal(slice(x, -1, 2, 1).shape, [2, 0])
  const u = tensor(
    [
      [1, 2, 3],
      [4, 5, 6],
    ],
    { requiresGrad: true },
  )
  sum(slice(u, 1, 1, 2)).backward()
  assert.equal(u.grad!.toArray(), [
    [0, 1, 0],
    [0, 1, 0],
  ])
  manualSeed(32)
  const v = uniform([3, 4, 2], 1, true)
  gradcheck(() => slice(v, 1, 1, 3), [v])
  gradcheck(() => slice(v, 0, -2), [v])
})

test('concat, stack and split: values, round trips, gradients', () => {
  const a = tensor([[1, 2]]),
    b = tensor([
      [3, 4],
      [5, 6],
    ])
  assert.equal(concat([a, b]).toArray(), [
    [1, 2],
    [3, 4],
    [5, 6],
  ])
  assert.equal(concat([b, b], 1).toArray(), [
    [3, 4, 3, 4],
    [5, 6, 5, 6],
  ])
  assert.equal(stack([tensor([1, 2]), tensor([3, 4])]).toArray(), [
    [1, 2],
    [3, 4],
  ])
  assert.equal(stack([tensor([1, 2]), tensor([3, 4])], -1).toArray(), [
    [1, 3],
    [2, 4],
  ])
  assert.equal(
    split(tensor([1, 2, 3, 4, 5]), 2).map((t) => t.toArray()),
    [[1, 2], [3, 4], [5]],
  )
  assert.equal(
    split(b, [1, 1], 1).map((t) => t.toArray()),
    [
      [[3], [5]],
      [[4], [6]],
    ],
  )
  manualSeed(33)
  const p = uniform([2, 3], 1, true),
    q = uniform([2, 1], 1, true),
    r = uniform([2, 2], 1, true)
  gradcheck(() => concat([p, q, r], 1), [p, q, r])
  gradcheck(() => concat([p, p], 0), [p]) // one tensor used twice accumulates
  const s = uniform([2, 3], 1, true)
  gradcheck(() => stack([p, s]), [p, s])
  gradcheck(() => stack([p, s], 2), [p, s])
  const parts = () => split(p, [1, 2], 1)
  gradcheck(() => mul(parts()[0], parts()[1]), [p])
  gradcheck(() => concat(split(p, 2, 1).reverse(), 1), [p])
})

test('expand, unsqueeze and squeeze: shapes, values, gradients summed over the copies', () => {
  assert.equal(expand(tensor([1, 2]), [3, 2]).toArray(), [
    [1, 2],
    [1, 2],
    [1, 2],
  ])
  assert.equal(expand(tensor([[1], [2]]), [-1, 3]).toArray(), [
    [1, 1, 1],
    [2, 2, 2],
  ])
  assert.equal(unsqueeze(x23(), 0).shape, [1, 2, 3])
  assert.equal(unsqueeze(x23(), -1).shape, [2, 3, 1])
  assert.equal(squeeze(zeros([1, 2, 1])).shape, [2])
  assert.equal(squeeze(zeros([1, 2, 1]), -1).shape, [1, 2])
  assert.equal(squeeze(zeros([1, 1])).shape, [])
  const e = tensor([1, 2], { requiresGrad: true })
  sum(expand(e, [3, 2])).backward()
  assert.equal(Array.from(e.grad!.data), [3, 3])
  manualSeed(34)
  const u = uniform([2, 1, 3], 1, true)
  gradcheck(() => expand(u, [4, 2, 5, 3]), [u])
  gradcheck(() => unsqueeze(u, 1), [u])
  gradcheck(() => squeeze(u), [u])
  gradcheck(() => squeeze(u, 1), [u])
})

test('gather: torch.gather values along each axis; repeated indices add their gradients', () => {
  const x = x23()
  assert.equal(
    gather(
      x,
      1,
      tensor([
        [2, 0],
        [1, 1],
      ]),
    ).toArray(),
    [
      [3, 1],
      [5, 5],
    ],
  )
  assert.equal(gather(x, 0, tensor([[1, 0, 1]])).toArray(), [[4, 2, 6]])
  const u = tensor(
    [
      [1, 2, 3],
      [4, 5, 6],
    ],
    { requiresGrad: true },
  )
  sum(
    gather(
      u,
      1,
      tensor([
        [2, 2, 2],
        [0, 1, 0],
      ]),
    ),
  ).backward()
  assert.equal(u.grad!.toArray(), [
    [0, 0, 3],
    [2, 1, 0],
  ])
  manualSeed(35)
  const v = uniform([3, 4, 2], 1, true)
  const idx = tensor(
    Float32Array.from({ length: 3 * 5 * 2 }, (_, i) => (i * 7) % 4),
    [3, 5, 2],
  )
  gradcheck(() => gather(v, 1, idx), [v])
  gradcheck(
    () =>
      gather(
        v,
        -1,
        tensor(
          Float32Array.from({ length: 12 }, (_, i) => i % 2),
          [3, 4, 1],
        ),
      ),
    [v],
  )
})

test('errors: reshape sizes, bad dims, axes, index ranges and concat/stack/split mismatches name the op and shapes', () => {
  const x = x23()
  assert.throws(() => reshape(x, [4, 2]), /^reshape: cannot reshape \(2,3\) \(6 elements\) to \(4,2\) \(8 elements\)/)
  assert.throws(() => reshape(x, [4, -1]), /^reshape: cannot infer -1 in \(4,-1\) for 6 elements \(2,3\)/)
  assert.throws(() => reshape(x, [-1, -1]), /^reshape: only one dim may be -1/)
  assert.throws(() => reshape(x, [-2, -3]), /^reshape: invalid shape \(-2,-3\): dims must be non-negative integers/)
  assert.throws(() => reshape(x, [1.5, 4]), /^reshape: invalid shape \(1\.5,4\)/)
  assert.throws(() => zeros([2.5]), /^full: invalid shape \(2\.5\)/)
  assert.throws(() => full([2, -1], 0), /^full: invalid shape \(2,-1\)/)
  assert.throws(() => rand([-1]), /^rand: invalid shape \(-1\)/)
  assert.throws(() => new Tensor(new Float32Array(0), [0, -0.5]), /^Tensor: invalid shape/)
  assert.throws(() => transpose(x, 0, 2), /^transpose: axis 2 is out of range for a tensor with 2 dims/)
  assert.throws(() => permute(x, [0]), /^permute: got 1 dims \[0\] for a tensor with 2 dims \(2,3\)/)
  assert.throws(() => permute(x, [1, 1]), /^permute: \[1, 1\] is not a permutation of 0\.\.1/)
  assert.throws(() => slice(x, 2), /^slice: axis 2 is out of range/)
  assert.throws(() => slice(x, 1, 0.5), /^slice: start 0\.5 and end undefined must be integers/)
  assert.throws(() => squeeze(x, 0), /^squeeze: axis 0 of \(2,3\) has size 2, expected 1/)
  assert.throws(() => unsqueeze(x, 3), /^unsqueeze: axis 3 is out of range/)
  assert.throws(() => expand(x, [4, 3]), /^expand: shapes \(2,3\) and \(4,3\) cannot be broadcast/)
  assert.throws(() => expand(x, [3]), /^expand: cannot expand \(2,3\) to \(3\)/)
  assert.throws(() => concat([x, zeros([2, 4])]), /^concat: shapes \(2,3\), \(2,4\) differ outside axis 0/)
  assert.throws(() => concat([x, zeros([3])], 1), /^concat: shapes \(2,3\), \(3\) differ outside axis 1/)
  assert.throws(() => concat([]), /^concat: needs at least one tensor/)
  assert.throws(() => concat([x], 2), /^concat: axis 2 is out of range/)
  assert.throws(() => stack([x, zeros([3, 2])]), /^stack: shapes \(2,3\), \(3,2\) must all be equal/)
  assert.throws(() => stack([x, x], 3), /^stack: axis 3 is out of range/)
  assert.throws(() => split(x, [2, 2], 1), /^split: sizes \[2, 2\] add up to 4, but axis 1 of \(2,3\) has 3/)
  assert.throws(() => split(x, [4, -1], 1), /^split: sizes \[4, -1\] must be non-negative integers/)
  assert.throws(() => split(x, 0), /^split: chunk size must be a positive integer, got 0/)
  assert.throws(
    () => gather(x, 1, tensor([[0], [3]])),
    /^gather: index 3 at position 1 is out of range \[0, 3\) for axis 1 of x \(2,3\)/,
  )
  assert.throws(() => gather(x, 1, tensor([[0], [-1]])), /^gather: index -1 at position 1 is out of range/)
  assert.throws(
    () => gather(x, 1, tensor([[0], [1], [2]])),
    /^gather: index \(3,1\) must match x \(2,3\) on every axis but 1/,
  )
})

test.run()
