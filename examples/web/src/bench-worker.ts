// The bench page's measuring side, in a Web Worker (Tenny's threads block, so they need one; tfjs's webgl runs on
// an OffscreenCanvas there). Parity first, as `npm run bench` does: every column's products against Tenny's CPU
// kernel; then bench/'s own suites (matmul rows, the tiny GPT's training step) on the columns that passed, with
// jax-js's columns as `npm run bench` adds them (parity-checked there: its products and first losses).
import * as tf from '@tensorflow/tfjs'
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm'
import wasmUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url'
import simdUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url'
import threadedUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url'
import * as gpujs from 'gpu.js'
import { K, setBackend, startBackend, useGpujs, type BackendName, type BackendOptions } from 'tenny'
import type { Row } from '../../../bench/timing'
import type { Meta } from '../../../bench/report'
import type { TfBackend } from '../../../bench/tfjs-gpt'
import type { matmulRows } from '../../../bench/suite-matmul'
import { matmulBatched } from '../../../src/kernels/matmul'
import { installBenchmarkGlobals } from './benchmark-globals'

/** bench/'s suites, loaded once benchmark.js can find what it needs (a static import would load it first). */
async function loadBench() {
  installBenchmarkGlobals()
  const [{ matmulRows: timeMatmul }, { gptRows }, { markdown }, { uniformData, medianOf }, { tfInfo }] =
    await Promise.all([
      import('../../../bench/suite-matmul'),
      import('../../../bench/suite-gpt'),
      import('../../../bench/report'),
      import('../../../bench/timing'),
      import('../../../bench/tfjs-gpt'),
    ])
  return { timeMatmul, gptRows, markdown, uniformData, medianOf, tfInfo }
}
type Bench = Awaited<ReturnType<typeof loadBench>>

export type BenchMode = 'full' | 'quick' | 'parity'
export type ParityRow = {
  column: string
  errors: number[]
  tolerances: number[]
  ms256: number
  ok: boolean
  note: string
}
export type BenchReply =
  | { type: 'status'; text: string }
  | { type: 'parity'; rows: ParityRow[] }
  | { type: 'done'; markdown: string; rows: Row[] }
  | { type: 'error'; text: string }

type TennyColumn = { name: string; backend: BackendName; options: BackendOptions }
type Tenny = Parameters<typeof matmulRows>[0]['tenny']

const TENNY: TennyColumn[] = [
  { name: 'cpu', backend: 'cpu', options: {} },
  { name: 'parallel', backend: 'parallel', options: {} },
  { name: 'wasm 1 thread', backend: 'wasm', options: { threads: 1 } },
  { name: 'wasm', backend: 'wasm', options: {} },
  { name: 'gpujs webgl2', backend: 'gpujs', options: { gpujsMode: 'webgl2' } },
  { name: 'gpujs webgl', backend: 'gpujs', options: { gpujsMode: 'webgl' } },
]
const TFJS: TfBackend[] = ['webgl', 'wasm']
/** A column whose 256³ product takes longer than this is timed at 256 only, and not on the GPT step. */
const SLOW_MS = 200

const post = (reply: BenchReply) => postMessage(reply)

/** The parity cases: (batch, m, k, n, flags), as suite-matmul's tolerance rule sees them (K-term sums in [-1, 1]). */
const CASES = [
  { batch: 1, m: 256, k: 256, n: 256, flags: {} },
  { batch: 1, m: 256, k: 256, n: 256, flags: { transB: true } },
  { batch: 3, m: 130, k: 33, n: 7, flags: { transA: true } },
]
const tolerance = (k: number) => 2e-7 * k * Math.sqrt(k) + 1e-6

/** Each case's worst |got − want| for one column's product function, and how long one 256³ product took. */
function parity(
  bench: Bench,
  column: string,
  product: (c: (typeof CASES)[number], a: Float32Array, b: Float32Array) => Float32Array,
): ParityRow {
  const errors: number[] = []
  let ms256 = 0
  for (const [i, c] of CASES.entries()) {
    const a = bench.uniformData(c.batch * c.m * c.k, 10 + i),
      b = bench.uniformData(c.batch * c.k * c.n, 20 + i)
    const want = matmulBatched(a, b, c.batch, c.m, c.k, c.n, c.flags)
    product(c, a, b) // compile / warm
    const t0 = performance.now()
    const got = product(c, a, b)
    if (i === 0) ms256 = performance.now() - t0
    errors.push(
      got.length === want.length ? want.reduce((worst, w, j) => Math.max(worst, Math.abs(got[j] - w)), 0) : Infinity,
    )
  }
  const tolerances = CASES.map((c) => tolerance(c.k))
  const ok = errors.every((e, i) => e <= tolerances[i])
  return { column, errors, tolerances, ms256, ok, note: ok ? '' : 'refused: differs from the CPU kernel' }
}

function tennyParity(bench: Bench, column: TennyColumn): ParityRow {
  try {
    setBackend(column.backend, column.options)
  } catch (err) {
    return {
      column: `Tenny ${column.name}`,
      errors: [],
      tolerances: [],
      ms256: 0,
      ok: false,
      note: err instanceof Error ? err.message : String(err),
    }
  }
  return parity(bench, `Tenny ${column.name}`, (c, a, b) => K.matmulBatched(a, b, c.batch, c.m, c.k, c.n, c.flags))
}

async function tfParity(bench: Bench, backend: TfBackend): Promise<ParityRow> {
  if (!(await tf.setBackend(backend)))
    return {
      column: `tfjs ${backend}`,
      errors: [],
      tolerances: [],
      ms256: 0,
      ok: false,
      note: `tfjs: backend '${backend}' failed to start`,
    }
  await tf.ready()
  return parity(bench, `tfjs ${backend}`, (c, a, b) =>
    tf.tidy(() => {
      const ta = tf.tensor3d(a, c.flags.transA ? [c.batch, c.k, c.m] : [c.batch, c.m, c.k])
      const tb = tf.tensor3d(b, c.flags.transB ? [c.batch, c.n, c.k] : [c.batch, c.k, c.n])
      return tf.matMul(ta, tb, c.flags.transA, c.flags.transB).dataSync() as Float32Array
    }),
  )
}

/**
 * tfjs webgl's matmul rows, whole trips only (tensors from arrays, product, read back): its products run
 * asynchronously on the GPU, so a product without its read-back has no time of its own (and timing one in a
 * loop only queues work). The rows are named as bench/suite-matmul.ts names them.
 */
async function webglTrips(bench: Bench, sizes: number[], quick: boolean): Promise<Row[]> {
  await tf.setBackend('webgl')
  const rows: Row[] = []
  for (const n of sizes) {
    const a = bench.uniformData(n * n, n),
      b = bench.uniformData(n * n, n + 1)
    for (const transB of [false, true]) {
      const name = `matmul ${n}×${n} ${transB ? 'A·Bᵀ' : 'A·B'}`
      const trip = () =>
        tf.tidy(() => tf.matMul(tf.tensor2d(a, [n, n]), tf.tensor2d(b, [n, n]), false, transB).dataSync())
      const cell = bench.medianOf(
        () => {
          trip()
        },
        { warmup: 1, runs: quick ? 3 : 5 },
      )
      rows.push({
        section: 'matmul, + tensor creation and read-back',
        name,
        unit: 'ms',
        cells: { 'tfjs webgl': cell },
        notes: [],
        flops: 2 * n ** 3,
      })
      rows.push({
        section: 'matmul, product alone',
        name,
        unit: 'ms',
        cells: { 'tfjs webgl': null },
        notes: ['tfjs webgl: asynchronous on the GPU, timed with its read-back only'],
        flops: 2 * n ** 3,
      })
    }
  }
  return rows
}

/** bench/'s TennyBackends, for the columns given: use(name) installs that column's backend. */
function tennyColumns(columns: TennyColumn[]): Tenny {
  const byName = new Map(columns.map((c) => [c.name, c]))
  return {
    names: columns.map((c) => c.name),
    notes: [],
    details: {},
    info: () => ({}),
    async use(name) {
      const c = byName.get(name) ?? { name, backend: 'cpu', options: {} }
      setBackend(c.backend, c.options)
    },
  }
}

/** Every column's parity checks, posted to the page as each finishes. */
async function checkColumns(bench: Bench): Promise<ParityRow[]> {
  const checks: ParityRow[] = []
  for (const column of TENNY) {
    post({ type: 'status', text: `Parity: Tenny ${column.name}…` })
    checks.push(tennyParity(bench, column))
    post({ type: 'parity', rows: checks })
  }
  for (const backend of TFJS) {
    post({ type: 'status', text: `Parity: tfjs ${backend}…` })
    checks.push(await tfParity(bench, backend))
    post({ type: 'parity', rows: checks })
  }
  return checks
}

async function run(mode: BenchMode): Promise<void> {
  post({ type: 'status', text: 'Starting the backends (threads, gpu.js on WebGL, tfjs)…' })
  const bench = await loadBench()
  useGpujs(gpujs)
  await startBackend('cpu') // let the thread pool's Web Workers come up before any column needs them
  setWasmPaths({
    'tfjs-backend-wasm.wasm': wasmUrl,
    'tfjs-backend-wasm-simd.wasm': simdUrl,
    'tfjs-backend-wasm-threaded-simd.wasm': threadedUrl,
  })
  // NOTE: tfjs-wasm's threaded build starts its pthreads from an inlined script that fails once bundled
  // ("e is not defined", seen with Vite 8); its single-threaded SIMD build is what the Node bench measures too
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false)
  const checks = await checkColumns(bench)
  if (mode === 'parity') return post({ type: 'done', markdown: '', rows: [] })

  const quick = mode === 'quick'
  const passed = (name: string) => checks.find((c) => c.column === name)
  const fast = (name: string) => (passed(name)?.ms256 ?? Infinity) <= SLOW_MS
  const rows = new Map<string, Row>()
  const merge = (more: Row[]) => {
    for (const r of more) {
      const key = `${r.section}|${r.name}`
      const into = rows.get(key)
      if (!into) {
        rows.set(key, r)
        continue
      }
      Object.assign(into.cells, r.cells)
      into.notes.push(...r.notes)
    }
  }
  const notes: string[] = []
  const sizesFor = (column: string) => {
    if (fast(column)) return quick ? [256, 512] : [256, 512, 1024]
    notes.push(`${column}: matmul at 256 only (one 256³ product took ${passed(column)?.ms256.toFixed(0)} ms here)`)
    return [256]
  }
  for (const column of TENNY.filter((c) => passed(`Tenny ${c.name}`)?.ok)) {
    const sizes = sizesFor(`Tenny ${column.name}`)
    post({ type: 'status', text: `Timing matmul: Tenny ${column.name} at ${sizes.join(', ')}…` })
    merge(await bench.timeMatmul({ quick, sizes, tenny: tennyColumns([column]), tfBackends: [], jaxjs: false }))
  }
  for (const backend of TFJS.filter((b) => passed(`tfjs ${b}`)?.ok)) {
    const sizes = sizesFor(`tfjs ${backend}`)
    post({ type: 'status', text: `Timing matmul: tfjs ${backend} at ${sizes.join(', ')}…` })
    if (backend === 'webgl') merge(await webglTrips(bench, sizes, quick))
    else merge(await bench.timeMatmul({ quick, sizes, tenny: tennyColumns([]), tfBackends: [backend], jaxjs: false }))
  }
  post({ type: 'status', text: 'Timing matmul: jax-js…' })
  merge(
    await bench.timeMatmul({
      quick,
      sizes: quick ? [256, 512] : [256, 512, 1024],
      tenny: tennyColumns([]),
      tfBackends: [],
      jaxjs: true,
    }),
  )
  const gptTenny = TENNY.filter((c) => passed(`Tenny ${c.name}`)?.ok && fast(`Tenny ${c.name}`))
  const gptTf = TFJS.filter((b) => passed(`tfjs ${b}`)?.ok && fast(`tfjs ${b}`))
  const columns = [...gptTenny.map((c) => `Tenny ${c.name}`), ...gptTf.map((b) => `tfjs ${b}`)]
  notes.push(`GPT rows: the columns whose 256³ product took ≤ ${SLOW_MS} ms (${columns.join(', ')})`)
  post({ type: 'status', text: 'Timing the tiny GPT: training steps and generation…' })
  merge(await bench.gptRows({ quick, tenny: tennyColumns(gptTenny), tfBackends: gptTf, jaxjs: true }))
  setBackend('cpu')
  const all = [...rows.values()]
  post({ type: 'done', markdown: bench.markdown(all, meta(mode, notes, bench.tfInfo().version)), rows: all })
}

/** The report's header: this browser, its hardware threads, tfjs's version. */
function meta(mode: BenchMode, notes: string[], tfjs: string): Meta {
  return {
    date: new Date().toISOString().slice(0, 10),
    cpu:
      /(Headless)?Chrom(e|ium)\/[\d.]+|Firefox\/[\d.]+|Version\/[\d.]+ Safari/.exec(navigator.userAgent)?.[0] ??
      navigator.userAgent,
    cores: navigator.hardwareConcurrency,
    node: 'none (a browser page)',
    tfjs,
    mode: mode === 'quick' ? 'quick run (fewer samples, matmul 256 and 512)' : 'full run',
    load: 'unknown (browser)',
    tennyBackends: TENNY.map((c) => c.name).join(', '),
    notes,
  }
}

addEventListener('message', (e: MessageEvent<{ mode: BenchMode }>) => {
  run(e.data.mode).catch((err: unknown) =>
    post({ type: 'error', text: err instanceof Error ? err.message : String(err) }),
  )
})
