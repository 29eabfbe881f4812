// Worker threads that share one WebAssembly.Memory with the caller, so a kernel can use them and stay
// synchronous: the caller writes operands into the memory and job parameters into its control words, flips
// idle workers to BUSY, works too, and blocks on Atomics.wait until they flip back. No Promise, no event loop.
// A shared memory grows in place (every thread sees the new size), so no buffer is ever re-sent.
import { threadSpawner, type Thread, type ThreadSpawner, type WorkerInit } from './threads.js'
import { webAssembly, type WasmMemory } from '../webassembly.js'

/**
 * A worker's state word. STARTING until its module has loaded; FAILED is final. The caller posts a job by IDLE →
 * BUSY; a pool worker claims it by BUSY → RUNNING, so a caller that did every item itself can take back a job no
 * worker has claimed yet (BUSY → IDLE) instead of waiting for that worker to be scheduled just to find nothing left.
 */
export const STARTING = 0,
  IDLE = 1,
  BUSY = 2,
  FAILED = 3,
  RUNNING = 4
// control words (Int32, at the start of the memory): progress (stall detection), the job's kind, its parameters
const PROGRESS = 0
export const JOB = 1,
  PARAMS = 2
export const STATES = 32 // worker w's state word is ctl[STATES + w]
export const MAX_WORKERS = 31
export const MESSAGE = 512 // a failed worker's reason: its byte length at ctl[MESSAGE], UTF-8 after it
export const MESSAGE_BYTES = 2044
/** Job data starts at this byte offset: the first 64 KiB page holds the control words. */
export const DATA_BYTE = 65536
const PAGE = 65536
const MAX_PAGES = 16384 // 1 GiB: a shared memory must declare its maximum (address space only, not RSS)
const STALL_MS = 20_000 // a job that makes no progress for this long is taken as a hung worker

/** The control words of a shared memory (the caller's and each worker's view of the same ints). */
export const controlOf = (memory: WasmMemory) => new Int32Array(memory.buffer, 0, 1024)

/** A shared memory for `floats` of job data, or why this runtime cannot make one. */
export function sharedMemory(floats = 0): WasmMemory | string {
  if (!webAssembly) return 'no WebAssembly here'
  try {
    return new webAssembly.Memory({ initial: 1 + Math.ceil((4 * floats) / PAGE), maximum: MAX_PAGES, shared: true })
  } catch (err) {
    return `no shared WebAssembly.Memory here (${err instanceof Error ? err.message : String(err)})`
  }
}

/** Grow `memory` so it holds DATA_BYTE + `bytes`; false if that is past its maximum. */
export function growTo(memory: WasmMemory, bytes: number): boolean {
  const need = Math.ceil((DATA_BYTE + bytes) / PAGE) - memory.buffer.byteLength / PAGE
  if (need <= 0) return true
  if (memory.buffer.byteLength / PAGE + need > MAX_PAGES) return false
  memory.grow(need)
  return true
}

/** The caller's side: `size` workers started by `spawn`, all on `memory`. */
export class WorkerPool {
  readonly ctl: Int32Array
  /** why the pool cannot be used ('' while it can) */
  failure = ''
  private threads: Thread[] = []

  constructor(
    readonly size: number,
    readonly memory: WasmMemory,
    private readonly spawn: (init: WorkerInit, onError: (why: string) => void) => Thread,
  ) {
    this.ctl = controlOf(memory)
  }

  get started(): boolean {
    return this.threads.length > 0
  }

  /** Spawn the workers (once). They start in the background; until one is IDLE, post() gives it nothing. */
  start(): void {
    if (this.started || this.failure) return
    for (let w = 0; w < this.size; w++) {
      try {
        this.threads.push(this.spawn({ memory: this.memory, index: w }, (why) => this.fail(w, `worker ${w}: ${why}`)))
      } catch (err) {
        this.fail(w, `worker ${w} could not be started: ${err instanceof Error ? err.message : String(err)}`)
      }
    }
  }

  state(w: number): number {
    return Atomics.load(this.ctl, STATES + w)
  }

  readyCount(): number {
    let ready = 0
    for (let w = 0; w < this.size; w++)
      if (this.state(w) === IDLE || this.state(w) === BUSY || this.state(w) === RUNNING) ready++
    return ready
  }

  /** Block until no worker is STARTING (or timeoutMs passed); record the first failure. Returns the ready count. */
  waitReady(timeoutMs: number): number {
    this.start()
    const deadline = performance.now() + timeoutMs
    for (let w = 0; w < this.size; w++) {
      while (this.state(w) === STARTING && !this.failure && performance.now() < deadline)
        Atomics.wait(this.ctl, STATES + w, STARTING, Math.min(50, Math.max(1, deadline - performance.now())))
      if (this.state(w) === STARTING) this.failure ||= `worker ${w} did not start within ${timeoutMs} ms`
      if (this.state(w) === FAILED) this.fail(w, this.messageFrom() || `worker ${w} failed to start`)
    }
    return this.readyCount()
  }

  /** The job data as floats, from DATA_BYTE on, grown to hold at least `floats` (null past the memory's maximum). */
  reserve(floats: number): Float32Array | null {
    if (!growTo(this.memory, 4 * floats)) return null
    return new Float32Array(this.memory.buffer, DATA_BYTE, floats)
  }

  /** Flip every idle worker to BUSY on job `kind` and wake it; returns the ones that took the job. */
  post(kind: number): number[] {
    this.ctl[JOB] = kind
    const taken: number[] = []
    for (let w = 0; w < this.size; w++) {
      if (Atomics.compareExchange(this.ctl, STATES + w, IDLE, BUSY) !== IDLE) continue
      Atomics.notify(this.ctl, STATES + w)
      taken.push(w)
    }
    return taken
  }

  /**
   * Block until every worker in `taken` is back to IDLE. Throws (and retires the pool) if one failed or hung.
   * takeBack: the caller has taken every item itself, so a job a worker has not claimed yet is withdrawn.
   */
  join(taken: number[], { takeBack = false } = {}): void {
    for (const w of taken) {
      if (takeBack && Atomics.compareExchange(this.ctl, STATES + w, BUSY, IDLE) === BUSY) continue
      let progress = Atomics.load(this.ctl, PROGRESS),
        since = performance.now()
      for (let s = this.state(w); s === BUSY || s === RUNNING; s = this.state(w)) {
        Atomics.wait(this.ctl, STATES + w, s, 1000)
        const now = Atomics.load(this.ctl, PROGRESS)
        if (now !== progress) [progress, since] = [now, performance.now()]
        else if (performance.now() - since > STALL_MS)
          this.fail(w, `worker ${w} made no progress for ${STALL_MS / 1000} s`)
        if (this.failure) break
      }
      if (this.state(w) === FAILED) this.fail(w, this.messageFrom() || `worker ${w} failed`)
      if (this.failure) {
        this.retire(this.failure)
        throw new Error(this.failure)
      }
    }
  }

  /** Stop the workers for good; later calls see `failure` and use another path. */
  retire(why: string): void {
    this.failure ||= why
    for (let w = 0; w < this.size; w++) Atomics.store(this.ctl, STATES + w, FAILED)
    for (let w = 0; w < this.size; w++) Atomics.notify(this.ctl, STATES + w)
    for (const thread of this.threads) thread.terminate()
  }

  private fail(w: number, why: string): void {
    this.failure ||= why
    Atomics.store(this.ctl, STATES + w, FAILED)
  }

  private messageFrom(): string {
    const length = Math.min(Atomics.load(this.ctl, MESSAGE), MESSAGE_BYTES)
    return new TextDecoder().decode(new Uint8Array(this.memory.buffer, 4 * MESSAGE + 4, length).slice())
  }
}

/** The worker's side of the same memory. */
export class WorkerEnd {
  readonly ctl: Int32Array
  /** this worker's state word in ctl */
  readonly slot: number

  constructor(readonly init: WorkerInit) {
    this.ctl = controlOf(init.memory)
    this.slot = STATES + init.index
  }

  state(): number {
    return Atomics.load(this.ctl, this.slot)
  }

  /** Report a step of work done (the caller's stall detector watches this). */
  progress(): void {
    Atomics.add(this.ctl, PROGRESS, 1)
  }

  /** Become (or go back to) IDLE and wake the caller. */
  idle(): void {
    Atomics.store(this.ctl, this.slot, IDLE)
    Atomics.notify(this.ctl, this.slot)
  }

  /** Block this thread until the caller posts a job (state BUSY). */
  waitForJob(): void {
    while (this.state() === IDLE) Atomics.wait(this.ctl, this.slot, IDLE)
  }

  /** Wait for a job and claim it (BUSY → RUNNING): true; false once the pool is retired. Skips a job taken back. */
  claimJob(): boolean {
    for (;;) {
      this.waitForJob()
      const was = Atomics.compareExchange(this.ctl, this.slot, BUSY, RUNNING)
      if (was === BUSY) return true
      if (was !== IDLE) return false
    }
  }

  /** The caller may be blocked on this worker: leave the reason in the memory, then flip the state word. */
  fail(why: string): void {
    if (this.state() === FAILED) return
    const bytes = new TextEncoder().encode(why).subarray(0, MESSAGE_BYTES)
    new Uint8Array(this.init.memory.buffer, 4 * MESSAGE + 4, bytes.length).set(bytes)
    Atomics.store(this.ctl, MESSAGE, bytes.length)
    Atomics.store(this.ctl, this.slot, FAILED)
    Atomics.notify(this.ctl, this.slot)
  }
}

// ---- the pool the backends share ------------------------------------------------------------------

let pool: WorkerPool | undefined
let noMemory = '' // why a shared memory could not be made, once tried

/** Workers to start (one per extra core) with the spawner installed now, or why there can be none. */
function plan(): { size: number; spawner: ThreadSpawner } | string {
  const spawner = threadSpawner()
  if ('failure' in spawner) return spawner.failure
  if (noMemory) return noMemory
  const size = Math.max(0, Math.min(spawner.cores() - 1, MAX_WORKERS))
  return size > 0 ? { size, spawner } : `one core (${spawner.name} reports ${spawner.cores()})`
}

/** The one pool every threaded backend shares, made on first use (not at import); undefined without threads. */
export function sharedPool(): WorkerPool | undefined {
  if (pool) return pool
  const p = plan()
  if (typeof p === 'string') return undefined
  const memory = sharedMemory()
  if (typeof memory === 'string') noMemory = memory
  else pool = new WorkerPool(p.size, memory, (init, onError) => p.spawner.spawn(init, onError))
  return pool
}

/** Start the shared pool's workers and, where the caller may block, wait until they are ready (or timeoutMs). */
export function startPool(timeoutMs = 10_000): WorkerPool | undefined {
  const p = sharedPool()
  const spawner = threadSpawner()
  if (p && !('failure' in spawner) && spawner.canWaitForStart) p.waitReady(timeoutMs)
  else p?.start()
  return p
}

/** Threads the shared pool gives (caller + workers), how many are ready, and why there are none if so. */
export function poolInfo(): { threads: number; workersReady: number; failure: string; pool?: WorkerPool } {
  if (!pool) {
    const p = plan()
    return typeof p === 'string'
      ? { threads: 1, workersReady: 0, failure: p }
      : { threads: p.size + 1, workersReady: 0, failure: '' }
  }
  const threads = pool.failure ? 1 : pool.size + 1 // a failed pool is retired: the caller alone is left
  return { threads, workersReady: pool.started ? pool.readyCount() : 0, failure: pool.failure, pool }
}
