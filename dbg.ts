import './src/node'
import { wasmMatmul, wasmSupport } from './src/backends/wasm/index'
import { startPool } from './src/backends/pool'
import { matmulRef, matmul as cpuMatmul } from './src/kernels/matmul'
console.log('support', JSON.stringify(wasmSupport()))
startPool()
let worst = 0
for (const threads of [false, true])
for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]])
for (const m of [1, 3, 7, 33, 130]) for (const k of [1, 3, 7, 33, 130]) for (const n of [1, 3, 7, 33, 130]) {
  const a = Float32Array.from({ length: 2 * m * k }, () => Math.random() - 0.5), b = Float32Array.from({ length: 2 * k * n }, () => Math.random() - 0.5)
  const got = wasmMatmul(a, b, 2, m, k, n, { transA: tA, transB: tB }, threads)
  for (let t = 0; t < 2; t++) {
    const want = matmulRef(a.subarray(t * m * k, (t + 1) * m * k), b.subarray(t * k * n, (t + 1) * k * n), m, k, n, { transA: tA, transB: tB })
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(want[i] - got[t * m * n + i]))
  }
}
console.log('max err', worst)
for (const n of [128, 256, 512, 1024]) {
  const a = Float32Array.from({ length: n * n }, () => Math.random()), b = Float32Array.from({ length: n * n }, () => Math.random())
  const res: string[] = []
  for (const [name, f] of [['1t NN', () => wasmMatmul(a, b, 1, n, n, n, {}, false)], ['1t NT', () => wasmMatmul(a, b, 1, n, n, n, { transB: true }, false)], ['2t NN', () => wasmMatmul(a, b, 1, n, n, n, {}, true)], ['2t NT', () => wasmMatmul(a, b, 1, n, n, n, { transB: true }, true)], ['js NT', () => cpuMatmul(a, b, n, n, n, { transB: true })]] as const) {
    for (let i = 0; i < 5; i++) f()
    const ts: number[] = []
    for (let i = 0; i < 7; i++) { const t0 = performance.now(); f(); ts.push(performance.now() - t0) }
    ts.sort((x, y) => x - y)
    res.push(`${name} ${(2 * n ** 3 / ts[3] / 1e6).toFixed(1)}`)
  }
  console.log(n, res.join(' | '))
}
