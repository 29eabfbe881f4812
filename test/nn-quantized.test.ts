import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Tensor } from '../src/tensor'
import { manualSeed, rngState } from '../src/random'
import { K } from '../src/kernels'
import { setBackend } from '../src/backends'
import { useThreadSpawner } from '../src/backends/threads/threads'
import { nodeThreads } from '../src/backends/threads/threads-node'
import { packBits, unpackBits, unpackCodes, qmatmulRef, NF4_LEVELS, type QuantizeOptions } from '../src/kernels/quant'
import { toTensor } from '../src/formats/safetensors'
import { saveSafetensors, loadSafetensors } from '../src/formats/safetensors-node'
import { Module } from '../nn/module'
import { Linear } from '../nn/linear'
import { QuantizedLinear, quantize } from '../nn/quantized'
import { buffers, loadBuffers } from '../nn/files/checkpoint'
import { sum, mul } from '../ops'
import { assertClose, gradcheck, normal, uniform } from './helpers'
import { Toy } from './fixtures'

const MODES: [string, QuantizeOptions][] = [
  ['affine 4-bit', { mode: 'affine', bits: 4, groupSize: 32 }],
  ['affine 8-bit', { mode: 'affine', bits: 8, groupSize: 64 }],
  ['affine 2-bit', { mode: 'affine', bits: 2, groupSize: 32 }],
  ['int8', { mode: 'int8' }],
  ['nf4', { mode: 'nf4', groupSize: 32 }],
]

function gaussianLinear(inF: number, outF: number, std = 0.02): Linear {
  const l = new Linear(inF, outF)
  l.weight = normal([outF, inF], std, true)
  return l
}

test('packBits: eight 4-bit codes fill one word, first code in the lowest bits', () => {
  const words = packBits([1, 2, 3, 4, 5, 6, 7, 8], 4)
  assert.equal(Array.from(words), [0x87654321])
  assert.equal(Array.from(packBits([0xff, 0x01, 0x80, 0x7f], 8)), [0x7f8001ff])
  assert.equal(Array.from(unpackBits(words, 4, 8)), [1, 2, 3, 4, 5, 6, 7, 8])
  const codes = Array.from({ length: 37 }, (_, i) => (i * 7) % 4)
  assert.equal(Array.from(unpackBits(packBits(codes, 2), 2, 37)), codes)
})

test('quantize: hand-checkable affine and int8 groups', () => {
  // one group of 8 values 0..7 at 4 bits: bias 0, scale 7/15, codes round(v·15/7)
  const w = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7])
  const q = K.quantize(w, 1, 8, { mode: 'affine', bits: 4, groupSize: 8 })
  assert.ok(q.mode === 'affine')
  assert.equal(q.biases[0], 0)
  assertClose([q.scales[0]], [7 / 15], { atol: 1e-7 })
  assert.equal(Array.from(unpackCodes(q)), [0, 2, 4, 6, 9, 11, 13, 15])
  const i8 = K.quantize(Float32Array.from([-2, 1, 0.5, 0]), 1, 4, { mode: 'int8' })
  assert.equal(Array.from(unpackCodes(i8)), [-127, 64, 32, 0])
  // a constant group decodes exactly
  const c = K.quantize(new Float32Array(8).fill(0.3), 1, 8, { mode: 'affine', bits: 4, groupSize: 8 })
  assert.equal(Array.from(K.dequantize(c)), Array.from(new Float32Array(8).fill(0.3)))
})

test('NF4 levels are the QLoRA normal quantiles: Φ⁻¹ of evenly spaced probabilities, scaled to [−1, 1]', () => {
  const erf = (x: number) => {
    // Abramowitz–Stegun 7.1.26, |error| < 1.5e-7
    const t = 1 / (1 + 0.3275911 * Math.abs(x))
    const y =
      1 -
      ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x)
    return x >= 0 ? y : -y
  }
  const ppf = (p: number) => {
    // bisection on Φ(x) = (1 + erf(x/√2)) / 2
    let lo = -10,
      hi = 10
    for (let i = 0; i < 100; i++) {
      const mid = (lo + hi) / 2
      if ((1 + erf(mid / Math.SQRT2)) / 2 < p) lo = mid
      else hi = mid
    }
    return (lo + hi) / 2
  }
  const offset = 0.9677083
  const pos = Array.from({ length: 8 }, (_, i) => ppf(offset + (0.5 - offset) * (i / 8))) // 8 of linspace(offset, .5, 9)
  const neg = Array.from({ length: 7 }, (_, i) => -ppf(offset + (0.5 - offset) * (i / 7))) // 7 of linspace(offset, .5, 8)
  const levels = [...pos, 0, ...neg].sort((a, b) => a - b)
  const top = Math.max(...levels)
  assertClose(
    Array.from(NF4_LEVELS),
    levels.map((v) => v / top),
    { atol: 2e-6, what: 'NF4 levels' },
  )
})

test('quantize: per-mode error bounds on Gaussian weights (per element, and relative Frobenius)', () => {
  manualSeed(1)
  // relative Frobenius error bounds for N(0, σ²) weights (256 in-features); measured 0.079, 0.0053, 0.40, 0.0069, 0.087
  const relBound: Record<string, number> = {
    'affine 4-bit': 0.09,
    'affine 8-bit': 0.007,
    'affine 2-bit': 0.45,
    int8: 0.009,
    nf4: 0.1,
  }
  for (const [name, opts] of MODES) {
    const lin = gaussianLinear(256, 64)
    const ql = QuantizedLinear.fromLinear(lin, opts)
    const err = ql.quantizationError(lin)
    assert.ok(err.relFrobenius < relBound[name], `${name}: relative error ${err.relFrobenius} ≥ ${relBound[name]}`)
    // per element: within half a step of its group (affine, int8) or half the widest NF4 gap times absmax
    const p = ql.packed,
      w = lin.weight.data,
      wq = K.dequantize(p)
    for (let i = 0; i < w.length; i++) {
      const bound =
        p.mode === 'int8'
          ? p.scales[Math.floor(i / p.cols)] / 2
          : p.mode === 'affine'
            ? p.scales[Math.floor(i / p.groupSize)] / 2
            : p.scales[Math.floor(i / p.groupSize)] * 0.152
      if (Math.abs(w[i] - wq[i]) > bound * (1 + 1e-5) + 1e-9)
        assert.unreachable(`${name}: element ${i} off by ${Math.abs(w[i] - wq[i])} > bound ${bound}`)
    }
  }
})

test('qmatmul and qmatmulT agree with dequantize + matmulRef on awkward sizes', () => {
  manualSeed(2)
  for (const [name, opts] of MODES) {
    for (const [m, k, n] of [
      [1, 64, 3],
      [7, 96, 13],
      [9, 256, 70],
    ]) {
      const w = normal([n, k]).data
      const q = K.quantize(w, n, k, opts.mode === 'affine' || opts.mode === 'nf4' ? { ...opts, groupSize: 32 } : opts)
      const x = uniform([m, k]).data,
        dy = uniform([m, n]).data
      assertClose(K.qmatmul(x, q, m), qmatmulRef(x, q, m), { atol: 1e-4, what: `${name} qmatmul ${m}x${k}x${n}` })
      assertClose(K.qmatmulT(dy, q, m), qmatmulRef(dy, q, m, { transposed: true }), {
        atol: 1e-4,
        what: `${name} qmatmulT ${m}x${k}x${n}`,
      })
    }
  }
})

test('qmatmul and qmatmulT on a weight of several tiles (out 1100) equal dequantize + matmulRef to 1e-5 relative', () => {
  manualSeed(12)
  // 64K-float tiles: 504 rows at in=130, 480 at in=136, so 1100 rows are 2 full tiles and a ragged third
  const cases: [string, QuantizeOptions, number][] = [
    ['affine 4-bit', { mode: 'affine', bits: 4, groupSize: 8 }, 136], // affine groups need in % 8 = 0: 130 cannot be
    ['affine 8-bit', { mode: 'affine', bits: 8, groupSize: 68 }, 136],
    ['int8', { mode: 'int8' }, 130],
    ['nf4', { mode: 'nf4', groupSize: 26 }, 130],
  ]
  useThreadSpawner(nodeThreads)
  for (const backend of ['cpu', 'parallel', 'wasm'] as const) {
    // the tiles' products go through the backend's matmul: the CPU's, every core's, SIMD's
    setBackend(backend)
    try {
      // 1100 rows: several tiles; 70: one, whose product a backend returns as the result itself
      for (const [[name, opts, k], n] of cases.flatMap(
        (c) =>
          [
            [c, 1100],
            [c, 70],
          ] as const,
      )) {
        const q = K.quantize(normal([n, k]).data, n, k, opts)
        for (const m of [3, 37]) {
          // below matmulNT's 4-row unroll, and not a multiple of it
          const x = uniform([m, k]).data,
            dy = uniform([m, n]).data,
            what = `${backend} ${name} ${m}x${k}x${n}`
          const y = qmatmulRef(x, q, m),
            dx = qmatmulRef(dy, q, m, { transposed: true })
          // 1e-5 relative, and for sums that cancel to near 0, 1e-6 of the largest output (float32 per-tile partial sums)
          const tol = (ref: Float32Array) => ({
            rtol: 1e-5,
            atol: 1e-6 * ref.reduce((a, v) => Math.max(a, Math.abs(v)), 0),
          })
          assertClose(K.qmatmul(x, q, m), y, { ...tol(y), what: `qmatmul ${what}` })
          assertClose(K.qmatmulT(dy, q, m), dx, { ...tol(dx), what: `qmatmulT ${what}` })
        }
      }
    } finally {
      setBackend('cpu')
    }
  }
})

test('QuantizedLinear: forward equals its dequantized Linear; gradcheck of x; codes and bias get no gradient', () => {
  manualSeed(3)
  for (const [name, opts] of MODES) {
    const ql = QuantizedLinear.fromLinear(gaussianLinear(64, 5, 0.3), opts)
    const ref = ql.dequantize()
    const x = uniform([2, 3, 64], 1, true)
    const y = ql.forward(x)
    assert.equal(y.shape, [2, 3, 5])
    assertClose(y.data, ref.forward(x).data, { atol: 1e-5, what: name })
    gradcheck(() => ql.forward(x), [x])
    assert.equal(ql.parameters().length, 1) // just the (frozen) bias
    assert.equal(ql.trainableParameters(), [])
    sum(mul(ql.forward(x), ql.forward(x))).backward()
    assert.is(ql.bias!.grad, null)
  }
})

test('QuantizedLinear: 4-bit affine storage is at most 1/6 of float32 from group size 64 up', () => {
  manualSeed(4)
  const lin = gaussianLinear(512, 256)
  const floatBytes = (lin.weight.size + lin.bias!.size) * 4
  for (const groupSize of [64, 128]) {
    const ql = QuantizedLinear.fromLinear(lin, { mode: 'affine', bits: 4, groupSize })
    assert.ok(ql.nbytes <= floatBytes / 6, `group ${groupSize}: ${ql.nbytes} bytes > ${floatBytes / 6}`)
  }
  const nf4 = QuantizedLinear.fromLinear(lin, { mode: 'nf4', groupSize: 64 })
  assert.ok(nf4.nbytes <= floatBytes / 6, `nf4: ${nf4.nbytes}`)
  const i8 = QuantizedLinear.fromLinear(lin, { mode: 'int8' })
  assert.ok(i8.nbytes <= floatBytes / 3.9, `int8: ${i8.nbytes}`)
})

class TwoLayer extends Module {
  a = new Linear(64, 32)
  b = new Linear(32, 8)
  c = new Linear(24, 4) // 24 in-features: no groups of 32 or 64
}

test('quantize(model): swaps Linear layers in place, honours filter, skips what does not fit', () => {
  manualSeed(5)
  const m = new TwoLayer()
  const { paths, skipped } = quantize(m, { mode: 'affine', bits: 4, groupSize: 32 })
  assert.equal(paths, ['a', 'b'])
  assert.equal(skipped, ['c'])
  assert.instance(m.a, QuantizedLinear)
  assert.instance(m.c, Linear)
  const m2 = new TwoLayer()
  assert.equal(quantize(m2, { mode: 'int8', filter: (path) => path !== 'a' }).paths, ['b', 'c'])
  assert.instance(m2.a, Linear)
})

test('QuantizedLinear: buffers survive a safetensors round trip bitwise, and a wrong mode is rejected', () => {
  manualSeed(6)
  const dir = mkdtempSync(join(tmpdir(), 'tenny-q-'))
  try {
    for (const [name, opts] of MODES) {
      const m = new TwoLayer()
      quantize(m, { ...opts, groupSize: 32 })
      const file = join(dir, 'q.safetensors')
      saveSafetensors(file, { ...m.stateDict(), ...buffers(m) })
      const fresh = new TwoLayer() // different random weights
      quantize(fresh, { ...opts, groupSize: 32 })
      const { tensors } = loadSafetensors(file)
      const params = new Set(Object.keys(fresh.stateDict()))
      fresh.loadStateDict(
        Object.fromEntries(
          Object.entries(tensors)
            .filter(([k]) => params.has(k))
            .map(([k, v]) => [k, toTensor(v, k)]),
        ),
      )
      loadBuffers(fresh, Object.fromEntries(Object.entries(tensors).filter(([k]) => !params.has(k))))
      const x = uniform([3, 64])
      assert.equal(
        Array.from(fresh.b.forward(fresh.a.forward(x)).data),
        Array.from(m.b.forward(m.a.forward(x)).data),
        name,
      )
    }
    const m8 = new TwoLayer()
    quantize(m8, { mode: 'affine', bits: 8, groupSize: 32 })
    const m4 = new TwoLayer()
    quantize(m4, { mode: 'affine', bits: 4, groupSize: 32 })
    const before = Array.from(buffers(m4)['a.codes'].data)
    assert.throws(() => loadBuffers(m4, buffers(m8)), /buffer 'codes' is U32 \(32,16\), expected U32 \(32,8\)/)
    assert.equal(Array.from(buffers(m4)['a.codes'].data), before) // nothing changed
    assert.throws(
      () => loadBuffers(m4, { ...buffers(m4), 'z.codes': buffers(m4)['a.codes'] }),
      /unexpected buffer\(s\) z.codes/,
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('Linear.fromWeights: holds copies of the given weight and bias, draws nothing from the stream, and checks shapes', () => {
  manualSeed(9)
  const w = new Tensor(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]),
    b = Float32Array.from([10, 20])
  const stream = rngState()
  const layer = Linear.fromWeights(w, b)
  assert.equal(rngState(), stream, 'no draws')
  assert.equal([layer.inFeatures, layer.outFeatures, layer.weight.shape], [3, 2, [2, 3]])
  assert.equal(Array.from(layer.forward(new Tensor(Float32Array.from([1, 0, -1]), [1, 3])).data), [8, 18]) // 1 − 3 + 10, 4 − 6 + 20
  w.data[0] = 99
  assert.is(layer.weight.data[0], 1, "a copy, not the caller's array")
  assert.ok(layer.weight.requiresGrad && layer.bias!.requiresGrad)
  const flat = Linear.fromWeights(Float32Array.from([1, 2, 3, 4, 5, 6]), null, { shape: [3, 2], requiresGrad: false })
  assert.equal([flat.inFeatures, flat.outFeatures, flat.bias, flat.weight.requiresGrad], [2, 3, null, false])
  assert.throws(
    () => Linear.fromWeights(new Float32Array(6)),
    /Linear.fromWeights: a flat Float32Array weight \(6 values\) needs \{ shape: \[out, in\] \}/,
  )
  assert.throws(
    () => Linear.fromWeights(new Float32Array(6), null, { shape: [4, 2] }),
    /weight has 6 values, shape \(4,2\) needs 8/,
  )
  assert.throws(
    () => Linear.fromWeights(new Tensor(new Float32Array(6), [6])),
    /weight must be \(out, in\), got shape \(6\)/,
  )
  assert.throws(() => Linear.fromWeights(w, null, { shape: [3, 2] }), /got shape \(2,3\) with \{ shape: \(3,2\) \}/)
  assert.throws(
    () => Linear.fromWeights(w, new Float32Array(3)),
    /bias must be \(2\) for a \(2,3\) weight, got 3 values/,
  )
})

test('quantize: bad settings and inputs give errors naming them', () => {
  const lin = new Linear(48, 4)
  assert.throws(
    () => QuantizedLinear.fromLinear(lin, { mode: 'affine', bits: 3 }),
    /affine bits must be 2, 4 or 8, got 3/,
  )
  assert.throws(() => QuantizedLinear.fromLinear(lin, { groupSize: 32 }), /48 in-features is not a multiple of 32/)
  assert.throws(
    () => QuantizedLinear.fromLinear(lin, { mode: 'nf4', groupSize: 5 }),
    /groupSize must be a positive multiple of 2/,
  )
  const ql = QuantizedLinear.fromLinear(lin, { groupSize: 16 })
  assert.throws(
    () => ql.forward(new Tensor(new Float32Array(6), [2, 3])),
    /quantizedLinear: input \(2,3\) does not end in 48/,
  )
  assert.throws(() => ql.quantizationError(new Linear(4, 48)), /does not match this layer's \(4,48\)/)
})

test('quantize(model): a groupSize of 0, NaN or 1.5 (or an unknown mode) is refused, not a model left unquantized', () => {
  for (const groupSize of [0, NaN, 1.5, -8, null]) {
    const m = new Toy()
    assert.throws(
      () => quantize(m, { groupSize: groupSize as number }),
      /^quantize: groupSize must be a positive integer, got (0|NaN|1\.5|-8|null)$/,
    )
    assert.ok(m.blocks[0].qProj instanceof Linear, `groupSize ${groupSize}: nothing changed`)
  }
  assert.throws(() => quantize(new Toy(), { mode: 'int4' as 'int8' }), /^quantize: unknown mode "int4"/)
  assert.is(quantize(new Toy(), { mode: 'int8', groupSize: 0 }).paths.length, 10, 'int8 has no groups to size')
})

test.run()
