import { K, backendInfo, setBackend } from './src/node'
const k = 768, n = 2304
const a = new Float32Array(k).fill(0.5), w = new Float32Array(k * n).fill(0.01)
for (const be of ['wasm', 'cpu'] as const) {
  setBackend(be)
  for (let r = 0; r < 3; r++) {
    let t = performance.now(); for (let i = 0; i < 20; i++) K.matmul(a, w, 1, k, n); const nn = (performance.now() - t) / 20
    t = performance.now(); for (let i = 0; i < 20; i++) K.matmul(a, w, 1, k, n, { transB: true }); const nt = (performance.now() - t) / 20
    console.log(be, backendInfo().threads, 'm=1 NN', nn.toFixed(2), 'ms  NT', nt.toFixed(2), 'ms')
  }
}
