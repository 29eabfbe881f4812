// swiglu, the Llama MLP's fused silu(gate) ⊙ up: values by hand, gradients by finite differences, and against its
// composite (the executable spec) in values and gradients, on odd sizes.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { tensor } from '../src/tensor'
import { manualSeed } from '../src/random'
import { swiglu, swigluComposite } from '../ops/swiglu'
import { sum } from '../ops'
import { assertClose, gradcheck, matchesComposite, uniform } from './helpers'

test('swiglu: gate · σ(gate) · up, elementwise', () => {
  const y = swiglu(tensor([[0, 1, -2]]), tensor([[5, 2, 3]]))
  assertClose(y.data, [0, 2 / (1 + Math.exp(-1)), (-2 * 3) / (1 + Math.exp(2))])
})

test('swiglu: gradients of gate and up match finite differences', () => {
  manualSeed(1)
  const g = uniform([3, 7], 3, true),
    u = uniform([3, 7], 2, true)
  gradcheck(() => swiglu(g, u), [g, u])
})

test('swiglu: the fused op equals its composite in values and gradients', () => {
  manualSeed(2)
  const g = uniform([2, 5, 33], 4, true),
    u = uniform([2, 5, 33], 2, true)
  matchesComposite(
    () => swiglu(g, u),
    () => swigluComposite(g, u),
    [g, u],
  )
})

test('swiglu: an input that needs no gradient gets none, the other still does; shapes must agree', () => {
  manualSeed(3)
  const g = uniform([4, 8], 2, true),
    u = uniform([4, 8])
  sum(swiglu(g, u)).backward()
  assert.is(u.grad, null)
  assert.ok(g.grad && g.grad.data.some((v) => v !== 0))
  assert.throws(() => swiglu(uniform([2, 3]), uniform([3, 2])), /swiglu: gate \(2, ?3\) and up \(3, ?2\)/)
})

test.run()
