// The Llama family's two fused ops, rmsNorm and rotary: values by hand, gradients by finite differences, and each
// against its composite (the executable spec) in values and gradients.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { tensor, Tensor } from '../src/tensor'
import { manualSeed } from '../src/random'
import { rmsNorm, rmsNormComposite } from '../ops/rmsnorm'
import { rotary, rotaryComposite, type RotaryTables } from '../ops/rotary'
import { sum, mul } from '../ops'
import { ropeFrequencies, ropeTables, type RopeScaling } from '../nn/llama'
import { assertClose, gradcheck, matchesComposite, uniform } from './helpers'

/** Tables for positions 0 … T − 1 of a head of width D with arbitrary angles. */
function tables(T: number, D: number): RotaryTables {
  const angles = uniform([T, D / 2], 3).data
  return { cos: angles.map(Math.cos), sin: angles.map(Math.sin), positions: T }
}

test('rmsNorm: a row divided by its root mean square, then scaled by w', () => {
  const y = rmsNorm(tensor([[3, 4]]), tensor([1, 2]), 0)
  const rms = Math.sqrt((9 + 16) / 2)
  assertClose(y.data, [3 / rms, (2 * 4) / rms])
  assertClose(rmsNorm(tensor([[0, 0]]), tensor([1, 1]), 1e-6).data, [0, 0]) // eps keeps a zero row finite
})

test('rmsNorm: gradients of x and w match finite differences', () => {
  manualSeed(1)
  const x = uniform([3, 5], 1, true),
    w = uniform([5], 1, true)
  gradcheck(() => rmsNorm(x, w, 1e-5), [x, w])
})

test('rmsNorm: the fused op equals its composite in values and gradients', () => {
  manualSeed(2)
  const x = uniform([2, 3, 16], 2, true),
    w = uniform([16], 1, true)
  matchesComposite(
    () => rmsNorm(x, w, 1e-5),
    () => rmsNormComposite(x, w, 1e-5),
    [x, w],
  )
})

test('rmsNorm: a frozen weight gets no gradient and x still does', () => {
  manualSeed(3)
  const x = uniform([4, 8], 1, true),
    w = uniform([8])
  sum(rmsNorm(x, w)).backward()
  assert.is(w.grad, null)
  assert.ok(x.grad && x.grad.data.some((g) => g !== 0))
})

test('rotary: a quarter turn maps (1, 0) to (0, 1), and rotating back gives the input', () => {
  const quarter: RotaryTables = { cos: Float32Array.of(0), sin: Float32Array.of(1), positions: 1 }
  assertClose(rotary(tensor([[[1, 0]]]), quarter, 1).data, [0, 1], { atol: 1e-7 })
  // the pairs are (i, i + D/2), not neighbours: with D = 4, elements 0 and 2 turn together
  const two: RotaryTables = { cos: Float32Array.of(0, 1), sin: Float32Array.of(1, 0), positions: 1 }
  assertClose(rotary(tensor([[[1, 5, 0, 7]]]), two, 1).data, [0, 5, 1, 7], { atol: 1e-7 })
})

test('rotary: lengths are kept (a rotation), and q·k depends only on the angle between positions', () => {
  manualSeed(4)
  const x = uniform([1, 3, 8], 1)
  const y = rotary(x, tables(3, 4), 2)
  const norm = (t: Tensor) => Math.sqrt(sum(mul(t, t)).item())
  assertClose([norm(y)], [norm(x)], { rtol: 1e-6 })
  // one vector at positions p and p + 1 against another at p + 1 and p + 2: the same dot product for any p
  const q = uniform([1, 1, 4], 1),
    k = uniform([1, 1, 4], 1)
  const at = (v: Tensor, pos: number) => {
    const th = [pos * 0.7, pos * 0.05]
    return rotary(v, { cos: Float32Array.from(th, Math.cos), sin: Float32Array.from(th, Math.sin), positions: 1 }, 1)
  }
  const dot = (a: Tensor, b: Tensor) => sum(mul(a, b)).item()
  assertClose([dot(at(q, 5), at(k, 8))], [dot(at(q, 0), at(k, 3))], { rtol: 1e-5 })
})

test('rotary: gradients match finite differences', () => {
  manualSeed(5)
  const x = uniform([2, 3, 12], 1, true)
  const t = tables(3, 6)
  gradcheck(() => rotary(x, t, 2), [x])
})

test('rotary: the fused op equals its composite in values and gradients', () => {
  manualSeed(6)
  const x = uniform([2, 5, 24], 1, true)
  const t = tables(5, 8)
  matchesComposite(
    () => rotary(x, t, 3),
    () => rotaryComposite(x, t, 3),
    [x],
  )
})

test('rotary frequencies: 1/θ^(2i/d), divided by factor (linear), or by band (llama3) as transformers computes them', () => {
  assertClose(ropeFrequencies(10000, 8, null), [1, 0.1, 0.01, 0.001], { rtol: 1e-6 })
  assertClose(ropeFrequencies(10000, 8, { type: 'linear', factor: 2 }), [0.5, 0.05, 0.005, 0.0005], { rtol: 1e-6 })
  // llama3 with a pretraining context of 64: wavelengths 2π/f = 6.3 (< 64/4: kept), 62.8 (between: blended with
  // smooth = (64/62.83 − 1)/(4 − 1) = 0.0061972, giving (1 − smooth)·0.1/8 + smooth·0.1), 628 and 6283 (> 64: f/8)
  const llama3: RopeScaling = {
    type: 'llama3',
    factor: 8,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositionEmbeddings: 64,
  }
  assertClose(ropeFrequencies(10000, 8, llama3), [1, 0.013042256, 0.00125, 0.000125], { rtol: 1e-6 })
  // the tables hold cos and sin of position · frequency, from position `start`
  const { cos, sin } = ropeTables(Float32Array.of(1, 0.1), 3, 2)
  assertClose(cos, [Math.cos(3), Math.cos(0.3), Math.cos(4), Math.cos(0.4)], { rtol: 1e-6 })
  assertClose(sin, [Math.sin(3), Math.sin(0.3), Math.sin(4), Math.sin(0.4)], { rtol: 1e-6 })
})

test('errors: rmsNorm and rotary name the op and the shapes', () => {
  assert.throws(() => rmsNorm(uniform([2, 3]), uniform([4])), /^rmsNorm: weight \(4\) must be \(3\)/)
  assert.throws(() => rotary(uniform([1, 2, 6]), tables(2, 6), 2), /^rotary: 6 channels do not split into 2 heads/)
  assert.throws(() => rotary(uniform([1, 3, 8]), tables(2, 8), 1), /^rotary: tables for 2 positions/)
  assert.throws(() => rotary(uniform([3, 8]), tables(3, 8), 1), /^rotary: x must be \(B, T, nHead·headDim\)/)
})

test.run()
