// Matmul on every core, still synchronous: the calling thread and the pool's workers take blocks of 3 rows
// of C (matmulNT's unroll) from one shared counter, so a slow or late worker only means the caller takes more.
// Every block runs matmulNT on the same operands the CPU table would use: results are bit-identical.
import {
  matmulNT,
  transpose2d,
  matmul as cpuMatmul,
  matmulBatched as cpuMatmulBatched,
  type MatmulFlags,
} from '../../kernels/matmul.js'
import { addRowInPlace } from '../../kernels/rows.js'
import type { Kernels } from '../../kernels/index.js'
import { WorkerEnd, PARAMS, DATA_BYTE, sharedPool, startPool, poolInfo } from './pool.js'

/**
 * Products with m·k·n (× batch) below this stay on the CPU table. bench/backends.ts on the idle 2-core VM
 * (Xeon, 2026-11-28), parallel NT / cpu NT: 0.88× at 48³, 1.12× at 64³, 1.61× at 80³, 1.87× at 128³, 2.1× at
 * 256³+.
 */
export const PARALLEL_MIN_FLOPS = 80 * 80 * 80
/** Below 8 rows of C a product has too few 3-row blocks to share (and the CPU's m < 3 path differs). */
const MIN_ROWS = 8
const BLOCK_ROWS = 3
/** This file's job kind in the pool's JOB word (worker.ts dispatches on it). */
export const TS_BLOCKS = 1

// job parameters in the pool's control words: the next free block, blocks done by workers, and the shape
const NEXT = PARAMS,
  BY_WORKERS = PARAMS + 1,
  BATCH = PARAMS + 2,
  M = PARAMS + 3,
  K = PARAMS + 4,
  N = PARAMS + 5,
  ITEMS = PARAMS + 6

/** Threads this path uses (caller + workers), ready workers, blocks done by workers so far, and why it is off if so. */
export function parallelInfo(): { threads: number; workersReady: number; blocksByWorkers: number; failure: string } {
  const { threads, workersReady, failure, pool } = poolInfo()
  return { threads, workersReady, blocksByWorkers: pool ? pool.ctl[BY_WORKERS] : 0, failure }
}

/**
 * Start the workers and, where the caller may block, wait until they are ready (or timeoutMs); parallelInfo() after.
 */
export function startParallel(timeoutMs = 10_000): ReturnType<typeof parallelInfo> {
  startPool(timeoutMs)
  return parallelInfo()
}

/** C = op(A)·op(B) on all threads above PARALLEL_MIN_FLOPS, else the CPU table. Same contract as cpu.matmul. */
export function matmul(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  flags: MatmulFlags = {},
): Float32Array {
  if (!worthSharing(1, m, k, n)) return cpuMatmul(a, b, m, k, n, flags)
  return matmulAllThreads(a, b, 1, m, k, n, flags)
}

/** `batch` products op(A_i)·op(B_i) on all threads; same contract as cpu.matmulBatched. */
export function matmulBatched(
  a: Float32Array,
  b: Float32Array,
  batch: number,
  m: number,
  k: number,
  n: number,
  flags: MatmulFlags = {},
): Float32Array {
  if (!worthSharing(batch, m, k, n)) return cpuMatmulBatched(a, b, batch, m, k, n, flags)
  return matmulAllThreads(a, b, batch, m, k, n, flags)
}

/** This backend's kernel-table entries (index.ts routes the quantized matmuls' tiles through them too). */
export const parallelKernels: Pick<Kernels, 'matmul' | 'matmulBatched'> = { matmul, matmulBatched }

function worthSharing(batch: number, m: number, k: number, n: number): boolean {
  const p = sharedPool()
  return batch * m * k * n >= PARALLEL_MIN_FLOPS && m >= MIN_ROWS && p !== undefined && !p.failure
}

/**
 * `batch` products op(A_i)·op(B_i) on all threads whatever their size (the table entries above add the
 * threshold). Lays out A' (batch, m, k), B' (batch, n, k) and C (batch, m, n) in shared memory, A' and B'
 * being the operands matmulNT wants (op(A) and op(B)ᵀ, row-major), then splits C into blocks of rows.
 * flags.bias is added after, as on the CPU. callerWorks = false leaves every block to the workers (the tests prove the
 * workers compute with it).
 */
export function matmulAllThreads(
  a: Float32Array,
  b: Float32Array,
  batch: number,
  m: number,
  k: number,
  n: number,
  flags: MatmulFlags = {},
  { callerWorks = true } = {},
): Float32Array {
  const { transA = false, transB = false, bias } = flags
  const p = sharedPool()
  const aSize = batch * m * k,
    bSize = batch * n * k,
    cSize = batch * m * n
  const data = p && !p.failure ? p.reserve(aSize + bSize + cSize) : null
  if (!p || !data) return cpuMatmulBatched(a, b, batch, m, k, n, flags)
  p.start() // lazily, once; until the workers are up the caller takes every block
  for (let t = 0; t < batch; t++) {
    const aT = a.subarray(t * m * k, (t + 1) * m * k),
      bT = b.subarray(t * k * n, (t + 1) * k * n)
    data.set(transA ? transpose2d(aT, k, m) : aT, t * m * k) // A' = op(A): (m, k)
    data.set(transB ? bT : transpose2d(bT, k, n), aSize + t * n * k) // B' = op(B)ᵀ: (n, k)
  }
  data.fill(0, aSize + bSize, aSize + bSize + cSize) // matmulNT accumulates
  // each block streams all of B'_t, as matmulNT does per 3 rows anyway, and the wait for a thread's last
  // block stays short when the OS deschedules it (the VM is shared)
  const ctl = p.ctl
  ctl[BATCH] = batch
  ctl[M] = m
  ctl[K] = k
  ctl[N] = n
  ctl[ITEMS] = batch * Math.ceil(m / BLOCK_ROWS)
  Atomics.store(ctl, NEXT, 0)
  const taken = p.post(TS_BLOCKS)
  if (callerWorks || taken.length === 0) runBlocks(ctl, data)
  try {
    // if the caller worked, every block is taken: a worker that has not woken yet is not waited for
    p.join(taken, { takeBack: callerWorks })
  } catch {
    return cpuMatmulBatched(a, b, batch, m, k, n, flags) // the pool is retired; parallelInfo() says why
  }
  const c = data.slice(aSize + bSize, aSize + bSize + cSize)
  if (bias) addRowInPlace(c, bias, batch * m, n) // as the CPU table does, so the results stay bit-identical
  return c
}

/** Take blocks of rows from the shared counter until none is left; each is one matmulNT call. Returns blocks done. */
function runBlocks(ctl: Int32Array, data: Float32Array, end?: WorkerEnd): number {
  const batch = ctl[BATCH],
    m = ctl[M],
    k = ctl[K],
    n = ctl[N],
    items = ctl[ITEMS]
  const perMatrix = Math.ceil(m / BLOCK_ROWS)
  const bBase = batch * m * k,
    cBase = bBase + batch * n * k
  let done = 0
  for (let item = Atomics.add(ctl, NEXT, 1); item < items; item = Atomics.add(ctl, NEXT, 1)) {
    const t = Math.floor(item / perMatrix),
      r0 = (item % perMatrix) * BLOCK_ROWS,
      r1 = Math.min(r0 + BLOCK_ROWS, m)
    const aRows = data.subarray((t * m + r0) * k, (t * m + r1) * k) // rows r0..r1 of A'_t
    const bAll = data.subarray(bBase + t * n * k, bBase + (t + 1) * n * k) // all of B'_t
    matmulNT(aRows, bAll, data.subarray(cBase + (t * m + r0) * n, cBase + (t * m + r1) * n), r1 - r0, k, n)
    end?.progress()
    done++
  }
  return done
}

/** A worker's share of a TS_BLOCKS job (worker.ts calls it). */
export function parallelJob(end: WorkerEnd): void {
  const ctl = end.ctl
  const floats = ctl[BATCH] * (ctl[M] * ctl[K] + ctl[N] * ctl[K] + ctl[M] * ctl[N])
  const done = runBlocks(ctl, new Float32Array(end.init.memory.buffer, DATA_BYTE, floats), end)
  Atomics.add(ctl, BY_WORKERS, done)
}
