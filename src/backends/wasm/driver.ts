// The wasm backend's matmul driver: what K.matmul runs on the wasm backend. It plans a call (where each operand goes,
// how rows of C are split into items), writes A, B (packed by pack.ts, or as given) and the bias row into the
// module's memory and the plan into the thread pool's control words (threads/pool.ts), then runs the generated
// 4 × 8 kernel (matmul.ts) on items of rows of C — on this thread, or on every thread, each taking items from one
// shared counter — and copies C out. A·Bᵀ with few rows takes the row kernel instead. A product past the memory's
// 1 GiB, or a pool that has failed, runs on the TS kernels.
import { matmul as cpuMatmul, matmulBatched as cpuMatmulBatched, type MatmulFlags } from '../../kernels/matmul.js'
import type { Kernels } from '../../kernels/index.js'
import { DATA_BYTE, PARAMS, growTo, sharedPool, type WorkerEnd, type WorkerPool } from '../threads/pool.js'
import type { WasmMemory } from '../webassembly.js'
import { instantiate, newMemory, wasmModule } from './emit.js'
import { panelKernel, rowDotsKernel, type Panel, type RowDots } from './matmul.js'
import { packB, unpackC, type Layout } from './pack.js'

/**
 * Products below these sizes stay on the TS kernels, and threads join only above the third: crossovers measured
 * by bench/backends.ts (2-core EPYC VM, Node 20, 2026-12-01, alternating calls): wasm / TS A·Bᵀ 0.64× at 12³,
 * 1.27× at 16³, 2.8× at 32³; at k = 128, n = 384 wasm wins from m = 4 (packing B costs too much for fewer rows);
 * 2 threads / 1 thread 0.68× at 64³, 0.82× at 96³, 1.12× at 128³, 1.24× at 192³, ~1.65× at 512³.
 */
export const WASM_MIN_FLOPS = 16 * 16 * 16
export const WASM_MIN_ROWS = 4
export const WASM_THREADS_MIN_FLOPS = 128 * 128 * 128
/**
 * A·Bᵀ with fewer rows than this takes the row kernel (wasmRows), which reads B as given, instead of packing B for
 * the 4 × 8 kernel: alternating in one process, 1 thread, row kernel / TS kernel 5.7× at (1, 128, 384); panels /
 * rows 5.6× at m = 4, 1.6× at 32, 1.2× at 64 and 0.7× at 1024 for (m, 128, 384), and 1.04-1.2× at m = 64 for
 * (m, 256-1024, 256-1024) against panels on 2 threads.
 */
export const WASM_ROWS_BELOW = 64
/** This backend's job kind in the pool's JOB word (worker.ts dispatches on it). */
export const WASM_PANELS = 2
/** 1 GiB of 64 KiB pages: the private memory's maximum, as the pool's shared memory's. */
export const MAX_PAGES = 16384

/**
 * Chunks of KC values of p (a block's chunk 4 KiB, a panel's 8 KiB: both in L1); items of ≤ ROW_BLOCKS blocks of 4
 * rows.
 */
const KC = 256
const ROW_BLOCKS = 16
/**
 * An untransposed B (k, n) is read as given up to this many rows of C, and packed above: reading it in place
 * skips a copy of k·n floats, while packing keeps a panel's chunk contiguous in L1 for the many blocks that reuse
 * it (alternating in one process, 1 thread: as given / packed 0.22x at 8×1024×128, 0.36x at 16×128×512, 0.69x at
 * 64×128×128, 0.95x at 128×1024×128; 1.06-1.08x at 1024×{128,512}×{512,128}, 1.2x at 512×1024×128).
 */
const B_AS_GIVEN_MAX_ROWS = 128

// ---- the module and its memories ------------------------------------------------------------------------------

type MatmulExports = { panel: Panel; rowDots: RowDots }
const matmulModule = (shared: boolean) =>
  wasmModule({ shared, minPages: 1, maxPages: MAX_PAGES }, { panel: panelKernel(), rowDots: rowDotsKernel() })

let memory: WasmMemory | undefined
let single: MatmulExports | undefined // this thread's instance on its private memory
let pooled: MatmulExports | undefined // this thread's instance on the pool's shared memory
let worker: MatmulExports | undefined // a worker thread's instance on the same shared memory
/** This thread's private memory (grown as calls need): the one-thread products and the other kernels (module.ts). */
export const privateMemory = (): WasmMemory => (memory ??= newMemory(MAX_PAGES))
const onPrivate = () => (single ??= instantiate<MatmulExports>(matmulModule(false), privateMemory()))
const onPool = (pool: WorkerPool) => (pooled ??= instantiate<MatmulExports>(matmulModule(true), pool.memory))

// ---- the job: a plan in the pool's control words ---------------------------------------------------------------

/** A job: one control word each, after the item counter (NEXT_ITEM); offsets are in floats from the memory's start. */
const JOB_WORDS = [
  'batch', // products in the call
  'm', // rows of op(A) and C
  'k', // columns of op(A), rows of op(B)
  'n', // columns of op(B) and C
  'aTransposed', // 1: each A is stored (k, m)
  'bPacked', // 1: B in panels of 8 columns (pack.ts); 0: as given, (k, n)
  'blocksPerItem', // blocks of 4 rows of C an item covers
  'items', // items in all (batch · items per product)
  'aAt', // where A starts
  'bAt', // where B starts
  'cAt', // where C starts, its rows padded to whole blocks and panels
  'biasAt', // where the bias row starts (zeros without a bias)
] as const
type Job = Record<(typeof JOB_WORDS)[number], number>
const NEXT_ITEM = PARAMS
const controlWords = (memory: WasmMemory) => new Int32Array(memory.buffer, 0, NEXT_ITEM + 1 + JOB_WORDS.length)
const layoutOf = ({ batch, m, k, n }: Pick<Job, 'batch' | 'm' | 'k' | 'n'>): Layout => ({
  batch,
  m,
  k,
  n,
  mBlocks: Math.ceil(m / 4),
  nPanels: Math.ceil(n / 8),
})
const ceil4 = (floats: number) => Math.ceil(floats / 4) * 4

/** Where each operand goes and how C's rows are split among `threads` threads; `end`: the float after the last. */
function plan(
  batch: number,
  m: number,
  k: number,
  n: number,
  flags: MatmulFlags,
  threads: number,
): { job: Job; end: number } {
  const { mBlocks, nPanels } = layoutOf({ batch, m, k, n })
  const bPacked = flags.transB === true || m > B_AS_GIVEN_MAX_ROWS
  const aAt = DATA_BYTE / 4
  const bAt = aAt + ceil4(batch * m * k + 3 * k + 3) // A, then zeros for what a last block of 4 rows reads past it
  const cAt = bAt + (bPacked ? batch * nPanels * 8 * k : ceil4(batch * k * n + 8)) // panels, or B and 8 zeros
  const biasAt = cAt + batch * mBlocks * 4 * nPanels * 8 // C's rows padded to whole blocks and panels
  const blocksPerItem = Math.min(ROW_BLOCKS, Math.max(1, Math.ceil(mBlocks / (4 * threads)))) // ~4 items a thread
  const items = batch * Math.ceil(mBlocks / blocksPerItem)
  const aTransposed = flags.transA ? 1 : 0
  const job = { batch, m, k, n, aTransposed, bPacked: bPacked ? 1 : 0, blocksPerItem, items, aAt, bAt, cAt, biasAt }
  return { job, end: biasAt + nPanels * 8 }
}

function writeJob(ctl: Int32Array, job: Job): void {
  JOB_WORDS.forEach((word, i) => (ctl[NEXT_ITEM + 1 + i] = job[word]))
  Atomics.store(ctl, NEXT_ITEM, 0)
}
const readJob = (ctl: Int32Array) =>
  Object.fromEntries(JOB_WORDS.map((word, i) => [word, ctl[NEXT_ITEM + 1 + i]])) as Job

/** A as given (zeros after it), B packed or as given (zeros after it), and the bias row padded with zeros. */
function writeOperands(floats: Float32Array, job: Job, a: Float32Array, b: Float32Array, flags: MatmulFlags): void {
  const { batch, m, k, n, aAt, bAt, cAt, biasAt } = job
  floats.set(a.subarray(0, batch * m * k), aAt)
  floats.fill(0, aAt + batch * m * k, bAt)
  if (job.bPacked) packB(b, flags.transB === true, layoutOf(job), floats, bAt)
  else {
    floats.set(b.subarray(0, batch * k * n), bAt)
    floats.fill(0, bAt + batch * k * n, cAt)
  }
  floats.fill(0, biasAt, biasAt + layoutOf(job).nPanels * 8)
  if (flags.bias) floats.set(flags.bias.subarray(0, n), biasAt)
}

/**
 * Take items from the shared counter until none is left. An item is up to blocksPerItem blocks of 4 rows of C for
 * one batch entry t: C = bias + A·B, chunk by chunk of p (the first starting from the bias row), panel by panel.
 * A_t is read in place: op(A_t)[i][p] at byte aRow·i + aStep·p from its start, stored (m, k) or (k, m).
 */
function runItems(job: Job, ctl: Int32Array, panel: Panel): void {
  const { m, k, n, mBlocks, nPanels } = { ...job, ...layoutOf(job) }
  const perEntry = Math.ceil(mBlocks / job.blocksPerItem),
    ldc = nPanels * 8
  const aRow = job.aTransposed ? 4 : 4 * k,
    aStep = job.aTransposed ? 4 * m : 4
  const bStep = job.bPacked ? 32 : 4 * n // a packed panel's row of 8, or B's row as given
  const bChunk = (t: number, jb: number, p0: number) =>
    4 * (job.bAt + (job.bPacked ? ((t * nPanels + jb) * k + p0) * 8 : t * k * n + p0 * n + jb * 8))
  for (let item = Atomics.add(ctl, NEXT_ITEM, 1); item < job.items; item = Atomics.add(ctl, NEXT_ITEM, 1)) {
    const t = Math.floor(item / perEntry),
      ib0 = (item % perEntry) * job.blocksPerItem,
      blocks = Math.min(job.blocksPerItem, mBlocks - ib0)
    const aRows = 4 * (job.aAt + t * m * k) + 4 * ib0 * aRow // &op(A_t)[4·ib0][0], in bytes
    const cRows = job.cAt + (t * mBlocks * 4 + ib0 * 4) * ldc // &C_t[4·ib0][0], in floats
    for (let p0 = 0; p0 < k; p0 += KC)
      for (let jb = 0; jb < nPanels; jb++) {
        const init = p0 === 0 ? 4 * (job.biasAt + jb * 8) : 0 // the first chunk starts from the bias, the rest from C
        const kc = Math.min(KC, k - p0)
        panel(
          aRows + p0 * aStep,
          aRow,
          aStep,
          bChunk(t, jb, p0),
          bStep,
          4 * (cRows + jb * 8),
          init,
          blocks,
          kc,
          4 * ldc,
        )
      }
  }
}

// ---- running it -------------------------------------------------------------------------------------------------

/** `batch` products op(A_t)·op(B_t) through the 4 × 8 kernel, on this thread or on the pool's; m, k, n ≥ 1. */
export function wasmPanels(
  a: Float32Array,
  b: Float32Array,
  batch: number,
  m: number,
  k: number,
  n: number,
  flags: MatmulFlags,
  threads: boolean,
  { callerWorks = true } = {},
): Float32Array {
  const pool = threads ? sharedPool() : undefined
  const shared = pool !== undefined && !pool.failure
  const memory = shared ? pool.memory : privateMemory()
  const { job, end } = plan(batch, m, k, n, flags, shared ? pool.size + 1 : 1)
  if (!growTo(memory, 4 * end - DATA_BYTE)) return cpuMatmulBatched(a, b, batch, m, k, n, flags) // past 1 GiB
  const floats = new Float32Array(memory.buffer)
  writeOperands(floats, job, a, b, flags)
  const ctl = controlWords(memory)
  writeJob(ctl, job)
  if (!shared) runItems(job, ctl, onPrivate().panel)
  else if (!runOnPool(pool, job, ctl, callerWorks)) return cpuMatmulBatched(a, b, batch, m, k, n, flags) // pool failed
  return unpackC(floats, job.cAt, layoutOf(job))
}

/**
 * Wake the workers on the job, take items alongside them (callerWorks = false: only if none woke, as auto does to
 * warm them), wait for them; false if the pool failed (and retired).
 */
function runOnPool(pool: WorkerPool, job: Job, ctl: Int32Array, callerWorks: boolean): boolean {
  pool.start()
  const taken = pool.post(WASM_PANELS)
  if (callerWorks || taken.length === 0) runItems(job, ctl, onPool(pool).panel)
  try {
    pool.join(taken, { takeBack: callerWorks }) // the caller took every item: a worker not yet awake is not waited for
    return true
  } catch {
    return false
  }
}

/** A worker's share of a WASM_PANELS job (worker.ts calls it), on its own instance of the module. */
export function wasmJob(end: WorkerEnd): void {
  worker ??= instantiate<MatmulExports>(matmulModule(true), end.init.memory)
  runItems(readJob(end.ctl), end.ctl, worker.panel)
  end.progress()
}

/**
 * Floats of B the row kernel takes per pass: each pass copies this much into the memory and runs every row of A over
 * it while it is still in L2, so B crosses from RAM once (copying all of B first, then reading it back, made the copy
 * cost as much as the kernel: a CPU profile of SmolLM2-shaped generation gave them 1130 and 1038 ms).
 */
const ROWS_PASS_FLOATS = 1 << 15

/**
 * C_t = A_t·B_tᵀ (+ bias), k a multiple of 4, on this thread: each row of C is n dot products of a row of A with
 * B's rows as given (the row kernel), 4 rows of B at a time, pass by pass of B's rows; C's rows are padded to nPad
 * (the extra sums read past B, into zeros, and are dropped).
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
  const nPad = ceil4(n),
    pass = Math.min(nPad, Math.max(4, Math.floor(ROWS_PASS_FLOATS / k / 4) * 4)) // rows of B per pass, whole 4s
  const aAt = DATA_BYTE / 4,
    bAt = aAt + ceil4(batch * m * k),
    cAt = bAt + pass * k
  const memory = privateMemory()
  if (!growTo(memory, 4 * (cAt + batch * m * nPad) - DATA_BYTE))
    return cpuMatmulBatched(a, b, batch, m, k, n, { transB: true, bias }) // past 1 GiB
  const floats = new Float32Array(memory.buffer)
  floats.set(a.subarray(0, batch * m * k), aAt)
  for (let row = 0; row < batch * m; row++) {
    const cRow = cAt + row * nPad // starts from the bias, or zeros
    if (bias) floats.set(bias.subarray(0, n), cRow)
    else floats.fill(0, cRow, cRow + n)
  }
  const { rowDots } = onPrivate()
  for (let t = 0; t < batch; t++)
    for (let j0 = 0; j0 < n; j0 += pass) {
      const rows = Math.min(pass, n - j0) // B_t's rows j0 … j0 + rows, then zeros up to a whole 4
      floats.set(b.subarray((t * n + j0) * k, (t * n + j0 + rows) * k), bAt)
      floats.fill(0, bAt + rows * k, bAt + ceil4(rows) * k)
      for (let i = 0; i < m; i++)
        rowDots(4 * (aAt + (t * m + i) * k), 4 * bAt, 4 * (cAt + (t * m + i) * nPad + j0), ceil4(rows), k)
    }
  const c = new Float32Array(batch * m * n)
  for (let row = 0; row < batch * m; row++) c.set(floats.subarray(cAt + row * nPad, cAt + row * nPad + n), row * n)
  return c
}

/** Whether A·Bᵀ takes the row kernel: few rows (one per token in generation), k in whole vectors. */
const byRows = (m: number, k: number, flags: MatmulFlags) =>
  m < WASM_ROWS_BELOW && flags.transB === true && flags.transA !== true && k % 4 === 0

/**
 * Floats of operands one product may copy into a module's memory; a larger one (a language model's head over a
 * vocabulary of 50K) runs in pieces. A memory never shrinks, so its largest call stays in RSS for good: at
 * SmolLM2-135M's shape the head's products had grown them to 108 + 157 MB. Every layer's product at GPT-2 and
 * SmolLM2 sizes fits whole.
 */
export const WASM_PIECE_FLOATS = 4 << 20

/** `batch` products op(A_t)·op(B_t): a few rows of A·Bᵀ on the row kernel, the rest on the 4 × 8 kernel. */
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
  if (batch === 1 && !flags.transA && m * k + k * n + m * n > WASM_PIECE_FLOATS) {
    if (flags.transB && m * k < WASM_PIECE_FLOATS / 4) return byColumns(a, b, m, k, n, flags, threads)
    if (!flags.transB && m * n < WASM_PIECE_FLOATS / 4) return byDepth(a, b, m, k, n, flags, threads)
  }
  return wasmWhole(a, b, batch, m, k, n, flags, threads)
}

function wasmWhole(
  a: Float32Array,
  b: Float32Array,
  batch: number,
  m: number,
  k: number,
  n: number,
  flags: MatmulFlags,
  threads: boolean,
): Float32Array {
  if (byRows(m, k, flags)) return wasmRows(a, b, batch, m, k, n, flags.bias)
  return wasmPanels(a, b, batch, m, k, n, flags, threads)
}

/** A·Bᵀ (+ bias), B (n, k), in pieces of B's rows (contiguous), each giving C's columns j0 … j1. */
function byColumns(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  f: MatmulFlags,
  threads: boolean,
) {
  const c = new Float32Array(m * n)
  const width = Math.max(8, Math.floor((WASM_PIECE_FLOATS - m * k) / (k + m) / 8) * 8)
  for (let j0 = 0; j0 < n; j0 += width) {
    const j1 = Math.min(n, j0 + width),
      w = j1 - j0
    const bias = f.bias?.subarray(j0, j1)
    const part = wasmWhole(a, b.subarray(j0 * k, j1 * k), 1, m, k, w, { transB: true, bias }, threads) // (m, w)
    for (let i = 0; i < m; i++) c.set(part.subarray(i * w, (i + 1) * w), i * n + j0)
  }
  return c
}

/** A·B (+ bias), B (k, n), in pieces of B's rows p0 … p1 (contiguous) times A's columns p0 … p1, summed. */
function byDepth(a: Float32Array, b: Float32Array, m: number, k: number, n: number, f: MatmulFlags, threads: boolean) {
  const c = new Float32Array(m * n)
  if (f.bias) for (let i = 0; i < m; i++) c.set(f.bias.subarray(0, n), i * n)
  const depth = Math.max(8, Math.floor((WASM_PIECE_FLOATS - m * n) / (m + n)))
  for (let p0 = 0; p0 < k; p0 += depth) {
    const p1 = Math.min(k, p0 + depth),
      d = p1 - p0
    const aPart = new Float32Array(m * d) // (m, d): A's columns p0 … p1
    for (let i = 0; i < m; i++) aPart.set(a.subarray(i * k + p0, i * k + p1), i * d)
    const part = wasmWhole(aPart, b.subarray(p0 * n, p1 * n), 1, m, d, n, {}, threads) // (m, n)
    for (let x = 0; x < m * n; x++) c[x] += part[x]
  }
  return c
}

/**
 * K's matmul entries on the wasm backend: small products on the TS kernels, the rest on this thread or on all
 * (threads). everySize sends every product to the SIMD kernels (and to the threads, if any), as the tests do.
 */
export function matmulKernels(threads: boolean, everySize: boolean): Pick<Kernels, 'matmul' | 'matmulBatched'> {
  // below WASM_MIN_ROWS only where B needs no packing: A·Bᵀ on the row kernel, A·B read as given (GPT-2's Conv1D in
  // generation: wasm / TS 12-48× at m = 1-3 for (128, 384) to (3072, 768), where the TS kernel transposes B)
  const unpacked = (m: number, k: number, flags: MatmulFlags) => byRows(m, k, flags) || (!flags.transA && !flags.transB)
  const route = (batch: number, m: number, k: number, n: number, flags: MatmulFlags) =>
    everySize || (batch * m * k * n >= WASM_MIN_FLOPS && (m >= WASM_MIN_ROWS || unpacked(m, k, flags)))
  const onThreads = (batch: number, m: number, k: number, n: number) =>
    threads && (everySize || batch * m * k * n >= WASM_THREADS_MIN_FLOPS)
  return {
    matmul: (a, b, m, k, n, flags = {}) =>
      route(1, m, k, n, flags)
        ? wasmMatmul(a, b, 1, m, k, n, flags, onThreads(1, m, k, n))
        : cpuMatmul(a, b, m, k, n, flags),
    matmulBatched: (a, b, batch, m, k, n, flags = {}) =>
      route(batch, m, k, n, flags)
        ? wasmMatmul(a, b, batch, m, k, n, flags, onThreads(batch, m, k, n))
        : cpuMatmulBatched(a, b, batch, m, k, n, flags),
  }
}
