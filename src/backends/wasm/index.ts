// The wasm backend: matmul through the generated 4 × 8 SIMD microkernel (matmul.ts). The caller copies A into the
// module's memory as it is (the kernel reads it through strides) and packs op(B) (pack.ts), or copies an
// untransposed B as it is for at most B_AS_GIVEN_MAX_ROWS rows of C; every thread then takes ranges of rows of C
// from a shared counter and runs the kernel chunk by chunk of k; C is copied back out. One thread uses a private
// memory; all threads share the pool's. A·Bᵀ with few rows takes the row kernel (wasmRows) instead. The other
// kernels (add, gelu, softmax, layer norm, column sums, attention) are in kernels.ts.
import { matmul as cpuMatmul, matmulBatched as cpuMatmulBatched, type MatmulFlags } from '../../kernels/matmul.js'
import type { Kernels } from '../../kernels/index.js'
import { DATA_BYTE, PARAMS, growTo, sharedPool, type WorkerEnd } from '../threads/pool.js'
import { instantiate, singleThread, poolThreads, regions, unpadRows, type Panel } from './module.js'
import { elementwiseKernels, attentionKernels, softmaxKernels, layerNormKernels, reduceKernels } from './kernels.js'
import { packB, unpackC, type Layout } from './pack.js'

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
/**
 * A·Bᵀ with fewer rows than this takes the row kernel (wasmRows), which reads B as given, instead of packing B for the
 * 4 × 8 kernel: alternating in one process, 1 thread, row kernel / TS kernel 5.7× at (1, 128, 384); panels / rows
 * 5.6× at m = 4, 1.6× at 32, 1.2× at 64 and 0.7× at 1024 for (m, 128, 384), and 1.04-1.2× at m = 64 for
 * (m, 256-1024, 256-1024) against panels on 2 threads.
 */
export const WASM_ROWS_BELOW = 64
export const WASM_THREADS_MIN_FLOPS = 128 * 128 * 128
/** This backend's job kind in the pool's JOB word (worker.ts dispatches on it). */
export const WASM_PANELS = 2

/** p runs in chunks of KC (a block's chunk 4 KiB, a panel's 8 KiB: both in L1); an item is at most ROW_BLOCKS blocks of 4 rows. */
const KC = 256
const ROW_BLOCKS = 16
/**
 * An untransposed B (k, n) is read as given up to this many rows of C, and packed above: reading it in place
 * skips a copy of k·n floats, while packing keeps a panel's chunk contiguous in L1 for the many blocks that reuse
 * it (alternating in one process, 1 thread: as given / packed 0.22x at 8×1024×128, 0.36x at 16×128×512, 0.69x at
 * 64×128×128, 0.95x at 128×1024×128; 1.06-1.08x at 1024×{128,512}×{512,128}, 1.2x at 512×1024×128).
 */
const B_AS_GIVEN_MAX_ROWS = 128

// job parameters in the pool's control words: the item counter, shapes, and where each operand is (in floats
// from the start of the memory): A as given, B packed or as given, C, and the bias row padded to C's width (zeros without one)
const NEXT = PARAMS,
  ITEMS = PARAMS + 1,
  BATCH = PARAMS + 2,
  M = PARAMS + 3,
  KK = PARAMS + 4,
  N = PARAMS + 5
const TRANS_A = PARAMS + 6,
  RANGE = PARAMS + 7,
  A = PARAMS + 8,
  B = PARAMS + 9,
  C = PARAMS + 10,
  B_PACKED = PARAMS + 11,
  BIAS = PARAMS + 12

/** The call's shapes as the control words hold them. */
function layoutOf(ctl: Int32Array): Layout {
  const m = ctl[M],
    n = ctl[N]
  return { batch: ctl[BATCH], m, k: ctl[KK], n, mBlocks: Math.ceil(m / 4), nPanels: Math.ceil(n / 8) }
}

/**
 * Take items from the shared counter until none is left. An item is up to RANGE blocks of 4 rows of C for one
 * batch entry t: C = bias + A·B, chunk by chunk of p (the first starting from the bias row, or zeros), panel by
 * panel. A_t is read in place: op(A_t)[i][p] at byte aRow·i + aStep·p from its start, stored (m, k) or (k, m).
 */
function runItems(ctl: Int32Array, panel: Panel): void {
  const L = layoutOf(ctl),
    { m, k, mBlocks, nPanels } = L,
    range = ctl[RANGE]
  const perEntry = Math.ceil(mBlocks / range),
    ldc = nPanels * 8
  const aRow = ctl[TRANS_A] === 1 ? 4 : 4 * k,
    aStep = ctl[TRANS_A] === 1 ? 4 * m : 4
  const packed = ctl[B_PACKED] === 1,
    bStep = packed ? 32 : 4 * L.n // B packed in panels, or as given (k, n)
  const bChunk = (t: number, jb: number, p0: number) =>
    4 * (ctl[B] + (packed ? ((t * nPanels + jb) * k + p0) * 8 : t * k * L.n + p0 * L.n + jb * 8))
  for (let item = Atomics.add(ctl, NEXT, 1); item < ctl[ITEMS]; item = Atomics.add(ctl, NEXT, 1)) {
    const t = Math.floor(item / perEntry),
      ib0 = (item % perEntry) * range,
      ib1 = Math.min(ib0 + range, mBlocks)
    const aRows = 4 * (ctl[A] + t * m * k) + 4 * ib0 * aRow // &op(A_t)[4·ib0][0], in bytes
    const cRows = ctl[C] + (t * mBlocks * 4 + ib0 * 4) * ldc // &C_t[4·ib0][0]
    for (let p0 = 0; p0 < k; p0 += KC) {
      for (let jb = 0; jb < nPanels; jb++) {
        const init = p0 === 0 ? 4 * (ctl[BIAS] + jb * 8) : 0 // the first chunk starts from the bias (or 0), the rest from C
        panel(
          aRows + p0 * aStep,
          aRow,
          aStep,
          bChunk(t, jb, p0),
          bStep,
          4 * (cRows + jb * 8),
          init,
          ib1 - ib0,
          Math.min(KC, k - p0),
          4 * ldc,
        )
      }
    }
  }
}

/** Whether A·Bᵀ takes the row kernel: few rows (one per token in generation), k in whole vectors. */
const byRows = (m: number, k: number, flags: MatmulFlags) =>
  m < WASM_ROWS_BELOW && flags.transB === true && flags.transA !== true && k % 4 === 0

/**
 * C_t = A_t·B_tᵀ (+ bias), k a multiple of 4, on the one-thread module: each row of C is n dot products of a row of A
 * with B's rows as given (rowDotsKernel), 4 rows of B at a time; C's rows are padded to nPad (the extra sums read
 * past B and are dropped).
 */
export function wasmRows(
  a: Float32Array,
  b: Float32Array,
  batch: number,
  m: number,
  k: number,
  n: number,
  bias?: Float32Array,
): Float32Array {
  const nPad = Math.ceil(n / 4) * 4
  const {
    floats,
    at: [aA, aB, aC],
  } = regions([batch * m * k, (batch * n + nPad - n) * k, batch * m * nPad])
  floats.set(a.subarray(0, batch * m * k), aA)
  floats.set(b.subarray(0, batch * n * k), aB)
  for (let row = 0; row < batch * m; row++) {
    // C starts from the bias, or zeros
    if (bias) floats.set(bias.subarray(0, n), aC + row * nPad)
    else floats.fill(0, aC + row * nPad, aC + row * nPad + n)
  }
  const rowDots = singleThread().run.rowDots
  for (let t = 0; t < batch; t++)
    for (let i = 0; i < m; i++)
      rowDots(4 * (aA + (t * m + i) * k), 4 * (aB + t * n * k), 4 * (aC + (t * m + i) * nPad), nPad, k)
  return unpadRows(floats, aC, batch * m, n, nPad)
}

/** `batch` products op(A_t)·op(B_t): a few rows of A·Bᵀ on the row kernel, the rest on the 4 × 8 kernel (threads: on the pool's). */
export function wasmMatmul(
  a: Float32Array,
  b: Float32Array,
  batch: number,
  m: number,
  k: number,
  n: number,
  flags: MatmulFlags,
  threads: boolean,
): Float32Array {
  if (m === 0 || n === 0 || k === 0) return new Float32Array(batch * m * n) // the kernels' loops run at least once
  return byRows(m, k, flags)
    ? wasmRows(a, b, batch, m, k, n, flags.bias)
    : wasmPanels(a, b, batch, m, k, n, flags, threads)
}

/** `batch` products op(A_t)·op(B_t) through the 4 × 8 microkernel, on one thread or on the pool's; m, k, n ≥ 1. */
export function wasmPanels(
  a: Float32Array,
  b: Float32Array,
  batch: number,
  m: number,
  k: number,
  n: number,
  flags: MatmulFlags,
  threads: boolean,
): Float32Array {
  const L: Layout = { batch, m, k, n, mBlocks: Math.ceil(m / 4), nPanels: Math.ceil(n / 8) }
  const pool = threads ? sharedPool() : undefined
  const shared = pool !== undefined && !pool.failure
  const module = shared ? poolThreads(pool) : singleThread()
  // A, then zeros for what a last block of 4 rows reads past it (up to 3 rows of k, or 3 floats when transposed)
  const aSize = Math.ceil((batch * m * k + 3 * k + 3) / 4) * 4
  const packed = flags.transB === true || m > B_AS_GIVEN_MAX_ROWS
  const bSize = packed ? batch * L.nPanels * 8 * k : Math.ceil((batch * k * n + 8) / 4) * 4,
    cSize = batch * L.mBlocks * 4 * L.nPanels * 8
  const base = DATA_BYTE / 4
  const biasSize = L.nPanels * 8 // the bias row padded with zeros, or all zeros
  if (!growTo(module.memory, 4 * (aSize + bSize + cSize + biasSize)))
    return cpuMatmulBatched(a, b, batch, m, k, n, flags) // past 1 GiB
  const memory = new Float32Array(module.memory.buffer)
  const ctl = new Int32Array(module.memory.buffer, 0, PARAMS + 16)
  ctl[BATCH] = batch
  ctl[M] = m
  ctl[KK] = k
  ctl[N] = n
  ctl[TRANS_A] = flags.transA ? 1 : 0
  ctl[A] = base
  ctl[B] = base + aSize
  ctl[C] = ctl[B] + bSize
  ctl[RANGE] = Math.min(ROW_BLOCKS, Math.max(1, Math.ceil(L.mBlocks / (4 * (shared ? pool.size + 1 : 1)))))
  ctl[ITEMS] = batch * Math.ceil(L.mBlocks / ctl[RANGE])
  memory.set(a.subarray(0, batch * m * k), base)
  memory.fill(0, base + batch * m * k, base + aSize)
  ctl[B_PACKED] = packed ? 1 : 0
  ctl[BIAS] = ctl[C] + cSize
  memory.fill(0, ctl[BIAS], ctl[BIAS] + biasSize)
  if (flags.bias) memory.set(flags.bias.subarray(0, n), ctl[BIAS])
  if (packed) packB(b, flags.transB ?? false, L, memory, ctl[B])
  else {
    memory.set(b.subarray(0, batch * k * n), ctl[B])
    memory.fill(0, ctl[B] + batch * k * n, ctl[B] + bSize)
  }
  Atomics.store(ctl, NEXT, 0)
  if (!shared) {
    runItems(ctl, module.run.panel)
    return unpackC(memory, ctl[C], L)
  }
  pool.start()
  const taken = pool.post(WASM_PANELS)
  runItems(ctl, module.run.panel)
  try {
    pool.join(taken, { takeBack: true }) // every item is taken: a worker that has not woken yet is not waited for
  } catch {
    return cpuMatmulBatched(a, b, batch, m, k, n, flags) // the pool is retired; its failure says why
  }
  return unpackC(memory, ctl[C], L)
}

/** A worker's share of a WASM_PANELS job (worker.ts calls it), on its own instance of the module. */
let workerPanel: Panel | undefined
export function wasmJob(end: WorkerEnd): void {
  workerPanel ??= instantiate(end.init.memory, true).panel
  runItems(end.ctl, workerPanel)
  end.progress()
}

/**
 * The backend's kernel-table entries: small products on the TS kernels, the rest on 1 thread or on all.
 * everySize sends every product to the SIMD kernel (and to the threads, if any), as the tests do.
 */
export function wasmKernels({
  threads,
  everySize = false,
}: {
  threads: boolean
  everySize?: boolean
}): Pick<Kernels, 'matmul' | 'matmulBatched'> & Partial<Kernels> {
  return {
    ...matmulKernels(threads, everySize),
    ...elementwiseKernels(everySize),
    ...attentionKernels(everySize),
    ...softmaxKernels(everySize),
    ...layerNormKernels(everySize),
    ...reduceKernels(everySize),
  }
}

function matmulKernels(threads: boolean, everySize: boolean): Pick<Kernels, 'matmul' | 'matmulBatched'> {
  const route = (batch: number, m: number, k: number, n: number, flags: MatmulFlags) =>
    everySize || (batch * m * k * n >= WASM_MIN_FLOPS && (m >= WASM_MIN_ROWS || byRows(m, k, flags)))
  const shared = (batch: number, m: number, k: number, n: number) =>
    threads && (everySize || batch * m * k * n >= WASM_THREADS_MIN_FLOPS)
  return {
    matmul: (a, b, m, k, n, flags = {}) =>
      route(1, m, k, n, flags)
        ? wasmMatmul(a, b, 1, m, k, n, flags, shared(1, m, k, n))
        : cpuMatmul(a, b, m, k, n, flags),
    matmulBatched: (a, b, batch, m, k, n, flags = {}) =>
      route(batch, m, k, n, flags)
        ? wasmMatmul(a, b, batch, m, k, n, flags, shared(batch, m, k, n))
        : cpuMatmulBatched(a, b, batch, m, k, n, flags),
  }
}
