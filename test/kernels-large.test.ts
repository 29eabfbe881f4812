// Work past the wasm backend's 1 GiB memory: add(a, a) of 10⁸ floats and a layer norm of 1.08·10⁸ once asked the
// memory for all their operands at once and failed ("300016384 floats of operands do not fit in 1 GiB", naming no
// op) where the CPU table gives the answer; the wasm kernels now take such inputs in tiles. One 432 MB input serves
// both, and its answers are known, so no table's result is kept to compare with (about 1 GB at a time).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { cpu, type Kernels } from '../src/kernels'
import { wasmKernels, wasmSupport } from '../src/backends/wasm'
import { startPool } from '../src/backends/threads/pool'
import { FunctionBody } from '../src/backends/wasm/emit'

FunctionBody.checks = true // every kernel generated in this process has its operand stack checked
const tables: [string, Kernels][] = [['cpu', cpu]]
if (wasmSupport() === '') {
  tables.push(['wasm 1 thread', { ...cpu, ...wasmKernels({ threads: false }) }])
  if (startPool()?.failure === '') tables.push(['wasm all threads', { ...cpu, ...wasmKernels({ threads: true }) }])
}

const rows = 2.7e7,
  cols = 4
const x = new Float32Array(rows * cols) // every row [1, 2, 3, 4]: mean 2.5, variance 1.25
for (let i = 0; i < x.length; i++) x[i] = (i & 3) + 1

test('add(x, x) of 1.08·10⁸ floats: every table gives 2x', () => {
  for (const [name, T] of tables) {
    const out = T.add(x, x)
    assert.is(out.length, x.length, `${name}: length`)
    for (let i = 0; i < out.length; i++)
      if (out[i] !== 2 * x[i]) assert.unreachable(`${name}: add at index ${i} gave ${out[i]}, not ${2 * x[i]}`)
  }
})

test('layerNormRows of (2.7·10⁷, 4): every table normalizes every row', () => {
  const eps = 1e-5,
    rstd = 1 / Math.sqrt(1.25 + eps)
  const y = [-1.5, -0.5, 0.5, 1.5].map((d) => d * rstd)
  for (const [name, T] of tables) {
    const got = T.layerNormRows(x, Float32Array.of(1, 1, 1, 1), new Float32Array(4), rows, cols, eps)
    assert.is(got.y.length, x.length, `${name}: length`)
    for (let i = 0; i < got.y.length; i++)
      if (!(Math.abs(got.y[i] - y[i & 3]) <= 1e-6))
        assert.unreachable(`${name}: y[${i}] = ${got.y[i]}, not ${y[i & 3]}`)
    for (let r = 0; r < rows; r++)
      if (got.mean[r] !== 2.5) assert.unreachable(`${name}: mean[${r}] = ${got.mean[r]}, not 2.5`)
  }
})

test.run()
