// A test page (test/web-gpu.test.ts builds and opens it): Tenny's gpujs backend in the browser's WebGL 2 and
// WebGL modes, through the kernel table, against the CPU kernel on awkward shapes; then a lost WebGL context.
// The results go into #result as JSON.
import * as gpujs from 'gpu.js'
import { K, setBackend, backendInfo, useGpujs } from '../../src/index'
import { matmulBatched } from '../../src/kernels/matmul'

type Flags = { transA?: boolean; transB?: boolean }
type Case = { batch: number; m: number; k: number; n: number; flags: Flags }

// square products, a K past gpu.js's default loop limit (1000), a batched attention-like product, odd sizes
const CASES: Case[] = [
  { batch: 1, m: 256, k: 256, n: 256, flags: {} },
  { batch: 1, m: 256, k: 256, n: 256, flags: { transB: true } },
  { batch: 1, m: 64, k: 1030, n: 65, flags: {} },
  { batch: 1, m: 33, k: 130, n: 127, flags: { transA: true } },
  { batch: 16, m: 64, k: 32, n: 64, flags: { transB: true } },
  { batch: 3, m: 7, k: 513, n: 129, flags: { transA: true, transB: true } },
]

const fill = (size: number, seed: number) =>
  Float32Array.from({ length: size }, (_, i) => Math.sin(seed + i * 0.731) * Math.cos(i * 0.173))

/** Worst |got − want| / max(1, max|want|) over the cases, run through K (the installed backend's table). */
function worstError(): { worst: number; at: string } {
  let worst = 0,
    at = ''
  for (const [i, { batch, m, k, n, flags }] of CASES.entries()) {
    const a = fill(batch * m * k, i),
      b = fill(batch * k * n, 100 + i)
    const want = matmulBatched(a, b, batch, m, k, n, flags)
    const got = K.matmulBatched(a, b, batch, m, k, n, flags)
    const scale = Math.max(1, ...want.map(Math.abs))
    for (let j = 0; j < want.length; j++) {
      const err = got.length === want.length ? Math.abs(got[j] - want[j]) / scale : Infinity
      if (!(err <= worst))
        [worst, at] = [err, `${batch}x${m}x${k}x${n} ${JSON.stringify(flags)} index ${j}: ${got[j]} vs ${want[j]}`]
    }
  }
  return { worst, at }
}

/** Every WebGL context the page makes, so the test can lose one as a GPU reset would. */
const contexts: WebGLRenderingContext[] = []
const getContext = HTMLCanvasElement.prototype.getContext
HTMLCanvasElement.prototype.getContext = function (this: HTMLCanvasElement, ...args: Parameters<typeof getContext>) {
  const context = getContext.apply(this, args)
  if (context instanceof WebGLRenderingContext || context instanceof WebGL2RenderingContext) contexts.push(context)
  return context
} as typeof getContext

function run(): Record<string, unknown> {
  useGpujs(gpujs)
  const results: Record<string, unknown> = {}
  for (const mode of ['webgl2', 'webgl'] as const) {
    try {
      const info = setBackend('gpujs', { gpujsMode: mode })
      results[mode] = { backend: info.backend, mode: info.gpujsMode, ...worstError() }
    } catch (err) {
      results[mode] = { error: err instanceof Error ? err.message : String(err) }
    }
  }
  // a lost context reads back zeros without an error: the path must notice, compute on the CPU, and say so
  setBackend('gpujs', { gpujsMode: 'webgl2' })
  for (const context of contexts) context.getExtension('WEBGL_lose_context')?.loseContext()
  results.lost = { ...worstError(), reason: backendInfo().reason }
  return results
}

const out = document.getElementById('result')
try {
  if (out) out.textContent = JSON.stringify(run())
} catch (err) {
  if (out) out.textContent = JSON.stringify({ error: err instanceof Error ? err.stack : String(err) })
}
