// Every op and its gradients against an independent engine: TensorFlow.js (cpu backend), on seeded random
// shapes with broadcasting. Both engines differentiate the same probe-weighted sum Σ probe ⊙ f(inputs).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import * as tf from '@tensorflow/tfjs' // the union package: it registers the gradients tfjs-core alone lacks
import '@tensorflow/tfjs-backend-cpu'
import { Tensor, tensor } from '../src/tensor'
import { manualSeed, random, randomInt } from '../src/random'
import * as F from '../ops'
import { assertClose } from './helpers'

tf.env().set('PROD', true) // silences the "install tfjs-node" banner
await tf.setBackend('cpu')

type Case = {
  shapes: number[][]
  tenny: (...xs: Tensor[]) => Tensor
  tf: (...xs: tf.Tensor[]) => tf.Tensor
  positive?: boolean // inputs drawn from [0.5, 2) instead of [-2, 2)
}

/** 1 to maxDims dims, each 1..4. */
function randShape(minDims = 1, maxDims = 3): number[] {
  return Array.from({ length: randomInt(minDims, maxDims + 1) }, () => randomInt(1, 5))
}

/** A shape that broadcasts against `shape`: some leading dims dropped, some dims set to 1. */
function partner(shape: number[]): number[] {
  return shape.slice(randomInt(0, shape.length + 1)).map((d) => (random() < 0.4 ? 1 : d))
}

/** Run one case in both engines and compare the output and every input's gradient. */
function crossCheck(name: string, c: Case, tol = { atol: 1e-4, rtol: 1e-3 }): void {
  const datas = c.shapes.map((s) =>
    Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () =>
      c.positive ? 0.5 + 1.5 * random() : 4 * random() - 2,
    ),
  )
  const ours = datas.map((d, i) => tensor(d.slice(), c.shapes[i], { requiresGrad: true }))
  const y = c.tenny(...ours)
  const probe = Float32Array.from({ length: y.size }, () => random() - 0.5)
  y.backward(probe)
  const what = `${name} ${c.shapes.map((s) => `(${s})`).join(' ')}`
  tf.tidy(() => {
    const theirs = datas.map((d, i) => tf.tensor(d, c.shapes[i]))
    const yTf = c.tf(...theirs)
    assert.equal(y.shape, yTf.shape, `${what}: output shape`)
    assertClose(y.data, yTf.dataSync(), { ...tol, what: `${what}: values` })
    const p = tf.tensor(probe, yTf.shape)
    const grads = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(c.tf(...xs), p)))(theirs)
    grads.forEach((g, i) =>
      assertClose(ours[i].grad!.data, g.dataSync(), { ...tol, what: `${what}: gradient of input ${i}` }),
    )
  })
}

const TRIALS = 3

test('elementwise ops match tfjs in values and gradients, binary ops on broadcast shapes', () => {
  manualSeed(60)
  const binary: [string, (a: Tensor, b: Tensor) => Tensor, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
    ['add', F.add, tf.add],
    ['sub', F.sub, tf.sub],
    ['mul', F.mul, tf.mul],
    ['div', F.div, tf.div],
  ]
  for (let trial = 0; trial < TRIALS; trial++) {
    const s = randShape(),
      p = partner(s)
    for (const [name, ours, theirs] of binary) {
      crossCheck(name, { shapes: [s, p], tenny: ours, tf: theirs, positive: name === 'div' })
      crossCheck(name, { shapes: [p, s], tenny: ours, tf: theirs, positive: name === 'div' })
    }
    crossCheck('pow (tensor exponent)', { shapes: [s, p], tenny: F.pow, tf: tf.pow, positive: true })
  }
  const unary: [string, (x: Tensor) => Tensor, (x: tf.Tensor) => tf.Tensor, boolean?][] = [
    ['neg', F.neg, tf.neg],
    ['exp', F.exp, tf.exp],
    ['log', F.log, tf.log, true],
    ['sqrt', F.sqrt, tf.sqrt, true],
    ['abs', F.abs, tf.abs],
    ['tanh', F.tanh, tf.tanh],
    ['sigmoid', F.sigmoid, tf.sigmoid],
    ['relu', F.relu, tf.relu],
    ['pow 3', (x) => F.pow(x, 3), (x) => tf.pow(x, 3)],
    ['pow -0.5', (x) => F.pow(x, -0.5), (x) => tf.pow(x, -0.5), true],
    ['clamp', (x) => F.clamp(x, -0.7, 1.1), (x) => tf.clipByValue(x, -0.7, 1.1)],
    ['silu', F.silu, (x) => tf.mul(x, tf.sigmoid(x))],
    [
      'gelu',
      F.gelu,
      (x) =>
        tf.mul(
          tf.mul(x, 0.5),
          tf.add(1, tf.tanh(tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI)))),
        ),
    ],
    [
      'scalar add/mul/sub/div',
      (x) => F.div(F.sub(3, F.mul(F.add(x, 2), -1.5)), 4),
      (x) => tf.div(tf.sub(3, tf.mul(tf.add(x, 2), -1.5)), 4),
    ],
  ]
  for (let trial = 0; trial < TRIALS; trial++) {
    const s = randShape()
    for (const [name, ours, theirs, positive] of unary)
      crossCheck(name, { shapes: [s], tenny: ours, tf: theirs, positive })
  }
  const cond = [1, 0, 0, 1, 1, 0]
  crossCheck('where', {
    shapes: [
      [2, 3],
      [2, 3],
    ],
    tenny: (a, b) => F.where(tensor(cond, [2, 3]), a, b),
    tf: (a, b) => tf.where(tf.tensor(cond, [2, 3], 'bool'), a, b),
  })
})

test('reductions match tfjs over one axis, several and all, with and without keepDims', () => {
  manualSeed(61)
  const ops: [
    string,
    (x: Tensor, axis: number[] | undefined, keep: boolean) => Tensor,
    (x: tf.Tensor, axis: number[] | undefined, keep: boolean) => tf.Tensor,
  ][] = [
    ['sum', F.sum, (x, a, k) => tf.sum(x, a, k)],
    ['mean', F.mean, (x, a, k) => tf.mean(x, a, k)],
    ['max', F.max, (x, a, k) => tf.max(x, a, k)],
    ['min', F.min, (x, a, k) => tf.min(x, a, k)],
    ['logsumexp', F.logsumexp, (x, a, k) => tf.logSumExp(x, a, k)],
    [
      'variance (biased)',
      (x, a, k) => F.variance(x, a, k, { unbiased: false }),
      (x, a, k) => tf.moments(x, a, k).variance,
    ],
  ]
  for (let trial = 0; trial < TRIALS; trial++) {
    const s = randShape(2, 4)
    const one = randomInt(0, s.length),
      two = [0, s.length - 1]
    for (const axis of [[one], two, undefined])
      for (const keep of [false, true])
        for (const [name, ours, theirs] of ops) {
          crossCheck(`${name} axis ${JSON.stringify(axis)} keepDims ${keep}`, {
            shapes: [s],
            tenny: (x) => ours(x, axis, keep),
            tf: (x) => theirs(x, axis, keep),
          })
        }
  }
})

test('movement ops match tfjs: reshape, transpose/permute, slice, concat, stack, split, expand, gather, (un)squeeze', () => {
  manualSeed(62)
  for (let trial = 0; trial < TRIALS; trial++) {
    const s = [randomInt(2, 5), randomInt(1, 4), randomInt(2, 5)]
    const perm = [
      [2, 0, 1],
      [1, 0, 2],
      [0, 2, 1],
    ][trial]
    crossCheck('reshape', { shapes: [s], tenny: (x) => F.reshape(x, [-1, s[0]]), tf: (x) => tf.reshape(x, [-1, s[0]]) })
    crossCheck('permute', { shapes: [s], tenny: (x) => F.permute(x, perm), tf: (x) => tf.transpose(x, perm) })
    crossCheck('transpose', { shapes: [s], tenny: (x) => F.transpose(x), tf: (x) => tf.transpose(x, [0, 2, 1]) })
    crossCheck('slice', {
      shapes: [s],
      tenny: (x) => F.slice(x, 2, 1, s[2]),
      tf: (x) => tf.slice(x, [0, 0, 1], [-1, -1, s[2] - 1]),
    })
    const s2 = [...s]
    s2[1] = randomInt(1, 4)
    crossCheck('concat', { shapes: [s, s2], tenny: (a, b) => F.concat([a, b], 1), tf: (a, b) => tf.concat([a, b], 1) })
    crossCheck('stack', {
      shapes: [s, s],
      tenny: (a, b) => F.stack([a, b], trial),
      tf: (a, b) => tf.stack([a, b], trial),
    })
    // NOTE: pieces rejoin in order: tfjs 4.22 returns a wrong gradient for concat(split(x).reverse())
    crossCheck('split', {
      shapes: [s],
      tenny: (x) => {
        const [a, b] = F.split(x, [1, s[0] - 1])
        return F.concat([F.mul(a, 3), b])
      },
      tf: (x) => {
        const [a, b] = tf.split(x, [1, s[0] - 1])
        return tf.concat([tf.mul(a, 3), b])
      },
    })
    const small = [s[0], 1, s[2]],
      big = [2, ...s]
    crossCheck('expand', { shapes: [small], tenny: (x) => F.expand(x, big), tf: (x) => tf.broadcastTo(x, big) })
    crossCheck('unsqueeze/squeeze', {
      shapes: [small],
      tenny: (x) => F.unsqueeze(F.squeeze(x, 1), 0),
      tf: (x) => tf.expandDims(tf.squeeze(x, [1]), 0),
    })
    // torch.gather with one index row repeated is tf.gather (index_select) along that axis
    const ids = Array.from({ length: 5 }, () => randomInt(0, s[2]))
    const index = tensor(Array.from({ length: s[0] * s[1] }, () => ids).flat(), [s[0], s[1], 5])
    crossCheck('gather', { shapes: [s], tenny: (x) => F.gather(x, 2, index), tf: (x) => tf.gather(x, ids, 2) })
  }
})

test('matmul and linear match tfjs: 2-D, batched with broadcast batch dims, (B,T,C)@(C,N), 1-D', () => {
  manualSeed(63)
  // tfjs's BatchMatMul gradient does not un-broadcast batch dims, so its operands are broadcast explicitly
  const batchOf = (sa: number[], sb: number[]) => {
    const n = Math.max(sa.length, sb.length) - 2
    return Array.from({ length: n }, (_, i) => Math.max(sa[sa.length - 2 - n + i] ?? 1, sb[sb.length - 2 - n + i] ?? 1))
  }
  for (let trial = 0; trial < TRIALS; trial++) {
    const m = randomInt(1, 6),
      k = randomInt(1, 6),
      n = randomInt(1, 6),
      B = randomInt(1, 4)
    crossCheck('matmul 2-D', {
      shapes: [
        [m, k],
        [k, n],
      ],
      tenny: F.matmul,
      tf: (a, b) => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    })
    crossCheck('matmul (B,T,C)@(C,N)', {
      shapes: [
        [B, m, k],
        [k, n],
      ],
      tenny: F.matmul,
      tf: (a, b) => tf.matMul(a, tf.broadcastTo(b, [B, k, n])),
    })
    const sa = [2, 1, m, k],
      sb = [3, k, n]
    crossCheck('matmul batched broadcast', {
      shapes: [sa, sb],
      tenny: F.matmul,
      tf: (a, b) =>
        tf.matMul(tf.broadcastTo(a, [...batchOf(sa, sb), m, k]), tf.broadcastTo(b, [...batchOf(sa, sb), k, n])),
    })
    crossCheck('matmul 1-D @ 2-D', {
      shapes: [[k], [k, n]],
      tenny: F.matmul,
      tf: (a, b) => tf.squeeze(tf.matMul(tf.expandDims(a, 0), b as tf.Tensor2D), [0]),
    })
    crossCheck('matmul 1-D @ 1-D', {
      shapes: [[k], [k]],
      tenny: F.matmul,
      tf: (a, b) => tf.dot(a as tf.Tensor1D, b as tf.Tensor1D),
    })
    crossCheck('linear', {
      shapes: [[B, m, k], [n, k], [n]],
      tenny: F.linear,
      tf: (x, w, b) => tf.add(tf.matMul(x, tf.broadcastTo(tf.transpose(w), [B, k, n])), b),
    })
    crossCheck('linear (no bias)', {
      shapes: [
        [m, k],
        [n, k],
      ],
      tenny: (x, w) => F.linear(x, w),
      tf: (x, w) => tf.matMul(x, w, false, true),
    })
  }
})

test('nn functions match tfjs: softmax, logSoftmax, crossEntropy, mseLoss, layerNorm, embedding', () => {
  manualSeed(64)
  for (let trial = 0; trial < TRIALS; trial++) {
    const rows = randomInt(1, 5),
      C = randomInt(2, 7)
    crossCheck('softmax', { shapes: [[2, rows, C]], tenny: (x) => F.softmax(x), tf: (x) => tf.softmax(x) })
    crossCheck('logSoftmax', { shapes: [[2, rows, C]], tenny: (x) => F.logSoftmax(x), tf: (x) => tf.logSoftmax(x) })
    crossCheck('softmax axis 0', {
      shapes: [[C, rows]],
      tenny: (x) => F.softmax(x, 0),
      tf: (x) => tf.transpose(tf.softmax(tf.transpose(x))),
    })
    const targets = Array.from({ length: rows }, () => randomInt(0, C))
    const oneHot = () => tf.oneHot(tf.tensor1d(targets, 'int32'), C)
    const perRow = (x: tf.Tensor) => tf.losses.softmaxCrossEntropy(oneHot(), x, undefined, 0, tf.Reduction.NONE)
    crossCheck('crossEntropy none', {
      shapes: [[rows, C]],
      tenny: (x) => F.crossEntropy(x, tensor(targets), { reduction: 'none' }),
      tf: perRow,
    })
    crossCheck('crossEntropy mean', {
      shapes: [[rows, C]],
      tenny: (x) => F.crossEntropy(x, tensor(targets)),
      tf: (x) => tf.mean(perRow(x)),
    })
    crossCheck('crossEntropy sum', {
      shapes: [[rows, C]],
      tenny: (x) => F.crossEntropy(x, tensor(targets), { reduction: 'sum' }),
      tf: (x) => tf.sum(perRow(x)),
    })
    crossCheck('mseLoss', {
      shapes: [
        [rows, C],
        [rows, C],
      ],
      tenny: (a, b) => F.mseLoss(a, b),
      tf: (a, b) => tf.losses.meanSquaredError(b, a),
    })
    crossCheck('layerNorm', {
      shapes: [[2, rows, C], [C], [C]],
      tenny: (x, w, b) => F.layerNorm(x, w, b),
      tf: (x, w, b) => {
        const { mean, variance } = tf.moments(x, -1, true)
        return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), w), b)
      },
    })
    const ids = Array.from({ length: 6 }, () => randomInt(0, 4)) // repeats likely
    crossCheck('embedding', {
      shapes: [[4, C]],
      tenny: (w) => F.embedding(tensor(ids, [2, 3]), w),
      tf: (w) => tf.gather(w, tf.tensor2d(ids, [2, 3], 'int32')),
    })
  }
})

/** A seeded 0/1 mask of `shape` with at least one of each (so both branches of a select are exercised). */
function randMask(shape: number[]): number[] {
  const n = shape.reduce((a, b) => a * b, 1)
  const m = Array.from({ length: n }, () => (random() < 0.5 ? 1 : 0))
  if (n > 1) {
    m[0] = 1
    m[n - 1] = 0
  }
  return m
}

test('gelu (exact), maskedFill, unbiased variance, argmax and three-way broadcast where match tfjs', () => {
  manualSeed(65)
  // inputs scaled to [-5, 5) and a tight tolerance: there the tanh form is up to 4e-4 off the erf form, so this fails for it
  const erfGelu = (x: tf.Tensor) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))))
  for (let trial = 0; trial < TRIALS; trial++) {
    crossCheck(
      'gelu exact',
      {
        shapes: [randShape()],
        tenny: (x) => F.gelu(F.mul(x, 2.5), { approximate: 'none' }),
        tf: (x) => erfGelu(tf.mul(x, 2.5)),
      },
      { atol: 2e-5, rtol: 1e-4 },
    )
  }
  for (const [xs, ms] of [
    [
      [2, 3, 5],
      [3, 1],
    ],
    [
      [3, 1, 7],
      [1, 7],
    ],
    [
      [4, 6],
      [4, 1],
    ],
    [
      [2, 3, 4],
      [2, 3, 4],
    ],
  ]) {
    const mask = randMask(ms)
    crossCheck('maskedFill', {
      shapes: [xs],
      tenny: (x) => F.maskedFill(x, tensor(mask, ms), -3.25),
      tf: (x) => tf.where(tf.broadcastTo(tf.tensor(mask, ms, 'bool'), xs), tf.fill(xs, -3.25), x),
    })
  }
  // unbiased: the biased tf.moments variance times n/(n−1); every reduced axis has length ≥ 2
  const unbiased = (x: tf.Tensor, axis: number[] | undefined, keep: boolean) => {
    const n = (axis ?? x.shape.map((_, i) => i)).reduce((a, ax) => a * x.shape[ax], 1)
    return tf.mul(tf.moments(x, axis, keep).variance, n / (n - 1))
  }
  const s = [3, 5, 2]
  crossCheck('variance default (all, unbiased)', {
    shapes: [s],
    tenny: (x) => F.variance(x),
    tf: (x) => unbiased(x, undefined, false),
  })
  for (const axis of [[1], [0, 2], [2]])
    for (const keep of [false, true]) {
      crossCheck(`variance unbiased axis ${JSON.stringify(axis)} keepDims ${keep}`, {
        shapes: [s],
        tenny: (x) => F.variance(x, axis, keep),
        tf: (x) => unbiased(x, axis, keep),
      })
    }
  for (let trial = 0; trial < TRIALS; trial++) {
    const shape = randShape(2, 4)
    const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 4 * random() - 2)
    for (let axis = -shape.length; axis < shape.length; axis++)
      for (const keep of [false, true]) {
        const ours = F.argmax(tensor(data, shape), axis, keep)
        const theirs = tf.tidy(() => {
          const i = tf.argMax(tf.tensor(data, shape), axis)
          return keep ? tf.expandDims(i, axis < 0 ? axis + shape.length : axis) : i
        })
        const what = `argmax (${shape}) axis ${axis} keepDims ${keep}`
        assert.equal(ours.shape, theirs.shape, `${what}: shape`)
        assert.equal(Array.from(ours.data), Array.from(theirs.dataSync()), `${what}: indices`)
        theirs.dispose()
      }
  }
  // ties: both take the first maximum
  const tied = [1, 3, 3, 0, 2, 2, -1, 2, 5, 5, 5, 5]
  assert.equal(
    Array.from(F.argmax(tensor(tied, [3, 4]), 1).data),
    Array.from(tf.argMax(tf.tensor(tied, [3, 4]), 1).dataSync()),
    'argmax ties along axis 1',
  )
  assert.equal(Array.from(F.argmax(tensor(tied, [3, 4]), 1).data), [1, 0, 0], 'argmax ties: first index')
  // where: cond, a and b each broadcast; tfjs's Select gradient does not un-broadcast, so its operands are broadcast explicitly
  for (const [cs, as, bs] of [
    [[2, 1, 4], [3, 1], []],
    [
      [2, 1, 4],
      [3, 1],
      [1, 4],
    ],
    [
      [3, 1],
      [2, 1, 5],
      [1, 3, 5],
    ],
    [[5], [2, 3, 1], [3, 5]],
  ]) {
    const cond = randMask(cs)
    const n = Math.max(cs.length, as.length, bs.length)
    const full = Array.from({ length: n }, (_, i) => Math.max(...[cs, as, bs].map((t) => t[t.length - n + i] ?? 1)))
    crossCheck('where broadcast', {
      shapes: [as, bs],
      tenny: (a, b) => F.where(tensor(cond, cs), a, b),
      tf: (a, b) =>
        tf.where(tf.broadcastTo(tf.tensor(cond, cs, 'bool'), full), tf.broadcastTo(a, full), tf.broadcastTo(b, full)),
    })
  }
  crossCheck('where with a number', {
    shapes: [[3, 4]],
    tenny: (a) => F.where(tensor([1, 0, 1, 1], [4]), a, 0.75),
    tf: (a) => tf.where(tf.broadcastTo(tf.tensor([1, 0, 1, 1], [4], 'bool'), [3, 4]), a, tf.fill([3, 4], 0.75)),
  })
})

/**
 * Causal attention as tfjs ops: split heads, q·kᵀ/√hs, −1e9 added where key j > i + kvLength − Tq, softmax, ·v,
 * merge heads. Only the first kvLength rows of k and v take part.
 */
function tfCausalAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, nHead: number, kvLength = k.shape[1]!): tf.Tensor {
  const [B, Tq, C] = q.shape
  const hs = C / nHead
  const heads = (t: tf.Tensor, T: number) => tf.transpose(tf.reshape(t, [B, T, nHead, hs]), [0, 2, 1, 3]) // (B, nHead, T, hs)
  const first = (t: tf.Tensor) => tf.slice(t, [0, 0, 0], [-1, kvLength, -1])
  const blocked = Array.from({ length: Tq * kvLength }, (_, n) =>
    n % kvLength > Math.floor(n / kvLength) + kvLength - Tq ? -1e9 : 0,
  )
  const att = tf.div(tf.matMul(heads(q, Tq), heads(first(k), kvLength), false, true), Math.sqrt(hs)) // (B, nHead, Tq, kvLength)
  const y = tf.matMul(tf.softmax(tf.add(att, tf.tensor(blocked, [Tq, kvLength]))), heads(first(v), kvLength)) // (B, nHead, Tq, hs)
  return tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B, Tq, C])
}

test('causalAttention matches a tfjs composition in values and q, k, v gradients, with and without a KV-cache window', () => {
  manualSeed(66)
  // [B, Tq, C, nHead]: several heads, one head, one query, odd head size
  for (const [B, T, C, nHead] of [
    [2, 5, 6, 3],
    [1, 7, 5, 1],
    [3, 1, 4, 2],
    [2, 6, 9, 3],
  ]) {
    const shapes = [
      [B, T, C],
      [B, T, C],
      [B, T, C],
    ]
    crossCheck(`causalAttention nHead ${nHead}`, {
      shapes,
      tenny: (q, k, v) => F.causalAttention(q, k, v, nHead),
      tf: (q, k, v) => tfCausalAttention(q, k, v, nHead),
    })
    crossCheck(`attentionComposite nHead ${nHead}`, {
      shapes,
      tenny: (q, k, v) => F.attentionComposite(q, k, v, nHead),
      tf: (q, k, v) => tfCausalAttention(q, k, v, nHead),
    })
  }
  // KV cache: k, v preallocated to `rows`, first kvLength used; rows past kvLength must get zero gradient
  for (const [B, Tq, rows, kvLength, C, nHead] of [
    [2, 2, 7, 5, 6, 2],
    [1, 3, 4, 3, 4, 4],
    [2, 1, 6, 6, 6, 3],
  ]) {
    crossCheck(`causalAttention Tq ${Tq} kvLength ${kvLength} of ${rows}`, {
      shapes: [
        [B, Tq, C],
        [B, rows, C],
        [B, rows, C],
      ],
      tenny: (q, k, v) => F.causalAttention(q, k, v, nHead, kvLength),
      tf: (q, k, v) => tfCausalAttention(q, k, v, nHead, kvLength),
    })
  }
})

test.run()
