// gpu.js's modes that answer only with Promises (webgpu through the `webgpu` npm package, webasm with threads)
// in Node: they run in a bridge worker while the caller blocks on Atomics.wait, so the kernel table stays
// synchronous. Node-only (node:fs, worker_threads, the `webgpu` package); src/node.ts installs it.
import { fail } from '../../errors.js'
import { existsSync, readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { matmulBatched as cpuMatmulBatched } from '../../kernels/matmul.js'
import {
  GpuMatmul,
  checkCases,
  compare,
  useGpujsBridge,
  webgpuAvailable,
  type GpujsBridge,
  type GpujsMode,
  type GpujsPath,
  type MatmulRun,
} from './gpu.js'
import { WorkerPool, WorkerEnd, PARAMS, BUSY, IDLE, DATA_BYTE, sharedMemory } from '../threads/pool.js'
import { startNodeWorker } from '../threads/threads-node.js'
import type { WorkerInit } from '../threads/threads.js'

type BridgeMode = 'webgpu' | 'webasm-threads'
export type BridgeInit = WorkerInit & { mode: BridgeMode; cacheSize: number }

// bridge job parameters in the pool's control words
const BATCH = PARAMS,
  M = PARAMS + 1,
  K = PARAMS + 2,
  N = PARAMS + 3,
  TRANS_A = PARAMS + 4,
  TRANS_B = PARAMS + 5

const GPU_ORDER: GpujsMode[] = ['webgpu', 'headlessgl', 'webasm-threads', 'webasm']

/** Node's additions to gpu.js, for useGpujsBridge(): the bridge modes, and which modes this machine can run. */
export const nodeGpujs: GpujsBridge = { open: openBridge, candidates, loadGpujs }

/** gpu.js, an optional peer dependency, required only when a gpujs backend is asked for. */
function loadGpujs(): unknown {
  try {
    return createRequire(import.meta.url)('gpu.js')
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err)
    fail('gpu.js', `not installed: \`npm install gpu.js\` beside tenny to use the gpujs backends (${why})`)
  }
}

/**
 * GPU_ORDER, less webgpu and headlessgl where Linux shows no GPU device node: Dawn and headless-gl could only find
 * software renderers there (and print warnings looking).
 */
function candidates(): { modes: GpujsMode[]; skipped: string } {
  if (
    process.platform !== 'linux' ||
    existsSync('/dev/dri') ||
    readdirSync('/dev').some((name) => name.startsWith('nvidia'))
  )
    return { modes: GPU_ORDER, skipped: '' }
  return {
    modes: GPU_ORDER.filter((mode) => mode.startsWith('webasm')),
    skipped: 'webgpu, headlessgl: no GPU device node (/dev/dri, /dev/nvidia*): not tried',
  }
}

/** The caller's side of a bridge worker: operands in, block on Atomics.wait, C out. */
function openBridge(mode: BridgeMode, timeoutMs: number, cacheSize: number): GpujsPath {
  loadGpujs() // no gpu.js, no worker: say so here rather than from a worker started for nothing
  const memory = sharedMemory()
  if (typeof memory === 'string') throw new Error(`gpu.js ${mode}: ${memory}`)
  const bootstrap = new URL(`./gpu-worker-node.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url)
  const pool = new WorkerPool(1, memory, (init, onError) => {
    const data: BridgeInit = { ...init, mode, cacheSize }
    return startNodeWorker(bootstrap, data, onError)
  })
  pool.waitReady(timeoutMs)
  if (pool.failure) throw new Error(`gpu.js ${mode}: ${pool.failure}`)
  const run: MatmulRun = (a, b, batch, m, k, n, { transA = false, transB = false }) => {
    const aSize = batch * m * k,
      bSize = batch * k * n
    const data = pool.failure ? null : pool.reserve(aSize + bSize + batch * m * n)
    if (!data) return cpuMatmulBatched(a, b, batch, m, k, n, { transA, transB }) // failure() says why
    data.set(a.subarray(0, aSize), 0)
    data.set(b.subarray(0, bSize), aSize)
    const ctl = pool.ctl
    ctl[BATCH] = batch
    ctl[M] = m
    ctl[K] = k
    ctl[N] = n
    ctl[TRANS_A] = Number(transA)
    ctl[TRANS_B] = Number(transB)
    const taken = pool.post(0)
    try {
      if (taken.length === 0) throw new Error('the bridge worker was not idle')
      pool.join(taken) // throws with the worker's error, if it had one
    } catch (err) {
      pool.retire(err instanceof Error ? err.message : String(err)) // e.g. a lost device: the CPU from now on
      return cpuMatmulBatched(a, b, batch, m, k, n, { transA, transB })
    }
    return data.slice(aSize + bSize, aSize + bSize + batch * m * n)
  }
  return { mode, run, close: () => pool.retire('closed'), failure: () => pool.failure }
}

/** Worker side (gpu-worker-node.ts): open gpu.js in async mode, self-check, then serve jobs until retired. */
export async function gpujsWorker(init: BridgeInit): Promise<void> {
  const end = new WorkerEnd(init)
  useGpujsBridge(nodeGpujs) // this worker's own copy of gpu.ts loads gpu.js through it
  try {
    if (init.mode === 'webgpu') await installWebGPU()
    if (init.mode === 'webgpu' && !(await webgpuAvailable()))
      throw new Error('no WebGPU adapter (navigator.gpu.requestAdapter() gave null, core and compatibility)')
    const gm = new GpuMatmul(init.mode === 'webgpu' ? 'webgpu' : 'webasm', {
      asyncMode: true,
      cacheSize: init.cacheSize,
    })
    for (const c of checkCases()) compare(init.mode, c, await gm.run(c.a, c.b, c.batch, c.m, c.k, c.n, c.flags))
    end.idle()
    for (;;) {
      await waitForJobAsync(end)
      if (end.state() !== BUSY) return
      const ctl = end.ctl
      const batch = ctl[BATCH],
        m = ctl[M],
        k = ctl[K],
        n = ctl[N],
        aSize = batch * m * k,
        bSize = batch * k * n
      const data = new Float32Array(init.memory.buffer, DATA_BYTE, aSize + bSize + batch * m * n)
      const c = await gm.run(data.slice(0, aSize), data.slice(aSize, aSize + bSize), batch, m, k, n, {
        transA: ctl[TRANS_A] === 1,
        transB: ctl[TRANS_B] === 1,
      })
      data.set(c, aSize + bSize)
      end.progress()
      end.idle()
    }
  } catch (err) {
    end.fail(err instanceof Error ? (err.stack ?? err.message) : String(err))
  }
}

type WaitAsync = (a: Int32Array, index: number, value: number) => { async: boolean; value: Promise<string> | string }
const waitAsync: WaitAsync = Reflect.get(Atomics, 'waitAsync') // ES2024 (Node ≥ 16); the tsconfig's lib is ES2022

/** Wait for a job without blocking the event loop (gpu.js's readback awaits Promises on it). */
async function waitForJobAsync(end: WorkerEnd): Promise<void> {
  const keepAlive = setInterval(() => {}, 1 << 30) // NOTE: a pending waitAsync alone lets a worker's event loop end
  while (end.state() === IDLE) await waitAsync(end.ctl, end.slot, IDLE).value
  clearInterval(keepAlive)
}

/**
 * gpu.js reads navigator.gpu only: expose Dawn's (the `webgpu` package); software adapters retry in compatibility mode.
 */
async function installWebGPU(): Promise<void> {
  let dawn: typeof import('webgpu')
  try {
    dawn = await import('webgpu')
  } catch (err) {
    throw new Error(`the optional package \`webgpu\` did not load: ${err instanceof Error ? err.message : String(err)}`)
  }
  Object.assign(globalThis, dawn.globals)
  const gpu = dawn.create([])
  const requestAdapter = async (options: GPURequestAdapterOptions = {}) =>
    (await gpu.requestAdapter(options)) ?? gpu.requestAdapter({ ...options, featureLevel: 'compatibility' })
  const navigatorGpu = {
    requestAdapter,
    getPreferredCanvasFormat: () => gpu.getPreferredCanvasFormat(),
    wgslLanguageFeatures: gpu.wgslLanguageFeatures,
  }
  Object.defineProperty(globalThis, 'navigator', { value: { gpu: navigatorGpu }, configurable: true })
}
