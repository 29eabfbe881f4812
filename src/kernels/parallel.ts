// Matmul on every core, still synchronous: the calling thread and worker_threads (pool.ts) take blocks
// of rows of C from one shared counter, so a slow or late worker only means the caller takes more.
// Every block runs matmulNT on the same operands the CPU table would use: results are bit-identical.
import { availableParallelism } from 'node:os'
import { matmulNT, transpose2d, matmul as cpuMatmul, matmulBatched as cpuMatmulBatched, type MatmulFlags } from './matmul.js'
import { WorkerPool, WorkerEnd, PARAMS, BUSY, type WorkerInit } from './pool.js'

/**
 * Products with m·k·n (× batch) below this stay on the CPU table. bench/backends.ts on the idle 2-core VM
 * (Xeon, 2026-11-28), parallel NT / cpu NT: 0.88× at 48³, 1.12× at 64³, 1.61× at 80³, 1.87× at 128³, 2.1× at 256³+.
 */
export const PARALLEL_MIN_FLOPS = 80 * 80 * 80
/** Below 8 rows of C a product has too few 3-row blocks to share (and the CPU's m < 3 path differs). */
const MIN_ROWS = 8
const MAX_WORKERS = 7
const BLOCK_ROWS = 3

// job parameters in the pool's ctl: the next free block, blocks done by workers, and the shape
const NEXT = PARAMS, BY_WORKERS = PARAMS + 1, BATCH = PARAMS + 2, M = PARAMS + 3, K = PARAMS + 4, N = PARAMS + 5, ROWS = PARAMS + 6, ITEMS = PARAMS + 7

let pool: WorkerPool | null = null
function getPool(): WorkerPool {
  pool ??= new WorkerPool(Math.max(0, Math.min(availableParallelism() - 1, MAX_WORKERS)), import.meta.url, 'matmulWorker')
  return pool
}

/** Threads this path uses (caller + workers), ready workers, blocks done by workers so far, and why it is off if it is. */
export function parallelInfo(): { threads: number; workersReady: number; blocksByWorkers: number; failure: string } {
  const p = getPool()
  const failure = p.failure || (p.size === 0 ? `one core (availableParallelism() = ${availableParallelism()})` : '')
  return { threads: p.size + 1, workersReady: p.started ? p.readyCount() : 0, blocksByWorkers: p.ctl[BY_WORKERS], failure }
}

/** Start the workers and block until they are ready (or timeoutMs). Returns parallelInfo(). */
export function startParallel(timeoutMs = 10_000): ReturnType<typeof parallelInfo> {
  const p = getPool()
  if (p.size > 0) p.waitReady(timeoutMs)
  return parallelInfo()
}

/** C = op(A)·op(B) on all threads above PARALLEL_MIN_FLOPS, else the CPU table. Same contract as cpu.matmul. */
export function matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number, flags: MatmulFlags = {}): Float32Array {
  if (!worthSharing(1, m, k, n)) return cpuMatmul(a, b, m, k, n, flags)
  return matmulAllThreads(a, b, 1, m, k, n, flags)
}

/** `batch` products op(A_i)·op(B_i) on all threads; same contract as cpu.matmulBatched. */
export function matmulBatched(a: Float32Array, b: Float32Array, batch: number, m: number, k: number, n: number, flags: MatmulFlags = {}): Float32Array {
  if (!worthSharing(batch, m, k, n)) return cpuMatmulBatched(a, b, batch, m, k, n, flags)
  return matmulAllThreads(a, b, batch, m, k, n, flags)
}

function worthSharing(batch: number, m: number, k: number, n: number): boolean {
  return batch * m * k * n >= PARALLEL_MIN_FLOPS && m >= MIN_ROWS && getPool().size > 0 && !getPool().failure
}

/**
 * `batch` products op(A_i)·op(B_i) on all threads whatever their size (the table entries above add the
 * threshold). Lays out A' (batch, m, k), B' (batch, n, k) and C (batch, m, n) in shared memory, A' and B'
 * being the operands matmulNT wants (op(A) and op(B)ᵀ, row-major), then splits C into blocks of rows.
 * callerWorks = false leaves every block to the workers (tests use it to prove the workers compute).
 */
export function matmulAllThreads(a: Float32Array, b: Float32Array, batch: number, m: number, k: number, n: number, { transA = false, transB = false }: MatmulFlags = {}, { callerWorks = true } = {}): Float32Array {
  const p = getPool()
  if (p.size === 0 || p.failure) return cpuMatmulBatched(a, b, batch, m, k, n, { transA, transB })
  p.start() // lazily, once; until the workers are up the caller takes every block
  const aSize = batch * m * k, bSize = batch * n * k, cSize = batch * m * n
  const data = p.reserve(aSize + bSize + cSize)
  for (let t = 0; t < batch; t++) {
    const aT = a.subarray(t * m * k, (t + 1) * m * k), bT = b.subarray(t * k * n, (t + 1) * k * n)
    data.set(transA ? transpose2d(aT, k, m) : aT, t * m * k) // A' = op(A): (m, k)
    data.set(transB ? bT : transpose2d(bT, k, n), aSize + t * n * k) // B' = op(B)ᵀ: (n, k)
  }
  data.fill(0, aSize + bSize, aSize + bSize + cSize) // matmulNT accumulates
  // blocks of 4 rows (matmulNT's unroll): each streams all of B'_t, as matmulNT does per 4 rows anyway, and the
  // wait for a thread's last block stays short when the OS deschedules it (the VM is shared)
  const rows = BLOCK_ROWS
  const ctl = p.ctl
  ctl[BATCH] = batch; ctl[M] = m; ctl[K] = k; ctl[N] = n; ctl[ROWS] = rows
  ctl[ITEMS] = batch * Math.ceil(m / rows)
  Atomics.store(ctl, NEXT, 0)
  const taken = p.post()
  if (callerWorks || taken.length === 0) runBlocks(ctl, data)
  try {
    p.join(taken)
  } catch {
    return cpuMatmulBatched(a, b, batch, m, k, n, { transA, transB }) // the pool is retired; parallelInfo() says why
  }
  return data.slice(aSize + bSize, aSize + bSize + cSize)
}

/** Take blocks of rows from the shared counter until none is left; each is one matmulNT call. Returns blocks done. */
function runBlocks(ctl: Int32Array, data: Float32Array, end?: WorkerEnd): number {
  const batch = ctl[BATCH], m = ctl[M], k = ctl[K], n = ctl[N], rows = ctl[ROWS], items = ctl[ITEMS]
  const perMatrix = Math.ceil(m / rows)
  const bBase = batch * m * k, cBase = bBase + batch * n * k
  let done = 0
  for (let item = Atomics.add(ctl, NEXT, 1); item < items; item = Atomics.add(ctl, NEXT, 1)) {
    const t = Math.floor(item / perMatrix), r0 = (item % perMatrix) * rows, r1 = Math.min(r0 + rows, m)
    const aRows = data.subarray((t * m + r0) * k, (t * m + r1) * k) // rows r0..r1 of A'_t
    const bAll = data.subarray(bBase + t * n * k, bBase + (t + 1) * n * k) // all of B'_t
    matmulNT(aRows, bAll, data.subarray(cBase + (t * m + r0) * n, cBase + (t * m + r1) * n), r1 - r0, k, n)
    end?.progress()
    done++
  }
  return done
}

/** Worker entry (run by worker.mjs): wait for a job, take blocks, go idle, forever. */
export function matmulWorker(init: WorkerInit): void {
  const end = new WorkerEnd(init)
  end.idle()
  for (;;) {
    end.waitForJob()
    if (end.state() !== BUSY) return
    const done = runBlocks(end.ctl, end.data(), end)
    Atomics.add(end.ctl, BY_WORKERS, done)
    end.idle()
  }
}
