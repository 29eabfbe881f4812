// Products whose operands exceed WASM_PIECE_FLOATS (a language model's head over a large vocabulary) run in pieces:
// each transpose case the pieces cover (A·Bᵀ on the 4 × 8 kernel and on the row kernel, A·B), with a bias and sizes
// that are no multiple of a piece, matches matmulRef, and neither module memory grows past what one piece needs.
// The memories only grow: where earlier tests in the process grew them, they must not grow further.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { matmulRef } from '../src/kernels/matmul'
import { wasmMatmul, wasmSupport, WASM_PIECE_FLOATS } from '../src/backends/wasm'
import { privateMemory } from '../src/backends/wasm/driver'
import { startPool } from '../src/backends/threads/pool'
import { manualSeed, random } from '../src/random'
import { FunctionBody } from '../src/backends/wasm/emit'

FunctionBody.checks = true
const rnd = (size: number) => Float32Array.from({ length: size }, () => 2 * random() - 1)
const pool = wasmSupport() === '' ? startPool() : undefined
const threaded = pool !== undefined && pool.failure === ''

/** |got − want| ≤ 1e-4 · max(1, ‖want‖∞) everywhere (float32 sums of up to 10⁵ terms in [-1, 1] × 0.01). */
function assertClose(got: Float32Array, want: Float32Array, what: string): void {
  assert.is(got.length, want.length, `${what}: length`)
  const scale = want.reduce((s, v) => Math.max(s, Math.abs(v)), 1)
  for (let i = 0; i < want.length; i++)
    if (!(Math.abs(got[i] - want[i]) <= 1e-4 * scale))
      assert.unreachable(`${what}: index ${i}: got ${got[i]}, matmulRef ${want[i]}`)
}

test('products past WASM_PIECE_FLOATS match matmulRef, with a bias, and the memories stay near one piece', () => {
  if (wasmSupport() !== '') return console.log(`  (wasm skipped: ${wasmSupport()})`)
  manualSeed(21)
  const before = [privateMemory().buffer.byteLength, threaded ? pool!.memory.buffer.byteLength : 0]
  const cases: [string, number, number, number, boolean][] = [
    ['A·Bᵀ, 4 × 8 kernel', 67, 36, (WASM_PIECE_FLOATS / 36) * 1.3 + 5, true], // B (n, k) 1.3 pieces
    ['A·Bᵀ, row kernel', 3, 64, (WASM_PIECE_FLOATS / 64) * 2.2 + 3, true], // generation's head: 1 row, B 2.2 pieces
    ['A·B, 4 × 8 kernel', 70, (WASM_PIECE_FLOATS / 70) * 1.6 + 1, 9, false], // the head's dx = dy · W: A and B long
    ['A·B, 1 row', 1, (WASM_PIECE_FLOATS / 9) * 1.1, 9, false],
  ]
  for (const [what, m, kf, nf, transB] of cases) {
    const k = Math.floor(kf),
      n = Math.floor(nf)
    const a = rnd(m * k),
      b = rnd(k * n).map((v) => v / 100),
      bias = rnd(n)
    const want = matmulRef(a, b, m, k, n, { transB }).map((v, i) => v + bias[i % n])
    for (const threads of threaded ? [false, true] : [false])
      assertClose(wasmMatmul(a, b, 1, m, k, n, { transB, bias }, threads), want, `${what} (${m},${k},${n})`)
  }
  // one piece's operands, plus the padding of its rows to whole blocks and panels, and the pages they round up to
  const most = 4 * WASM_PIECE_FLOATS * 1.25 + 2 ** 20
  const grown = privateMemory().buffer.byteLength
  assert.ok(grown <= Math.max(before[0], most), `private memory ${before[0]} -> ${grown} bytes`)
  if (threaded) {
    const pooled = pool!.memory.buffer.byteLength
    assert.ok(pooled <= Math.max(before[1], most), `pool memory ${before[1]} -> ${pooled} bytes`)
  }
})

test.run()
