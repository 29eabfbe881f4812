// nn functions: softmax, logSoftmax, crossEntropy, mseLoss, layerNorm, embedding, dropout. Values by hand,
// gradcheck, each fused op against the composite its header names, and the errors bad inputs raise.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Tensor, tensor, zeros, ones } from '../src/tensor'
import { manualSeed } from '../src/random'
import {
  softmax,
  logSoftmax,
  crossEntropy,
  mseLoss,
  layerNorm,
  embedding,
  dropout,
  add,
  sub,
  mul,
  div,
  neg,
  exp,
  sqrt,
  sum,
  mean,
  max,
  variance,
  logsumexp,
  gather,
  reshape,
} from '../ops'
import { gradcheck, assertClose, uniform, matchesComposite } from './helpers'

const vals = (t: Tensor) => Array.from(t.data)

test('softmax and logSoftmax: by hand, rows sum to 1, along a non-last axis, stable for large logits', () => {
  assertClose(vals(softmax(tensor([0, Math.log(3)]))), [0.25, 0.75])
  assertClose(vals(logSoftmax(tensor([0, Math.log(3)]))), [Math.log(0.25), Math.log(0.75)])
  assertClose(
    vals(
      softmax(
        tensor([
          [0, 0],
          [Math.log(3), 0],
        ]),
        0,
      ),
    ),
    [0.25, 0.5, 0.75, 0.5],
  )
  assertClose(vals(softmax(tensor([1000, 1000]))), [0.5, 0.5])
  assertClose(vals(logSoftmax(tensor([1000, 0]))), [0, -1000])
  manualSeed(50)
  const s = softmax(uniform([2, 3, 4], 3), 1)
  assertClose(vals(sum(s, 1)), new Array(8).fill(1), { atol: 1e-6 })
})

test('softmax and logSoftmax: gradients match finite differences along the last and a non-last axis', () => {
  manualSeed(51)
  const x = uniform([2, 3, 4], 2, true)
  for (const axis of [-1, 0, 1, 2]) {
    gradcheck(() => softmax(x, axis), [x])
    gradcheck(() => logSoftmax(x, axis), [x])
  }
})

test('softmax and logSoftmax: the fused ops equal their composites in values and gradients', () => {
  manualSeed(52)
  const x = uniform([3, 4, 5], 3, true)
  for (const axis of [-1, 1, 0]) {
    const m = () => max(x, axis, true).detach()
    matchesComposite(
      () => softmax(x, axis),
      () => div(exp(sub(x, m())), sum(exp(sub(x, m())), axis, true)),
      [x],
    )
    matchesComposite(
      () => logSoftmax(x, axis),
      () => sub(x, logsumexp(x, axis, true)),
      [x],
    )
  }
})

test('crossEntropy: by hand for mean, sum and none; ignoreIndex rows drop out of the mean', () => {
  const logits = tensor([
    [0, Math.log(3)],
    [0, 0],
    [5, 5],
  ])
  const t = tensor([1, 0, -100])
  const l0 = -Math.log(0.75),
    l1 = Math.LN2
  assertClose(vals(crossEntropy(logits, t, { reduction: 'none' })), [l0, l1, 0])
  assertClose([crossEntropy(logits, t).item()], [(l0 + l1) / 2]) // mean over the 2 counted rows
  assertClose([crossEntropy(logits, t, { reduction: 'sum' }).item()], [l0 + l1])
  assertClose([crossEntropy(logits, Int32Array.from([1, 0, 7]), { ignoreIndex: 7 }).item()], [(l0 + l1) / 2])
  assert.equal(crossEntropy(zeros([2, 3, 4]), zeros([2, 3]), { reduction: 'none' }).shape, [2, 3])
  const x = tensor(
    [
      [0, Math.log(3)],
      [0, 0],
    ],
    { requiresGrad: true },
  )
  crossEntropy(x, tensor([1, 0])).backward()
  assertClose(vals(x.grad!), [0.25 / 2, -0.25 / 2, -0.5 / 2, 0.5 / 2]) // (softmax − onehot) / rows
})

test('crossEntropy: gradients match finite differences for each reduction, with ignored rows and 3-D logits', () => {
  manualSeed(53)
  const x = uniform([5, 4], 2, true)
  const t = tensor([3, -100, 0, 0, 2])
  for (const reduction of ['mean', 'sum', 'none'] as const) gradcheck(() => crossEntropy(x, t, { reduction }), [x])
  const x3 = uniform([2, 3, 5], 2, true)
  gradcheck(
    () =>
      crossEntropy(
        x3,
        tensor([
          [0, 4, 1],
          [2, 2, 3],
        ]),
      ),
    [x3],
  )
})

test('crossEntropy: the fused op equals neg(gather(logSoftmax(x), -1, t)) reduced the same way', () => {
  manualSeed(54)
  const x = uniform([6, 5], 3, true)
  const ids = [4, 0, -100, 2, 2, 1]
  const safe = tensor(
    ids.map((v) => (v < 0 ? 0 : v)),
    [6, 1],
  ) // gather needs a valid id even where ignored
  const keep = tensor(ids.map((v) => (v < 0 ? 0 : 1)))
  const perRow = () => mul(neg(reshape(gather(logSoftmax(x), -1, safe), [6])), keep)
  const t = tensor(ids)
  matchesComposite(() => crossEntropy(x, t, { reduction: 'none' }), perRow, [x])
  matchesComposite(
    () => crossEntropy(x, t, { reduction: 'sum' }),
    () => sum(perRow()),
    [x],
  )
  matchesComposite(
    () => crossEntropy(x, t),
    () => div(sum(perRow()), 5),
    [x],
  )
})

test('mseLoss: by hand for each reduction, gradients on both inputs including broadcast', () => {
  const a = tensor([1, 2, 3]),
    b = tensor([1, 0, 0])
  assertClose([mseLoss(a, b).item()], [13 / 3])
  assert.is(mseLoss(a, b, { reduction: 'sum' }).item(), 13)
  assert.equal(vals(mseLoss(a, b, { reduction: 'none' })), [0, 4, 9])
  manualSeed(55)
  const p = uniform([3, 4], 1, true),
    q = uniform([3, 4], 1, true),
    r = uniform([4], 1, true)
  for (const reduction of ['mean', 'sum', 'none'] as const) gradcheck(() => mseLoss(p, q, { reduction }), [p, q])
  gradcheck(() => mseLoss(p, r), [p, r])
})

test('layerNorm: rows normalised to mean 0 and variance 1 before w and b; gradients of x, w and b', () => {
  const y = layerNorm(
    tensor([
      [1, 2, 3],
      [2, 2, 2],
    ]),
    ones([3]),
    zeros([3]),
    0,
  )
  const s = Math.sqrt(1.5)
  assertClose(vals(y).slice(0, 3), [-s, 0, s], { atol: 1e-6 })
  assert.equal(vals(layerNorm(tensor([[2, 2, 2]]), tensor([1, 1, 1]), tensor([7, 8, 9]))), [7, 8, 9]) // a constant row is all bias
  manualSeed(56)
  const x = uniform([2, 3, 6], 2, true),
    w = uniform([6], 1, true),
    b = uniform([6], 1, true)
  gradcheck(() => layerNorm(x, w, b), [x, w, b])
})

test('layerNorm: the fused op equals its composite in values and gradients', () => {
  manualSeed(57)
  const x = uniform([4, 7], 2, true),
    w = uniform([7], 1, true),
    b = uniform([7], 1, true)
  const eps = 1e-5
  const composite = () =>
    add(mul(div(sub(x, mean(x, -1, true)), sqrt(add(variance(x, -1, true, { unbiased: false }), eps))), w), b)
  matchesComposite(() => layerNorm(x, w, b, eps), composite, [x, w, b], { atol: 2e-5, rtol: 1e-4 })
})

test('embedding: picks rows by id, repeated ids add their gradients, ids may be a tensor or Int32Array', () => {
  const w = tensor(
    [
      [0, 1],
      [10, 11],
      [20, 21],
    ],
    { requiresGrad: true },
  )
  assert.equal(
    embedding(
      tensor([
        [2, 0],
        [2, 2],
      ]),
      w,
    ).toArray(),
    [
      [
        [20, 21],
        [0, 1],
      ],
      [
        [20, 21],
        [20, 21],
      ],
    ],
  )
  const y = embedding(Int32Array.from([1, 1, 0]), w)
  assert.equal(y.shape, [3, 2])
  y.backward(tensor([1, 2, 3, 4, 5, 6], [3, 2]))
  assert.equal(w.grad!.toArray(), [
    [5, 6],
    [4, 6],
    [0, 0],
  ])
  manualSeed(58)
  const v = uniform([4, 3], 1, true)
  gradcheck(() => embedding(tensor([3, 1, 3, 3, 0]), v), [v])
})

test('dropout: with a fixed seed the gradient equals the mask; kept values scale by 1/(1−p); eval is identity', () => {
  manualSeed(59)
  const x = uniform([4, 50], 1, true)
  manualSeed(7)
  const y = dropout(x, 0.25)
  y.backward(ones([4, 50]))
  let zeroed = 0
  for (let i = 0; i < x.size; i++) {
    const m = x.grad!.data[i]
    assert.ok(m === 0 || Math.abs(m - 1 / 0.75) < 1e-6, `mask value ${m}`)
    assertClose([y.data[i]], [x.data[i] * m], { what: `y[${i}]` })
    if (m === 0) zeroed++
  }
  assert.ok(zeroed > 20 && zeroed < 80, `about a quarter of 200 dropped, got ${zeroed}`)
  manualSeed(7)
  assert.equal(vals(dropout(x, 0.25)), vals(y)) // the same seed draws the same mask
  gradcheck(() => {
    manualSeed(8)
    return dropout(x, 0.5)
  }, [x])
  assert.is(dropout(x, 0.5, false), x)
  assert.is(dropout(x, 0), x)
})

test('dropout: the drop rate is p over many draws, and consecutive calls draw different masks', () => {
  manualSeed(3)
  const x = ones([100_000])
  for (const p of [0.03, 0.5, 0.9]) {
    const dropped = dropout(x, p).data.filter((v) => v === 0).length / x.size
    assert.ok(Math.abs(dropped - p) < 0.01, `p = ${p}: dropped ${dropped}`)
  }
  const a = dropout(x, 0.5).data,
    b = dropout(x, 0.5).data
  assert.ok(
    a.some((v, i) => v !== b[i]),
    'two calls, two masks',
  )
})

test('errors: class ids, token ids, layerNorm sizes and dropout p name the op and the shapes or values', () => {
  const logits = zeros([2, 3])
  assert.throws(
    () => crossEntropy(logits, tensor([0, 3])),
    /^crossEntropy: target 3 at row 1 is not a class id in \[0, 3\) for logits \(2,3\)/,
  )
  assert.throws(
    () => crossEntropy(logits, tensor([-1, 0])),
    /^crossEntropy: target -1 at row 0 is not a class id in \[0, 3\)/,
  )
  assert.throws(() => crossEntropy(logits, tensor([0.5, 1])), /^crossEntropy: target 0\.5 at row 0/)
  assert.throws(() => crossEntropy(logits, tensor([0])), /^crossEntropy: logits \(2,3\) need targets \(2\), got \(1\)/)
  assert.throws(
    () => crossEntropy(zeros([2, 3, 4]), zeros([3, 2])),
    /^crossEntropy: logits \(2,3,4\) need targets \(2,3\), got \(3,2\)/,
  ) // same count, wrong shape
  assert.throws(
    () => layerNorm(zeros([2, 3]), zeros([3, 1]), zeros([3])),
    /^layerNorm: weight \(3,1\) and bias \(3\) must both be \(3\)/,
  )
  assert.throws(() => layerNorm(tensor(1), zeros([1]), zeros([1])), /^layerNorm: input must have a feature axis/)
  assert.throws(() => crossEntropy(logits, tensor([-100, -100])), /^crossEntropy: every target equals ignoreIndex/)
  assert.throws(() => crossEntropy(tensor(1), tensor([0])), /^crossEntropy: logits must have a class axis, got \(\)/)
  assert.throws(
    () => embedding(tensor([0, 7]), zeros([5, 3])),
    /^embedding: index 7 at position 1 is out of range \[0, 5\) for weight \(5,3\)/,
  )
  assert.throws(
    () => embedding(Int32Array.from([-1]), zeros([5, 3])),
    /^embedding: index -1 at position 0 is out of range/,
  )
  assert.throws(() => embedding(tensor([0]), zeros([5])), /^embedding: weight must be \(vocab, dim\), got \(5\)/)
  assert.throws(
    () => layerNorm(zeros([2, 3]), zeros([2]), zeros([3])),
    /^layerNorm: weight \(2\) and bias \(3\) must both be \(3\) for input \(2,3\)/,
  )
  assert.throws(() => mseLoss(zeros([2, 3]), zeros([3, 2])), /^mseLoss: shapes \(2,3\) and \(3,2\) cannot be broadcast/)
  assert.throws(() => softmax(zeros([2, 3]), 2), /^softmax: axis 2 is out of range for a tensor with 2 dims/)
  assert.throws(() => logSoftmax(zeros([2, 3]), -3), /^logSoftmax: axis -3 is out of range/)
  assert.throws(() => dropout(zeros([2]), 1), /^dropout: p must be in \[0, 1\), got 1/)
  assert.throws(() => dropout(zeros([2]), -0.1), /^dropout: p must be in \[0, 1\), got -0\.1/)
})

test('losses check their inputs: NaN or +Infinity logits and NaN in mseLoss are errors naming the op, −Infinity away from the target is fine', () => {
  const t = tensor([0, 2])
  assert.throws(
    () =>
      crossEntropy(
        tensor([
          [1, 2, 3],
          [1, NaN, 0],
        ]),
        t,
      ),
    /^crossEntropy: row 1 of logits \(2,3\) gives loss NaN: its logits hold NaN or \+Infinity/,
  )
  assert.throws(
    () =>
      crossEntropy(
        tensor([
          [Infinity, 2, 3],
          [1, 1, 0],
        ]),
        t,
        { reduction: 'none' },
      ),
    /crossEntropy: row 0 of logits \(2,3\) gives loss NaN/,
  )
  assert.throws(
    () =>
      crossEntropy(
        tensor([
          [-Infinity, 2, 3],
          [1, 1, 0],
        ]),
        t,
      ),
    /crossEntropy: row 0 of logits \(2,3\) gives loss Infinity: .*−Infinity at the target.*lower learning rate/,
  )
  const masked = crossEntropy(
    tensor([
      [1, -Infinity, 3],
      [1, 1, -Infinity],
    ]),
    tensor([0, 1]),
  ) // −∞ as a mask: allowed
  assert.ok(Number.isFinite(masked.item()), `masked logits give a finite loss, got ${masked.item()}`)
  assert.throws(
    () => mseLoss(tensor([1, 2, NaN]), tensor([1, 2, 3])),
    /^mseLoss: a \(3\) holds NaN at index 2, so the loss would be NaN/,
  )
  assert.throws(
    () => mseLoss(tensor([1, 2]), tensor([Infinity, 2])),
    /mseLoss: b \(2\) holds Infinity at index 0, so the loss would be infinite/,
  )
})

test.run()
