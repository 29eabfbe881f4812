// Sums on long rows, on every kernel table, against float64: a float32 running sum stops growing once its terms fall
// below half its last bit, so its error grows with the length (3·10⁷ ones summed to 16,777,216). Each kernel that
// adds along a row or down a column is checked at 10⁶–3·10⁷ terms, where float32 accumulation is far off; then the
// ops users call (sum, mean, variance, logsumexp, softmax) on each backend, at the sizes that showed the drift.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { cpu, type Kernels } from '../src/kernels'
import { setBackend, tensor, sum, mean, variance, logsumexp, softmax } from '../src/node'
import { wasmKernels, wasmSupport } from '../src/backends/wasm'
import { startPool } from '../src/backends/threads/pool'
import { manualSeed, random } from '../src/random'
import { FunctionBody } from '../src/backends/wasm/emit'

FunctionBody.checks = true // every kernel generated in this process has its operand stack checked

const tables: [string, Kernels][] = [['cpu', cpu]]
if (wasmSupport() === '') {
  tables.push(['wasm 1 thread', { ...cpu, ...wasmKernels({ threads: false, everySize: true }) }])
  if (startPool()?.failure === '')
    tables.push(['wasm all threads', { ...cpu, ...wasmKernels({ threads: true, everySize: true }) }])
}

/** Float32 rounding of a float64 result, with room for a few roundings on the way: 8 units of the last place. */
const F32 = 8 * 2 ** -24

/** Throws naming the first index where got is further than rtol (relative) from the float64 `want`. */
function assertRel(got: ArrayLike<number>, want: ArrayLike<number>, what: string, rtol = F32): void {
  assert.is(got.length, want.length, `${what}: length`)
  for (let i = 0; i < want.length; i++)
    if (!(Math.abs(got[i] - want[i]) <= rtol * Math.abs(want[i])))
      assert.unreachable(`${what}: index ${i}: got ${got[i]}, float64 ${want[i]} (relative ${rtol})`)
}

/** [a, b, a, b, …]: e.g. exps 1 and e⁻¹, whose float32 running sum rounds at every step (10⁶ of them: 4e-4 off). */
function alternating(n: number, a: number, b: number): Float32Array {
  const x = new Float32Array(n).fill(a)
  for (let i = 1; i < n; i += 2) x[i] = b
  return x
}

test('sumAxis: a row of 3·10⁷ ones, a row of 10⁷ tenths and columns of 2.5·10⁶ sum to float64 on every table', () => {
  const ones = new Float32Array(3e7).fill(1)
  const tenths = new Float32Array(1e7).fill(0.1)
  const columns = new Float32Array(4 * 2.5e6) // (1, 2.5e6, 4): tenths, two tenths, …
  for (let i = 0; i < columns.length; i++) columns[i] = 0.1 * (1 + (i % 4))
  const tenth = Math.fround(0.1)
  const columnSums = [1, 2, 3, 4].map((c) => 2.5e6 * Math.fround(0.1 * c))
  for (const [name, T] of tables) {
    assert.is(T.sumAxis(ones, 1, ones.length, 1)[0], 3e7, `${name}: Σ of 3·10⁷ ones`)
    assertRel(T.sumAxis(tenths, 1, tenths.length, 1), [1e7 * tenth], `${name}: Σ of 10⁷ tenths`)
    assertRel(T.sumAxis(columns, 1, 2.5e6, 4), columnSums, `${name}: column sums over 2.5·10⁶ rows`)
  }
})

test('softmaxRows and crossEntropyRows over one row of 10⁷: probabilities and loss to float32 rounding on every table', () => {
  const n = 1e7,
    x = alternating(n, 0, -1)
  const e1 = Math.exp(-1),
    total = (n / 2) * (1 + e1) // Σ exp(x − max), max = 0
  const want = [1 / total, e1 / total]
  for (const [name, T] of tables) {
    const y = T.softmaxRows(x, 1, n)
    assertRel([y[0], y[1], y[n - 2], y[n - 1]], [...want, ...want], `${name} softmax`, 4 * F32)
    const { losses } = T.crossEntropyRows(x, Int32Array.of(1), 1, n, -100)
    assertRel(losses, [Math.log(total) + 1], `${name} cross-entropy (target 1: x = −1)`)
  }
})

test("layerNormRows over a row of 10⁷ (1000 and 1001 alternating); its backward and RMSNorm's over 2²⁰ rows, on every table", () => {
  const n = 1e7,
    eps = 1e-5
  const x = alternating(n, 1000, 1001)
  const w = new Float32Array(n).fill(1),
    b = new Float32Array(n)
  const rstd = 1 / Math.sqrt(0.25 + eps)
  for (const [name, T] of tables) {
    const got = T.layerNormRows(x, w, b, 1, n, eps)
    assertRel(got.mean, [1000.5], `${name} mean`)
    assertRel(got.rstd, [rstd], `${name} rstd`)
    assertRel([got.y[0], got.y[1], got.y[n - 1]], [-0.5 * rstd, 0.5 * rstd, 0.5 * rstd], `${name} y`, 3e-4) // x − mean cancels: mean's last bit at 1000 is 6e-5 of 0.5
  }
  manualSeed(1)
  const rows = 2 ** 20,
    cols = 4
  const xs = Float32Array.from({ length: rows * cols }, () => 2 * random() - 1)
  const dy = Float32Array.from({ length: rows * cols }, () => random())
  const { mean: mu, rstd: rs } = cpu.layerNormRows(xs, w.subarray(0, cols), b.subarray(0, cols), rows, cols, eps)
  const dw = new Float64Array(cols),
    db = new Float64Array(cols)
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < cols; j++) {
      const xHat = Math.fround(Math.fround(xs[r * cols + j] - mu[r]) * rs[r]) // as the kernels round x̂
      dw[j] += dy[r * cols + j] * xHat
      db[j] += dy[r * cols + j]
    }
  for (const [name, T] of tables) {
    const grads = T.layerNormRowsBackward(dy, xs, w.subarray(0, cols), mu, rs, rows, cols)
    assertRel(grads.db, db, `${name} db = Σ_rows dy over 2²⁰ rows`)
    assertRel(grads.dw, dw, `${name} dw = Σ_rows dy·x̂ over 2²⁰ rows`, 1e-6)
  }
  const rms = cpu.rmsNormRows(xs, w.subarray(0, cols), rows, cols, eps).rstd // RMSNorm's dw: Σ_rows dy·x̂ too
  const rmsDw = new Float64Array(cols)
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < cols; j++) rmsDw[j] += dy[r * cols + j] * Math.fround(xs[r * cols + j] * rms[r])
  for (const [name, T] of tables)
    assertRel(T.rmsNormRowsBackward(dy, xs, w.subarray(0, cols), rms, rows, cols).dw, rmsDw, `${name} RMSNorm dw`, 1e-6)
})

test('ops on every backend: sum of 3·10⁷ ones, mean and variance of 10⁵ values 1000/1001, logsumexp and softmax of 10⁶', () => {
  const ones = tensor(new Float32Array(3e7).fill(1), [3e7])
  const alt = tensor(alternating(1e5, 1000, 1001), [1e5])
  const row = tensor(alternating(1e6, 0, -1), [1, 1e6])
  const total = 5e5 * (1 + Math.exp(-1)) // Σ exp over the row
  for (const name of ['cpu', 'parallel', 'wasm'] as const) {
    try {
      setBackend(name)
    } catch (err) {
      console.log(`  (${name} skipped: ${err instanceof Error ? err.message : String(err)})`)
      continue
    }
    assert.is(sum(ones).data[0], 3e7, `${name}: sum`)
    assertRel(mean(alt).data, [1000.5], `${name}: mean`)
    assertRel(variance(alt, undefined, false, { unbiased: false }).data, [0.25], `${name}: variance`)
    assertRel(logsumexp(row).data, [Math.log(total)], `${name}: logsumexp`)
    assertRel(softmax(row).data.subarray(0, 2), [1 / total, Math.exp(-1) / total], `${name}: softmax`, 4 * F32)
  }
  setBackend('cpu')
})

test.run()
