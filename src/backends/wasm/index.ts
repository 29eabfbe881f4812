// The wasm backend: matmul through the generated 4 × 8 SIMD microkernel (matmul.ts). The caller packs op(B) into
// the module's memory (pack.ts); every thread then takes ranges of rows of C from a shared counter, packs its rows
// of A and runs the kernel chunk by chunk of k; C is copied back out. One thread uses a private memory; all
// threads share the pool's. The other kernels (gelu, softmax, layer norm, attention) are in kernels.ts.
import { matmul as cpuMatmul, matmulBatched as cpuMatmulBatched, type MatmulFlags } from '../../kernels/matmul.js'
import type { Kernels } from '../../kernels/index.js'
import { DATA_BYTE, PARAMS, growTo, sharedPool, type WorkerEnd } from '../pool.js'
import { instantiate, singleThread, poolThreads, type Panel } from './module.js'
import { elementwiseKernels, attentionKernels, softmaxKernels, layerNormKernels } from './kernels.js'
import { packA, packB, unpackC, type Layout } from './pack.js'

export { wasmSupport, kernelBytes } from './module.js'
export { WASM_MIN_ELEMENTS, WASM_MIN_ATTENTION } from './kernels.js'

/**
 * Products below these sizes stay on the TS kernels, and threads join only above the third: crossovers measured
 * by bench/backends.ts (2-core EPYC VM, Node 20, 2026-12-01, alternating calls): wasm / TS A·Bᵀ 0.64× at 12³,
 * 1.27× at 16³, 2.8× at 32³; at k = 128, n = 384 wasm wins from m = 4 (packing B costs too much for fewer rows);
 * 2 threads / 1 thread 0.68× at 64³, 0.82× at 96³, 1.12× at 128³, 1.24× at 192³, ~1.65× at 512³.
 */
export const WASM_MIN_FLOPS = 16 * 16 * 16
export const WASM_MIN_ROWS = 4
export const WASM_THREADS_MIN_FLOPS = 128 * 128 * 128
/** This backend's job kind in the pool's JOB word (worker.ts dispatches on it). */
export const WASM_PANELS = 2

/** p runs in chunks of KC (a block's chunk 4 KiB, a panel's 8 KiB: both in L1); an item is at most ROW_BLOCKS blocks of 4 rows. */
const KC = 256
const ROW_BLOCKS = 16

// job parameters in the pool's control words: the item counter, shapes, and where each operand is (in floats
// from the start of the memory): A as given (A_SOURCE, threads only), A and B packed, C
const NEXT = PARAMS, ITEMS = PARAMS + 1, BATCH = PARAMS + 2, M = PARAMS + 3, KK = PARAMS + 4, N = PARAMS + 5
const TRANS_A = PARAMS + 6, RANGE = PARAMS + 7, A_SOURCE = PARAMS + 8, A = PARAMS + 9, B = PARAMS + 10, C = PARAMS + 11

/** The call's shapes as the control words hold them. */
function layoutOf(ctl: Int32Array): Layout {
  const m = ctl[M], n = ctl[N]
  return { batch: ctl[BATCH], m, k: ctl[KK], n, mBlocks: Math.ceil(m / 4), nPanels: Math.ceil(n / 8) }
}

/**
 * Take items from the shared counter until none is left. An item is up to RANGE blocks of 4 rows of C for one
 * batch entry t: pack those rows of A, zero them in C, then C += A·B chunk by chunk of p, panel by panel.
 * `source` holds A as given, from float `at` (the caller's array, or the memory when threads share the work).
 */
function runItems(ctl: Int32Array, memory: Float32Array, source: Float32Array, at: number, panel: Panel): void {
  const L = layoutOf(ctl), { m, k, mBlocks, nPanels } = L, range = ctl[RANGE]
  const perEntry = Math.ceil(mBlocks / range), ldc = nPanels * 8
  for (let item = Atomics.add(ctl, NEXT, 1); item < ctl[ITEMS]; item = Atomics.add(ctl, NEXT, 1)) {
    const t = Math.floor(item / perEntry), ib0 = (item % perEntry) * range, ib1 = Math.min(ib0 + range, mBlocks)
    packA(source, at + t * m * k, ctl[TRANS_A] === 1, L, t, ib0, ib1, memory, ctl[A])
    const cRows = ctl[C] + (t * mBlocks * 4 + ib0 * 4) * ldc // &C_t[4·ib0][0]
    memory.fill(0, cRows, cRows + (ib1 - ib0) * 4 * ldc)
    for (let p0 = 0; p0 < k; p0 += KC) {
      const aChunk = 4 * (ctl[A] + ((t * mBlocks + ib0) * k + p0) * 4)
      for (let jb = 0; jb < nPanels; jb++) {
        const bChunk = 4 * (ctl[B] + ((t * nPanels + jb) * k + p0) * 8)
        panel(aChunk, 16 * k, bChunk, 4 * (cRows + jb * 8), ib1 - ib0, Math.min(KC, k - p0), 4 * ldc)
      }
    }
  }
}

/** `batch` products op(A_t)·op(B_t) through the microkernel, on one thread or on the pool's. */
export function wasmMatmul(a: Float32Array, b: Float32Array, batch: number, m: number, k: number, n: number, flags: MatmulFlags, threads: boolean): Float32Array {
  if (m === 0 || n === 0 || k === 0) return new Float32Array(batch * m * n) // the kernel's loops run at least once
  const L: Layout = { batch, m, k, n, mBlocks: Math.ceil(m / 4), nPanels: Math.ceil(n / 8) }
  const pool = threads ? sharedPool() : undefined
  const shared = pool !== undefined && !pool.failure
  const module = shared ? poolThreads(pool) : singleThread()
  const source = shared ? batch * m * k : 0 // with threads, A is copied into the memory as given
  const aSize = batch * L.mBlocks * 4 * k, bSize = batch * L.nPanels * 8 * k, cSize = batch * L.mBlocks * 4 * L.nPanels * 8
  const base = DATA_BYTE / 4
  if (!growTo(module.memory, 4 * (source + aSize + bSize + cSize))) return cpuMatmulBatched(a, b, batch, m, k, n, flags) // past 1 GiB
  const memory = new Float32Array(module.memory.buffer)
  const ctl = new Int32Array(module.memory.buffer, 0, PARAMS + 16)
  ctl[BATCH] = batch; ctl[M] = m; ctl[KK] = k; ctl[N] = n; ctl[TRANS_A] = flags.transA ? 1 : 0
  ctl[A_SOURCE] = base; ctl[A] = base + source; ctl[B] = ctl[A] + aSize; ctl[C] = ctl[B] + bSize
  ctl[RANGE] = Math.min(ROW_BLOCKS, Math.max(1, Math.ceil(L.mBlocks / (4 * (shared ? pool.size + 1 : 1)))))
  ctl[ITEMS] = batch * Math.ceil(L.mBlocks / ctl[RANGE])
  packB(b, flags.transB ?? false, L, memory, ctl[B])
  Atomics.store(ctl, NEXT, 0)
  if (!shared) {
    runItems(ctl, memory, a, 0, module.run.panel)
    return unpackC(memory, ctl[C], L)
  }
  memory.set(a.subarray(0, batch * m * k), base)
  pool.start()
  const taken = pool.post(WASM_PANELS)
  runItems(ctl, memory, memory, base, module.run.panel)
  try {
    pool.join(taken)
  } catch {
    return cpuMatmulBatched(a, b, batch, m, k, n, flags) // the pool is retired; its failure says why
  }
  return unpackC(memory, ctl[C], L)
}

/** A worker's share of a WASM_PANELS job (worker.ts calls it), on its own instance of the module. */
let workerPanel: Panel | undefined
export function wasmJob(end: WorkerEnd): void {
  workerPanel ??= instantiate(end.init.memory, true).panel
  const memory = new Float32Array(end.init.memory.buffer) // made per job: the memory may have grown since the last
  runItems(end.ctl, memory, memory, end.ctl[A_SOURCE], workerPanel)
  end.progress()
}

/**
 * The backend's kernel-table entries: small products on the TS kernels, the rest on 1 thread or on all.
 * everySize sends every product to the SIMD kernel (and to the threads, if any), as the tests do.
 */
export function wasmKernels({ threads, everySize = false }: { threads: boolean; everySize?: boolean }): Pick<Kernels, 'matmul' | 'matmulBatched'> & Partial<Kernels> {
  return { ...matmulKernels(threads, everySize), ...elementwiseKernels(everySize), ...attentionKernels(everySize), ...softmaxKernels(everySize), ...layerNormKernels(everySize) }
}

function matmulKernels(threads: boolean, everySize: boolean): Pick<Kernels, 'matmul' | 'matmulBatched'> {
  const route = (batch: number, m: number, k: number, n: number) => everySize || (batch * m * k * n >= WASM_MIN_FLOPS && m >= WASM_MIN_ROWS)
  const shared = (batch: number, m: number, k: number, n: number) => threads && (everySize || batch * m * k * n >= WASM_THREADS_MIN_FLOPS)
  return {
    matmul: (a, b, m, k, n, flags = {}) => (route(1, m, k, n) ? wasmMatmul(a, b, 1, m, k, n, flags, shared(1, m, k, n)) : cpuMatmul(a, b, m, k, n, flags)),
    matmulBatched: (a, b, batch, m, k, n, flags = {}) => (route(batch, m, k, n) ? wasmMatmul(a, b, batch, m, k, n, flags, shared(batch, m, k, n)) : cpuMatmulBatched(a, b, batch, m, k, n, flags)),
  }
}
