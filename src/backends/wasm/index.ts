// The wasm backend: matmul through the generated 4 × 8 SIMD microkernel (matmul.ts). The caller packs op(A) and
// op(B) into the module's memory (pack.ts), every thread then takes 8-column panels of C from a shared counter,
// and C is copied back out. One thread uses a private memory; all threads share the pool's.
import { matmul as cpuMatmul, matmulBatched as cpuMatmulBatched, type MatmulFlags } from '../../kernels/matmul.js'
import type { Kernels } from '../../kernels/index.js'
import { webAssembly, type WasmMemory } from '../webassembly.js'
import { DATA_BYTE, PARAMS, growTo, sharedPool, type WorkerEnd, type WorkerPool } from '../pool.js'
import { wasmModule, FunctionBody } from './emit.js'
import { panelKernel } from './matmul.js'
import { packA, packB, unpackC, type Layout } from './pack.js'

/**
 * Products below these sizes stay on the TS kernels (bench/backends.ts measured the crossovers): under
 * WASM_MIN_FLOPS multiply-adds or WASM_MIN_ROWS rows of C, packing costs more than the SIMD kernel saves.
 * Threads join from WASM_THREADS_MIN_FLOPS, where sharing the panels pays for waking the workers.
 */
export const WASM_MIN_FLOPS = 16 * 16 * 16
export const WASM_MIN_ROWS = 4
export const WASM_THREADS_MIN_FLOPS = 64 * 64 * 64
/** This backend's job kind in the pool's JOB word (worker.ts dispatches on it). */
export const WASM_PANELS = 2

type Panel = (aPack: number, bPanel: number, cPanel: number, mBlocks: number, k: number, ldc: number) => void
const MAX_PAGES = 16384 // 1 GiB, as the pool's shared memory

// job parameters in the pool's control words (byte offsets and sizes of the packed operands, see Layout)
const NEXT = PARAMS, A = PARAMS + 1, B = PARAMS + 2, C = PARAMS + 3, M_BLOCKS = PARAMS + 4, KK = PARAMS + 5, N_PANELS = PARAMS + 6, ITEMS = PARAMS + 7

/** The kernel module's bytes, importing a shared or a private memory as env.memory. */
export function kernelBytes(shared: boolean): Uint8Array {
  return wasmModule({ shared, minPages: 1, maxPages: MAX_PAGES }, { panel: panelKernel() })
}

let support: string | undefined
/** Why this runtime cannot run the kernels ('' if it can): no WebAssembly, or no SIMD (a module with one v128 local fails validation). */
export function wasmSupport(): string {
  if (support === undefined) {
    const probe = new FunctionBody([])
    probe.zero().set(probe.local('v128'))
    if (!webAssembly) support = 'no WebAssembly in this runtime'
    else if (!webAssembly.validate(wasmModule({ shared: false, minPages: 1, maxPages: 1 }, { simd: probe }))) support = 'WebAssembly SIMD is not supported here (a 128-bit SIMD module fails validation)'
    else support = ''
  }
  return support
}

/** The panel function of a new instance on `memory`. */
function instantiate(memory: WasmMemory, shared: boolean): Panel {
  if (!webAssembly) throw new Error('wasm backend: no WebAssembly in this runtime')
  const instance = new webAssembly.Instance(new webAssembly.Module(kernelBytes(shared)), { env: { memory } })
  return instance.exports.panel as Panel
}

let single: { memory: WasmMemory; panel: Panel } | undefined // one thread: a private memory
let pooled: { memory: WasmMemory; panel: Panel } | undefined // the caller's instance on the pool's shared memory

function singleThread(): { memory: WasmMemory; panel: Panel } {
  if (!single) {
    if (!webAssembly) throw new Error('wasm backend: no WebAssembly in this runtime')
    const memory = new webAssembly.Memory({ initial: 2, maximum: MAX_PAGES })
    single = { memory, panel: instantiate(memory, false) }
  }
  return single
}

function poolThreads(pool: WorkerPool): { memory: WasmMemory; panel: Panel } {
  pooled ??= { memory: pool.memory, panel: instantiate(pool.memory, true) }
  return pooled
}

/** Take panel items from the shared counter until none is left (item = batch entry t × 8-column panel jb). */
function runPanels(ctl: Int32Array, panel: Panel): number {
  const items = ctl[ITEMS], nPanels = ctl[N_PANELS], mBlocks = ctl[M_BLOCKS], k = ctl[KK]
  const aBytes = mBlocks * 4 * k * 4, bBytes = nPanels * 8 * k * 4, cBytes = mBlocks * 4 * nPanels * 8 * 4
  let done = 0
  for (let item = Atomics.add(ctl, NEXT, 1); item < items; item = Atomics.add(ctl, NEXT, 1)) {
    const t = Math.floor(item / nPanels), jb = item % nPanels
    panel(ctl[A] + t * aBytes, ctl[B] + t * bBytes + jb * k * 32, ctl[C] + t * cBytes + jb * 32, mBlocks, k, nPanels * 32)
    done++
  }
  return done
}

/** `batch` products op(A_t)·op(B_t) through the microkernel, on one thread or on the pool's. */
export function wasmMatmul(a: Float32Array, b: Float32Array, batch: number, m: number, k: number, n: number, flags: MatmulFlags, threads: boolean): Float32Array {
  if (m === 0 || n === 0 || k === 0) return new Float32Array(batch * m * n) // the kernel's loops run at least once
  const layout: Layout = { batch, m, k, n, mBlocks: Math.ceil(m / 4), nPanels: Math.ceil(n / 8) }
  const floats = batch * (layout.mBlocks * 4 * k + k * layout.nPanels * 8 + layout.mBlocks * 4 * layout.nPanels * 8)
  const pool = threads ? sharedPool() : undefined
  const module = pool && !pool.failure ? poolThreads(pool) : singleThread()
  if (!growTo(module.memory, 4 * floats)) return cpuMatmulBatched(a, b, batch, m, k, n, flags) // past 1 GiB
  const data = new Float32Array(module.memory.buffer, DATA_BYTE, floats)
  const at = packA(a, flags.transA ?? false, layout, data, 0)
  const bAt = packB(b, flags.transB ?? false, layout, data, at)
  const cAt = bAt + batch * k * layout.nPanels * 8
  const ctl = new Int32Array(module.memory.buffer, 0, PARAMS + 16)
  ctl[A] = DATA_BYTE; ctl[B] = DATA_BYTE + 4 * at; ctl[C] = DATA_BYTE + 4 * bAt
  ctl[M_BLOCKS] = layout.mBlocks; ctl[KK] = k; ctl[N_PANELS] = layout.nPanels; ctl[ITEMS] = batch * layout.nPanels
  Atomics.store(ctl, NEXT, 0)
  if (module === pooled && pool) {
    pool.start()
    const taken = pool.post(WASM_PANELS)
    runPanels(ctl, module.panel)
    try {
      pool.join(taken)
    } catch {
      return cpuMatmulBatched(a, b, batch, m, k, n, flags) // the pool is retired; its failure says why
    }
  } else {
    runPanels(ctl, module.panel)
  }
  return unpackC(data, bAt, layout)
}

/** A worker's share of a WASM_PANELS job (worker.ts calls it), on its own instance of the module. */
let workerPanel: Panel | undefined
export function wasmJob(end: WorkerEnd): void {
  workerPanel ??= instantiate(end.init.memory, true)
  runPanels(end.ctl, workerPanel)
  end.progress()
}

/**
 * The backend's kernel-table entries: small products on the TS kernels, the rest on 1 thread or on all.
 * everySize sends every product to the SIMD kernel (and to the threads, if any), as the tests do.
 */
export function wasmKernels({ threads, everySize = false }: { threads: boolean; everySize?: boolean }): Pick<Kernels, 'matmul' | 'matmulBatched'> {
  const route = (batch: number, m: number, k: number, n: number) => everySize || (batch * m * k * n >= WASM_MIN_FLOPS && m >= WASM_MIN_ROWS)
  const shared = (batch: number, m: number, k: number, n: number) => threads && (everySize || batch * m * k * n >= WASM_THREADS_MIN_FLOPS)
  return {
    matmul: (a, b, m, k, n, flags = {}) => (route(1, m, k, n) ? wasmMatmul(a, b, 1, m, k, n, flags, shared(1, m, k, n)) : cpuMatmul(a, b, m, k, n, flags)),
    matmulBatched: (a, b, batch, m, k, n, flags = {}) => (route(batch, m, k, n) ? wasmMatmul(a, b, batch, m, k, n, flags, shared(batch, m, k, n)) : cpuMatmulBatched(a, b, batch, m, k, n, flags)),
  }
}
