import { packA, packB, unpackC } from './src/backends/wasm/pack'
for (const n of [256, 512, 1024]) {
  const a = Float32Array.from({ length: n * n }, () => Math.random())
  const dst = new Float32Array(4 * n * n)
  const layout = { batch: 1, m: n, k: n, n, mBlocks: n / 4, nPanels: n / 8 }
  const time = (f: () => void) => { for (let i = 0; i < 5; i++) f(); const ts: number[] = []; for (let i = 0; i < 9; i++) { const t0 = performance.now(); f(); ts.push(performance.now() - t0) } return ts.sort((x, y) => x - y)[4].toFixed(3) }
  console.log(n, 'packA', time(() => packA(a, false, layout, dst, 0)), 'packA^T', time(() => packA(a, true, layout, dst, 0)), 'packB', time(() => packB(a, false, layout, dst, 0)), 'packB^T', time(() => packB(a, true, layout, dst, 0)), 'unpack', time(() => unpackC(dst, 0, layout)), 'kernel@50GF ms', (2 * n ** 3 / 50e6).toFixed(2))
}
