import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Tensor, noGrad } from '../src/tensor'
import { manualSeed } from '../src/random'
import { causalAttention, attentionComposite } from '../ops/attention'
import { slice } from '../ops/movement'
import { CausalSelfAttention, KVCache } from '../nn/attention'
import { Linear } from '../nn/linear'
import { attentionCausal, attentionCausalRef } from '../src/kernels/attention'
import { gradcheck, assertClose, uniform } from './helpers'

test('causalAttention: one query attends only to itself, so y = v', () => {
  const q = new Tensor(Float32Array.from([1, 2]), [1, 1, 2])
  const v = new Tensor(Float32Array.from([5, -7]), [1, 1, 2])
  assert.equal(Array.from(causalAttention(q, q, v, 1).data), [5, -7])
})

test('causalAttention: two positions, values checkable by hand', () => {
  // head size 1, scale 1: query 1 sees keys 0 and 1 with scores 0·… = q1·k0 = 1·0, q1·k1 = 1·ln3 → weights 1/4, 3/4
  const q = new Tensor(Float32Array.from([0, 1]), [1, 2, 1])
  const k = new Tensor(Float32Array.from([0, Math.log(3)]), [1, 2, 1])
  const v = new Tensor(Float32Array.from([4, 8]), [1, 2, 1])
  assertClose(causalAttention(q, k, v, 1).data, [4, 0.25 * 4 + 0.75 * 8], { atol: 1e-6 })
})

test('attentionCausal kernel: the 4-row blocked loops equal the reference on awkward sizes and cache offsets', () => {
  manualSeed(7)
  for (const [B, Tq, Tk, kvRows, H, hs] of [
    [1, 1, 1, 1, 1, 1],
    [2, 5, 5, 5, 3, 2],
    [1, 7, 7, 9, 2, 3],
    [2, 3, 10, 12, 1, 5],
    [1, 1, 6, 8, 2, 4],
  ]) {
    const C = H * hs
    const q = uniform([B * Tq * C]).data,
      k = uniform([B * kvRows * C]).data,
      v = uniform([B * kvRows * C]).data
    const fast = attentionCausal(q, k, v, B, Tq, Tk, kvRows, H, hs, 0.5)
    const ref = attentionCausalRef(q, k, v, B, Tq, Tk, kvRows, H, hs, 0.5)
    const what = `B ${B} Tq ${Tq} Tk ${Tk} rows ${kvRows} H ${H} hs ${hs}`
    assertClose(fast.y, ref.y, { atol: 1e-6, what })
    assertClose(fast.probs, ref.probs, { atol: 1e-7, what })
  }
})

test('causalAttention: forward and gradients equal the composite (split heads, masked softmax, merge)', () => {
  manualSeed(1)
  const [B, T, C] = [2, 5, 6]
  const q = uniform([B, T, C], 1, true),
    k = uniform([B, T, C], 1, true),
    v = uniform([B, T, C], 1, true)
  const probe = uniform([B, T, C])
  const grads = (f: () => Tensor) => {
    for (const t of [q, k, v]) t.grad = null
    const y = f()
    y.backward(probe)
    return { y: y.data, dq: q.grad!.data, dk: k.grad!.data, dv: v.grad!.data }
  }
  const fused = grads(() => causalAttention(q, k, v, 3))
  const ref = grads(() => attentionComposite(q, k, v, 3))
  for (const key of ['y', 'dq', 'dk', 'dv'] as const)
    assertClose(fused[key], ref[key], { atol: 1e-6, rtol: 1e-5, what: key })
})

test('causalAttention: gradients of q, k and v match finite differences', () => {
  manualSeed(2)
  const q = uniform([2, 4, 4], 1, true),
    k = uniform([2, 4, 4], 1, true),
    v = uniform([2, 4, 4], 1, true)
  gradcheck(() => causalAttention(q, k, v, 2), [q, k, v])
})

test('causalAttention: with a cache offset, queries see every earlier key (gradcheck and composite)', () => {
  manualSeed(3)
  // 2 new queries after 3 cached positions, in a buffer of 6 rows of which 5 are used
  const q = uniform([1, 2, 4], 1, true),
    k = uniform([1, 6, 4], 1, true),
    v = uniform([1, 6, 4], 1, true)
  gradcheck(() => causalAttention(q, k, v, 2, 5), [q, k, v])
  const qFull = uniform([1, 5, 4])
  qFull.data.set(q.data, 3 * 4)
  const full = attentionComposite(qFull, slice(k, 1, 0, 5), slice(v, 1, 0, 5), 2)
  assertClose(causalAttention(q, k, v, 2, 5).data, full.data.subarray(3 * 4), { atol: 1e-6 })
})

test('causalAttention: bad shapes and head counts name the problem', () => {
  const x = uniform([1, 3, 4])
  assert.throws(() => causalAttention(x, x, x, 3), /4 channels do not split into 3 heads/)
  assert.throws(() => causalAttention(x, uniform([1, 3, 5]), x, 1), /expected q \(B, Tq, C\)/)
  assert.throws(() => causalAttention(x, x, x, 1, 2), /kvLength 2 must be in \[Tq = 3, 3\]/)
})

test('CausalSelfAttention: changing a later position never changes earlier outputs', () => {
  manualSeed(4)
  const attn = new CausalSelfAttention({ nEmbd: 8, nHead: 2 })
  const x = uniform([1, 6, 8])
  const before = attn.forward(x).data.slice()
  for (let j = 4 * 8; j < 6 * 8; j++) x.data[j] += 1 // perturb positions 4 and 5
  const after = attn.forward(x).data
  assert.equal(Array.from(after.subarray(0, 4 * 8)), Array.from(before.subarray(0, 4 * 8)))
  assert.not.equal(Array.from(after.subarray(4 * 8)), Array.from(before.subarray(4 * 8)))
})

test('CausalSelfAttention: gradients of the input and all four projections match finite differences', () => {
  manualSeed(5)
  const attn = new CausalSelfAttention({ nEmbd: 4, nHead: 2 })
  const x = uniform([2, 3, 4], 1, true)
  gradcheck(() => attn.forward(x), [x, ...attn.parameters()])
  assert.equal(
    Array.from(attn.namedParameters(), ([n]) => n),
    [
      'qProj.weight',
      'qProj.bias',
      'kProj.weight',
      'kProj.bias',
      'vProj.weight',
      'vProj.bias',
      'outProj.weight',
      'outProj.bias',
    ],
  )
  assert.ok(attn.qProj instanceof Linear)
})

test('CausalSelfAttention: feeding positions one at a time through a KV cache equals the full pass', () => {
  manualSeed(6)
  const attn = new CausalSelfAttention({ nEmbd: 8, nHead: 2 })
  const x = uniform([2, 5, 8])
  noGrad(() => {
    const full = attn.forward(x)
    const cache = new KVCache(2, 7, 8)
    const first = attn.forward(slice(x, 1, 0, 3), cache) // positions 0..2 at once
    const rest = [3, 4].map((t) => attn.forward(slice(x, 1, t, t + 1), cache))
    for (let b = 0; b < 2; b++) {
      assertClose(first.data.subarray(b * 24, b * 24 + 24), full.data.subarray(b * 40, b * 40 + 24), { atol: 1e-6 })
      for (const [n, r] of rest.entries())
        assertClose(r.data.subarray(b * 8, b * 8 + 8), full.data.subarray(b * 40 + (3 + n) * 8, b * 40 + (4 + n) * 8), {
          atol: 1e-6,
        })
    }
    assert.is(cache.length, 5)
  })
  assert.throws(() => attn.forward(uniform([2, 1, 8], 1, true), new KVCache(2, 4, 8)), /KV cache is for inference/)
})

test.run()
