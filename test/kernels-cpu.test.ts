// The CPU kernels against their oracles: every fast matmul variant against matmulRef on awkward sizes,
// the fused row kernels against plain float64 loops, and the movement kernels on hand-checkable values.
// Each check loops over the kernel tables under test: the CPU's, the installed one if it differs, and the wasm
// backend's on one thread and on all (every size forced onto it) where WebAssembly SIMD and threads exist.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { K, cpu, type Kernels } from '../src/kernels'
import { matmulRef, matmulNN, matmulNT, matmulTN, matmulRowsNN, transpose2d } from '../src/kernels/matmul'
import { manualSeed, random } from '../src/random'
import { assertClose } from './helpers'
import { wasmKernels, wasmSupport } from '../src/backends/wasm'
import { startPool } from '../src/backends/threads/pool'
import { useThreadSpawner } from '../src/backends/threads/threads'
import { nodeThreads } from '../src/backends/threads/threads-node'
import { FunctionBody } from '../src/backends/wasm/emit'

FunctionBody.checks = true // every kernel generated in this process has its operand stack checked

const tables: [string, Kernels][] = [['cpu', cpu]]
if ((Object.keys(cpu) as (keyof Kernels)[]).some((name) => K[name] !== cpu[name])) tables.push(['installed K', K]) // overrides in use
useThreadSpawner(nodeThreads)
if (wasmSupport() === '') {
  // tiles of 2¹⁶ floats (the backend's are 2²²), so that inputs of a few MB go through several
  const tile = 1 << 16
  tables.push(['wasm 1 thread', { ...cpu, ...wasmKernels({ threads: false, everySize: true, tile }) }])
  if (startPool()?.failure === '')
    tables.push(['wasm all threads', { ...cpu, ...wasmKernels({ threads: true, everySize: true, tile }) }])
}
const SIZES = [1, 3, 7, 33, 130]

function rnd(n: number): Float32Array {
  return Float32Array.from({ length: n }, () => 2 * random() - 1)
}

/** Float32 accumulation over k terms in [-1, 1]: the dev machine measured 6e-6 at k = 128; allow a margin. */
const tolFor = (k: number) => ({ atol: 2e-6 * Math.max(k, 1), rtol: 1e-5 })

console.log('  tables:', tables.map(([name]) => name).join(', '))
test('matmul kernels: NN, NT, TN accumulate into C and match matmulRef on every size in {1,3,7,33,130}³', () => {
  manualSeed(1)
  for (const m of SIZES)
    for (const k of SIZES)
      for (const n of SIZES) {
        const a = rnd(m * k),
          b = rnd(k * n) // A (m, k), B (k, n)
        const want = matmulRef(a, b, m, k, n)
        const c0 = rnd(m * n) // the variants add into C
        const plusC = (c: Float32Array) => c.map((v, i) => v + c0[i])
        const what = `(${m},${k},${n})`
        const nn = c0.slice()
        matmulNN(a, b, nn, m, k, n)
        assertClose(nn, plusC(want), { ...tolFor(k), what: `NN ${what}` })
        const nt = c0.slice()
        matmulNT(a, transpose2d(b, k, n), nt, m, k, n)
        assertClose(nt, plusC(want), { ...tolFor(k), what: `NT ${what}` })
        const tn = c0.slice()
        matmulTN(transpose2d(a, m, k), b, tn, m, k, n)
        assertClose(tn, plusC(want), { ...tolFor(k), what: `TN ${what}` })
      }
})

test('matmulRowsNN (few rows of A·B, B read as given) accumulates into C and matches matmulRef, any m', () => {
  manualSeed(11)
  for (const m of [1, 2, 3, 5])
    for (const [k, n] of [
      [1, 1],
      [7, 33],
      [130, 3],
      [768, 131],
    ]) {
      const a = rnd(m * k),
        b = rnd(k * n),
        c0 = rnd(m * n)
      const want = matmulRef(a, b, m, k, n).map((v, i) => v + c0[i])
      const c = c0.slice()
      matmulRowsNN(a, b, c, m, k, n)
      assertClose(c, want, { ...tolFor(k), what: `rows NN (${m},${k},${n})` })
    }
})

test('matmul table entry: all four transpose flag combinations match matmulRef with the same flags', () => {
  manualSeed(2)
  const shapes = [
    [1, 1, 1],
    [3, 7, 1],
    [7, 1, 33],
    [33, 130, 7],
    [130, 33, 3],
    [5, 4, 130],
    [130, 130, 33],
  ]
  for (const [name, T] of tables)
    for (const [m, k, n] of shapes)
      for (const transA of [false, true])
        for (const transB of [false, true]) {
          const a = rnd(m * k),
            b = rnd(k * n)
          const got = T.matmul(a, b, m, k, n, { transA, transB })
          const want = matmulRef(a, b, m, k, n, { transA, transB })
          assertClose(got, want, {
            ...tolFor(k),
            what: `${name} matmul (${m},${k},${n}) transA=${transA} transB=${transB}`,
          })
        }
})

test('matmulRef with flags is the plain product of the transposed matrices', () => {
  const a = Float32Array.from([1, 2, 3, 4, 5, 6]) // (2, 3), or (3, 2) read as Aᵀ
  const b = Float32Array.from([1, 0, 0, 1, 1, 1]) // (3, 2), or (2, 3) read as Bᵀ
  assert.equal(Array.from(matmulRef(a, b, 2, 3, 2)), [4, 5, 10, 11])
  // Aᵀ with A stored (3, 2) = [[1,2],[3,4],[5,6]] → Aᵀ = [[1,3,5],[2,4,6]]; B (3, 2) as before
  assert.equal(Array.from(matmulRef(a, b, 2, 3, 2, { transA: true })), [6, 8, 8, 10])
  // A (2, 3) · Bᵀ with B stored (2, 3) = [[1,0,0],[1,1,1]]
  assert.equal(Array.from(matmulRef(a, b, 2, 3, 2, { transB: true })), [1, 6, 4, 15])
})

test('matmulBatched: each of the batch products matches matmulRef, for all flags', () => {
  manualSeed(3)
  for (const [name, T] of tables)
    for (const [batch, m, k, n] of [
      [1, 3, 7, 1],
      [3, 7, 33, 3],
      [4, 33, 3, 7],
      [2, 1, 130, 5],
    ])
      for (const transA of [false, true])
        for (const transB of [false, true]) {
          const a = rnd(batch * m * k),
            b = rnd(batch * k * n)
          const got = T.matmulBatched(a, b, batch, m, k, n, { transA, transB })
          for (let t = 0; t < batch; t++) {
            const want = matmulRef(
              a.subarray(t * m * k, (t + 1) * m * k),
              b.subarray(t * k * n, (t + 1) * k * n),
              m,
              k,
              n,
              { transA, transB },
            )
            assertClose(got.subarray(t * m * n, (t + 1) * m * n), want, {
              ...tolFor(k),
              what: `${name} batched #${t} (${batch},${m},${k},${n}) ${transA}/${transB}`,
            })
          }
        }
})

test('matmul: k = 0 gives zeros and m = 0 or n = 0 gives an empty result', () => {
  for (const [, T] of tables) {
    assert.equal(Array.from(T.matmul(new Float32Array(0), new Float32Array(0), 2, 0, 3)), [0, 0, 0, 0, 0, 0])
    assert.is(T.matmul(new Float32Array(0), new Float32Array(6), 0, 2, 3).length, 0)
  }
})

// ---- row kernels against plain float64 loops -----------------------------------------------------

function rowsOf(x: Float32Array, cols: number): number[][] {
  return Array.from({ length: x.length / cols }, (_, r) => Array.from(x.subarray(r * cols, (r + 1) * cols)))
}
const logSumExp = (row: number[]) => Math.log(row.reduce((s, v) => s + Math.exp(v), 0))

test('softmaxRows and its backward match exp(x)/Σexp(x) and the full Jacobian product', () => {
  manualSeed(4)
  for (const [name, T] of tables)
    for (const [rows, cols] of [
      [1, 1],
      [3, 7],
      [5, 33],
    ]) {
      const x = rnd(rows * cols).map((v) => 5 * v),
        dy = rnd(rows * cols)
      const y = T.softmaxRows(x, rows, cols)
      const want = rowsOf(x, cols).flatMap((row) => row.map((v) => Math.exp(v - logSumExp(row))))
      assertClose(y, want, { atol: 1e-6, what: `${name} softmax (${rows},${cols})` })
      // dx_j = Σ_i dy_i ∂y_i/∂x_j = Σ_i dy_i y_i (δ_ij − y_j)
      const dxWant = rowsOf(y, cols).flatMap((yr, r) =>
        yr.map((yj, j) => yr.reduce((s, yi, i) => s + dy[r * cols + i] * yi * ((i === j ? 1 : 0) - yj), 0)),
      )
      assertClose(T.softmaxRowsBackward(y, dy, rows, cols), dxWant, { atol: 1e-6, what: `${name} softmax backward` })
    }
})

test('softmaxRows stays finite for large logits (it subtracts the row max)', () => {
  for (const [, T] of tables) {
    const y = T.softmaxRows(Float32Array.from([1000, 1000, -1000]), 1, 3)
    assertClose(y, [0.5, 0.5, 0])
  }
})

test('logSoftmaxRows and its backward match x − logΣexp(x) and dy − softmax·Σdy', () => {
  manualSeed(5)
  for (const [name, T] of tables)
    for (const [rows, cols] of [
      [1, 1],
      [4, 9],
      [2, 65],
    ]) {
      const x = rnd(rows * cols).map((v) => 10 * v),
        dy = rnd(rows * cols)
      const y = T.logSoftmaxRows(x, rows, cols)
      const want = rowsOf(x, cols).flatMap((row) => row.map((v) => v - logSumExp(row)))
      assertClose(y, want, { atol: 1e-5, what: `${name} logSoftmax (${rows},${cols})` })
      const dxWant = rowsOf(x, cols).flatMap((row, r) => {
        const s = dy.subarray(r * cols, (r + 1) * cols).reduce((a, b) => a + b, 0)
        return row.map((v, j) => dy[r * cols + j] - Math.exp(v - logSumExp(row)) * s)
      })
      assertClose(T.logSoftmaxRowsBackward(y, dy, rows, cols), dxWant, {
        atol: 1e-5,
        what: `${name} logSoftmax backward`,
      })
    }
  assertClose(cpu.logSoftmaxRows(Float32Array.from([0, -200]), 1, 2), [0, -200]) // no log(0) = −∞
})

test('crossEntropyRows: loss = logΣexp(x) − x[t], ignored rows give 0 loss and 0 gradient', () => {
  manualSeed(6)
  const rows = 5,
    cols = 7,
    ignore = -100
  const x = rnd(rows * cols).map((v) => 4 * v)
  const t = Int32Array.from([0, 6, ignore, 3, 3])
  const dyRow = rnd(rows)
  for (const [name, T] of tables) {
    const { losses, probs } = T.crossEntropyRows(x, t, rows, cols, ignore)
    const want = rowsOf(x, cols).map((row, r) => (t[r] === ignore ? 0 : logSumExp(row) - row[t[r]]))
    assertClose(losses, want, { atol: 1e-5, what: `${name} crossEntropy losses` })
    assertClose(probs, T.softmaxRows(x, rows, cols), { what: `${name} crossEntropy probs` })
    const dxWant = rowsOf(x, cols).flatMap((row, r) =>
      row.map((v, j) => (t[r] === ignore ? 0 : dyRow[r] * (Math.exp(v - logSumExp(row)) - (j === t[r] ? 1 : 0)))),
    )
    assertClose(T.crossEntropyRowsBackward(probs, t, dyRow, rows, cols, ignore), dxWant, {
      atol: 1e-6,
      what: `${name} crossEntropy backward`,
    })
  }
  // a confident right answer keeps its tiny loss instead of rounding to 0 through p = 1
  const { losses } = cpu.crossEntropyRows(Float32Array.from([30, 0]), Int32Array.from([0]), 1, 2, ignore)
  assertClose(losses, [Math.log1p(Math.exp(-30))], { atol: 0, rtol: 0.05 }) // float64 log(1 + 9e-14) keeps ~2 digits
})

test('layerNormRows and its backward match mean/variance normalisation and a float64 finite difference', () => {
  manualSeed(7)
  const rows = 4,
    cols = 6,
    eps = 1e-5
  const x = rnd(rows * cols).map((v) => 3 * v + 1),
    w = rnd(cols),
    b = rnd(cols),
    dy = rnd(rows * cols)
  const ln = (xs: number[], ws: ArrayLike<number>, bs: ArrayLike<number>) =>
    xs.map((_, i) => {
      const r = Math.floor(i / cols),
        row = xs.slice(r * cols, (r + 1) * cols)
      const mu = row.reduce((s, v) => s + v, 0) / cols
      const v = row.reduce((s, u) => s + (u - mu) ** 2, 0) / cols
      return ((xs[i] - mu) / Math.sqrt(v + eps)) * ws[i % cols] + bs[i % cols]
    })
  for (const [name, T] of tables) {
    const { y, mean, rstd } = T.layerNormRows(x, w, b, rows, cols, eps)
    assertClose(y, ln(Array.from(x), w, b), { atol: 1e-5, what: `${name} layerNorm y` })
    assertClose(
      mean,
      rowsOf(x, cols).map((row) => row.reduce((s, v) => s + v, 0) / cols),
      { what: `${name} layerNorm mean` },
    )
    const { dx, dw, db } = T.layerNormRowsBackward(dy, x, w, mean, rstd, rows, cols)
    // loss = Σ dy ⊙ y, differentiated numerically in float64
    const loss = (xs: number[], ws: number[], bs: number[]) => ln(xs, ws, bs).reduce((s, v, i) => s + v * dy[i], 0)
    const numeric = (arr: number[], i: number, f: (a: number[]) => number) => {
      const up = arr.slice(),
        down = arr.slice()
      up[i] += 1e-6
      down[i] -= 1e-6
      return (f(up) - f(down)) / 2e-6
    }
    const X = Array.from(x),
      W = Array.from(w),
      B = Array.from(b)
    assertClose(
      dx,
      X.map((_, i) => numeric(X, i, (a) => loss(a, W, B))),
      { atol: 1e-4, what: `${name} layerNorm dx` },
    )
    assertClose(
      dw,
      W.map((_, i) => numeric(W, i, (a) => loss(X, a, B))),
      { atol: 1e-4, what: `${name} layerNorm dw` },
    )
    assertClose(
      db,
      B.map((_, i) => numeric(B, i, (a) => loss(X, W, a))),
      { atol: 1e-4, what: `${name} layerNorm db` },
    )
    const frozen = T.layerNormRowsBackward(dy, x, w, mean, rstd, rows, cols, false) // frozen w, b: dx alone
    assert.equal(frozen.dx, dx)
    assert.is(frozen.dw.length + frozen.db.length, 0)
  }
})

// ---- reductions and movement on hand-checkable values -----------------------------------------------

test('sumAxis and extremeAxis on a (2, 3, 2) array, by hand', () => {
  const a = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]) // (2, 3, 2)
  for (const [, T] of tables) {
    assert.equal(Array.from(T.sumAxis(a, 2, 3, 2)), [9, 12, 27, 30])
    assert.equal(Array.from(T.sumAxis(a, 1, 2, 6)), [8, 10, 12, 14, 16, 18])
    const mx = T.extremeAxis(Float32Array.from([3, 1, 4, 1, 5, 9, 2, 6]), 2, 4, 1, 1)
    assert.equal(
      [Array.from(mx.values), Array.from(mx.indices)],
      [
        [4, 9],
        [2, 1],
      ],
    )
    const mn = T.extremeAxis(Float32Array.from([3, 1, 4, 1, 5, 9, 2, 6]), 2, 4, 1, -1)
    assert.equal(
      [Array.from(mn.values), Array.from(mn.indices)],
      [
        [1, 2],
        [1, 2],
      ],
    ) // first of the tied 1s
    assert.equal(
      Array.from(T.extremeAxisBackward(Float32Array.from([10, 20]), Int32Array.from([2, 1]), 2, 4, 1)),
      [0, 0, 10, 0, 0, 20, 0, 0],
    )
    const withNaN = T.extremeAxis(Float32Array.from([1, NaN, 3]), 1, 3, 1, 1)
    assert.ok(Number.isNaN(withNaN.values[0]) && withNaN.indices[0] === 1)
  }
})

test('permute: a 2-D transpose and a (2, 3, 4) → (4, 2, 3) reorder, by hand and by index formula', () => {
  for (const [, T] of tables) {
    assert.equal(Array.from(T.permute(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3], [1, 0])), [1, 4, 2, 5, 3, 6])
    const a = Float32Array.from({ length: 24 }, (_, i) => i) // a[i][j][l] = 12i + 4j + l
    const out = T.permute(a, [2, 3, 4], [2, 0, 1]) // out[l][i][j] = a[i][j][l]
    for (let l = 0; l < 4; l++)
      for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) assert.is(out[l * 6 + i * 3 + j], 12 * i + 4 * j + l)
    assert.equal(Array.from(T.permute(Float32Array.from([7]), [], [])), [7])
  }
})

test('sliceAxis and placeAxisInPlace are inverse on the middle axis', () => {
  const a = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]) // (2, 3, 2)
  for (const [, T] of tables) {
    const part = T.sliceAxis(a, 2, 3, 2, 1, 3) // rows 1..2 of each block
    assert.equal(Array.from(part), [3, 4, 5, 6, 9, 10, 11, 12])
    const out = new Float32Array(12)
    T.placeAxisInPlace(out, part, 2, 3, 2, 1, 2)
    assert.equal(Array.from(out), [0, 0, 3, 4, 5, 6, 0, 0, 9, 10, 11, 12])
  }
})

test('gatherAxis picks along the axis and scatterAddAxis sends gradients back, repeats adding up', () => {
  const a = Float32Array.from([10, 11, 12, 20, 21, 22]) // (2, 3) seen as outer 2, n 3, inner 1
  const idx = Int32Array.from([2, 2, 0, 1]) // (2, 2)
  for (const [, T] of tables) {
    assert.equal(Array.from(T.gatherAxis(a, idx, 2, 3, 2, 1)), [12, 12, 20, 21])
    assert.equal(Array.from(T.scatterAddAxis(Float32Array.from([1, 2, 3, 4]), idx, 2, 3, 2, 1)), [0, 0, 3, 3, 4, 0])
    // along axis 0 of a (3, 2) matrix: outer 1, n 3, inner 2
    const b = Float32Array.from([1, 2, 3, 4, 5, 6])
    assert.equal(Array.from(T.gatherAxis(b, Int32Array.from([2, 0]), 1, 3, 1, 2)), [5, 2])
  }
})

test('gatherRows and scatterAddRows: embedding rows out, repeated ids accumulate in', () => {
  const w = Float32Array.from([0, 1, 10, 11, 20, 21]) // (3, 2)
  const ids = Int32Array.from([2, 0, 2])
  for (const [, T] of tables) {
    assert.equal(Array.from(T.gatherRows(w, ids, 2)), [20, 21, 0, 1, 20, 21])
    assert.equal(Array.from(T.scatterAddRows(Float32Array.from([1, 2, 3, 4, 5, 6]), ids, 3, 2)), [3, 4, 0, 0, 6, 8])
  }
})

test('elementwise kernels on hand-checkable values', () => {
  for (const [, T] of tables) {
    const a = Float32Array.from([-2, 0, 3]),
      b = Float32Array.from([4, 5, -6])
    assert.equal(Array.from(T.add(a, b)), [2, 5, -3])
    assert.equal(Array.from(T.sub(a, b)), [-6, -5, 9])
    assert.equal(Array.from(T.mul(a, b)), [-8, 0, -18])
    assert.equal(Array.from(T.div(a, b)), [-0.5, 0, -0.5])
    assert.equal(Array.from(T.affine(a, 2, 1)), [-3, 1, 7])
    assert.equal(Array.from(T.sign(a)), [-1, 0, 1])
    assert.equal(Array.from(T.relu(a)), [0, 0, 3])
    assert.equal(Array.from(T.clamp(a, -1, 1)), [-1, 0, 1])
    assert.equal(Array.from(T.where(Float32Array.from([1, 0, 1]), a, b)), [-2, 5, 3])
    assert.equal(Array.from(T.powScalar(a, 2)), [4, 0, 9])
    assert.is(T.sumAll(Float32Array.from([0.1, 0.2, 0.3])), Math.fround(0.1) + Math.fround(0.2) + Math.fround(0.3))
    // exact gelu x·Φ(x) at 1, −1 and 2 (Φ from tables); erf's approximation error stays below 2e-7
    assertClose(
      T.geluErf(Float32Array.from([1, -1, 2])),
      [0.8413447460685429, -0.15865525393145707, 1.9544997361036416],
      { atol: 3e-7 },
    )
    assertClose(T.gelu(Float32Array.from([1, -1])), [0.8411919906082768, -0.15880800939172324], { atol: 1e-7 })
  }
})

test("add: every table gives the TS loop's sums bit for bit on sizes {1,3,7,33,130} and 1024·130, infinities and NaN included", () => {
  manualSeed(12)
  for (const n of [...SIZES, 1024 * 130]) {
    const a = rnd(n),
      b = rnd(n)
    a[0] = Infinity
    b[n - 1] = NaN
    const want = Array.from(cpu.add(a, b))
    for (const [name, T] of tables) assert.equal(Array.from(T.add(a, b)), want, `${name} add, ${n} elements`)
  }
})

test("sumAxis: every table gives the TS loop's sums bit for bit, inner a multiple of 4 (the SIMD path) or not, n from {1,3,7,33,130} and 1024", () => {
  manualSeed(13)
  for (const [outer, inner] of [
    [1, 4],
    [1, 128],
    [3, 8],
    [2, 7],
    [1, 1],
    [7, 36],
  ])
    for (const n of [...SIZES, 1024]) {
      const a = rnd(outer * n * inner)
      const want = Array.from(cpu.sumAxis(a, outer, n, inner))
      for (const [name, T] of tables)
        assert.equal(Array.from(T.sumAxis(a, outer, n, inner)), want, `${name} sumAxis (${outer}, ${n}, ${inner})`)
    }
})

test('gelu and geluBackward: every table matches the TS loops on [-12, 12] and at the tails (float32 rounding)', () => {
  const x = Float32Array.from([
    ...Array.from({ length: 4001 }, (_, i) => -12 + (24 * i) / 4000),
    0,
    -0,
    1e-30,
    -1e-30,
    88,
    -88,
    100,
    -100,
    1e10,
    -1e10,
    3e38,
    -3e38,
    NaN,
  ])
  const dy = x.map((_, i) => Math.sin(i))
  for (const [name, T] of tables) {
    assertClose(T.gelu(x), cpu.gelu(x), { atol: 1e-7, rtol: 2e-6, what: `${name} gelu` })
    assertClose(T.geluBackward(x, dy), cpu.geluBackward(x, dy), {
      atol: 1e-7,
      rtol: 2e-6,
      what: `${name} geluBackward`,
    })
  }
})

test('swiglu and swigluBackward: every table matches the TS loops, on odd lengths, at the tails, one gradient or both', () => {
  const g = Float32Array.from([
    ...Array.from({ length: 4003 }, (_, i) => -20 + (40 * i) / 4002),
    ...[0, -0, 1e-30, 88, -88, 100, -100, 1e10, -1e10],
  ])
  const u = g.map((_, i) => 3 * Math.cos(i)),
    dh = g.map((_, i) => Math.sin(i))
  for (const [name, T] of tables) {
    const close = (what: string) => ({ atol: 1e-6, rtol: 2e-6, what: `${name} ${what}` })
    assertClose(T.swiglu(g, u), cpu.swiglu(g, u), close('swiglu'))
    const want = cpu.swigluBackward(g, u, dh, true, true)
    const both = T.swigluBackward(g, u, dh, true, true)
    assertClose(both.dg!, want.dg!, close('dg'))
    assertClose(both.du!, want.du!, close('du'))
    const onlyU = T.swigluBackward(g, u, dh, false, true)
    assert.is(onlyU.dg, null, `${name}: dg not wanted`)
    assertClose(onlyU.du!, want.du!, close('du alone'))
  }
})

test('attentionCausal and its backward: every table matches the TS kernels (odd T, a KV cache, hs not a multiple of 4)', () => {
  manualSeed(9)
  // (B, Tq, Tk, kvRows, H, hs): Tq < Tk is a cache holding earlier positions; kvRows > Tk its unused capacity
  // hs 16, 20, 32: the wasm kernels' weighted sums take 16 columns at a time, then the rest one vector at a time
  const shapes = [
    [1, 1, 1, 1, 1, 4],
    [2, 3, 3, 3, 2, 4],
    [1, 7, 7, 7, 3, 8],
    [2, 1, 7, 9, 2, 8],
    [1, 5, 33, 40, 2, 12],
    [3, 33, 33, 33, 1, 3],
    [2, 7, 7, 7, 2, 20],
    [1, 33, 33, 33, 2, 32],
    [1, 3, 130, 130, 1, 16],
  ]
  for (const [B, Tq, Tk, kvRows, H, hs] of shapes) {
    const C = H * hs,
      scale = 1 / Math.sqrt(hs)
    const q = rnd(B * Tq * C),
      k = rnd(B * kvRows * C),
      v = rnd(B * kvRows * C),
      dy = rnd(B * Tq * C)
    const want = cpu.attentionCausal(q, k, v, B, Tq, Tk, kvRows, H, hs, scale)
    const grads = cpu.attentionCausalBackward(dy, q, k, v, want.probs, B, Tq, Tk, kvRows, H, hs, scale)
    for (const [name, T] of tables) {
      const what = `${name} (${B}, ${Tq}, ${Tk}, ${kvRows}, ${H}, ${hs})`
      const got = T.attentionCausal(q, k, v, B, Tq, Tk, kvRows, H, hs, scale)
      assertClose(got.y, want.y, { atol: 2e-6, what: `${what} y` })
      assertClose(got.probs, want.probs, { atol: 1e-6, what: `${what} probs` })
      const g = T.attentionCausalBackward(dy, q, k, v, want.probs, B, Tq, Tk, kvRows, H, hs, scale)
      for (const key of ['dq', 'dk', 'dv'] as const)
        assertClose(g[key], grads[key], { atol: 4e-6, what: `${what} ${key}` })
    }
  }
})

test('softmaxRows and crossEntropyRows: every table matches the TS kernels on (37, 65) logits over [-30, 30], a target per row', () => {
  manualSeed(10)
  const [rows, cols] = [37, 65]
  const x = rnd(rows * cols).map((v) => 30 * v),
    t = Int32Array.from({ length: rows }, (_, r) => (r * 7) % cols)
  t[3] = -100 // an ignored row
  const want = cpu.crossEntropyRows(x, t, rows, cols, -100)
  for (const [name, T] of tables) {
    assertClose(T.softmaxRows(x, rows, cols), cpu.softmaxRows(x, rows, cols), {
      atol: 1e-7,
      rtol: 2e-6,
      what: `${name} softmaxRows`,
    })
    const got = T.crossEntropyRows(x, t, rows, cols, -100)
    assertClose(got.losses, want.losses, { atol: 2e-6, rtol: 2e-6, what: `${name} crossEntropyRows losses` })
    assertClose(got.probs, want.probs, { atol: 1e-7, rtol: 2e-6, what: `${name} crossEntropyRows probs` })
  }
})

test('layerNormRows and its backward: every table matches the TS kernels where cols is a multiple of 4 (the SIMD path)', () => {
  manualSeed(11)
  for (const [rows, cols] of [
    [1, 4],
    [3, 8],
    [37, 128],
  ]) {
    const x = rnd(rows * cols).map((v) => 3 * v + 1),
      w = rnd(cols),
      b = rnd(cols),
      dy = rnd(rows * cols)
    const want = cpu.layerNormRows(x, w, b, rows, cols, 1e-5)
    const grads = cpu.layerNormRowsBackward(dy, x, w, want.mean, want.rstd, rows, cols)
    for (const [name, T] of tables) {
      const what = `${name} (${rows}, ${cols})`
      const got = T.layerNormRows(x, w, b, rows, cols, 1e-5)
      for (const key of ['y', 'mean', 'rstd'] as const)
        assertClose(got[key], want[key], { atol: 2e-6, rtol: 2e-6, what: `${what} ${key}` })
      const g = T.layerNormRowsBackward(dy, x, w, want.mean, want.rstd, rows, cols)
      for (const key of ['dx', 'dw', 'db'] as const)
        assertClose(g[key], grads[key], { atol: 1e-5, rtol: 1e-5, what: `${what} ${key}` })
      const frozen = T.layerNormRowsBackward(dy, x, w, want.mean, want.rstd, rows, cols, false)
      assert.equal(Array.from(frozen.dx), Array.from(g.dx), `${what}: frozen dx`)
      assert.is(frozen.dw.length + frozen.db.length, 0)
    }
  }
})

test('inputs past one tile (2¹⁶ floats here) go through the wasm kernels tile by tile: every table matches the TS loops', () => {
  manualSeed(14)
  const n = 2.5 * 2 ** 16 + 3 // two and a half tiles, and a ragged end
  const a = rnd(n),
    b = rnd(n)
  const [rows, cols] = [40, 4099] // 4100 floats a padded row: 15 rows a tile, 3 tiles
  const x = rnd(rows * cols).map((v) => 20 * v),
    t = Int32Array.from({ length: rows }, (_, r) => (r * 13) % cols)
  const [lnRows, lnCols] = [300, 516] // 127 rows a tile
  const lx = rnd(lnRows * lnCols),
    w = rnd(lnCols),
    bias = rnd(lnCols),
    dy = rnd(lnRows * lnCols)
  const ln = cpu.layerNormRows(lx, w, bias, lnRows, lnCols, 1e-5)
  const lnGrads = cpu.layerNormRowsBackward(dy, lx, w, ln.mean, ln.rstd, lnRows, lnCols)
  for (const [name, T] of tables) {
    assertClose(T.add(a, b), cpu.add(a, b), { atol: 0, rtol: 0, what: `${name} add` })
    assertClose(T.gelu(a), cpu.gelu(a), { atol: 1e-7, rtol: 2e-6, what: `${name} gelu` })
    assertClose(T.softmaxRows(x, rows, cols), cpu.softmaxRows(x, rows, cols), {
      atol: 1e-7,
      rtol: 2e-6,
      what: `${name} softmaxRows`,
    })
    const ce = T.crossEntropyRows(x, t, rows, cols, -100)
    assertClose(ce.losses, cpu.crossEntropyRows(x, t, rows, cols, -100).losses, {
      atol: 2e-6,
      rtol: 2e-6,
      what: `${name} crossEntropyRows`,
    })
    const got = T.layerNormRows(lx, w, bias, lnRows, lnCols, 1e-5)
    for (const key of ['y', 'mean', 'rstd'] as const)
      assertClose(got[key], ln[key], { atol: 2e-6, rtol: 2e-6, what: `${name} layerNorm ${key}` })
    const g = T.layerNormRowsBackward(dy, lx, w, ln.mean, ln.rstd, lnRows, lnCols)
    for (const key of ['dx', 'dw', 'db'] as const)
      assertClose(g[key], lnGrads[key], { atol: 1e-5, rtol: 1e-5, what: `${name} layerNorm ${key}` })
  }
})

test.run()
