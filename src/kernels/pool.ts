// Worker threads that share memory with the calling thread, so a kernel can use them and stay synchronous.
// The caller writes operands into a shared Float32Array and job parameters into a shared Int32Array, flips
// idle workers to BUSY, and blocks on Atomics.wait until they flip back: no Promise, no event loop turn.
import { Worker, MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads'

/** A worker's state word. STARTING until its module has loaded; FAILED is final. */
export const STARTING = 0, IDLE = 1, BUSY = 2, FAILED = 3
/** ctl slots: the data buffer's generation, a progress counter (stall detection), then free job parameters. */
const GEN = 0, PROGRESS = 1
export const PARAMS = 2
const STATES = 32 // worker w's state word is ctl[STATES + w]
const STALL_MS = 20_000 // a job that makes no progress for this long is taken as a hung worker

type WaitAsync = (a: Int32Array, index: number, value: number) => { async: boolean; value: Promise<string> | string }
const waitAsync: WaitAsync = Reflect.get(Atomics, 'waitAsync') // ES2024 (Node ≥ 16); the tsconfig's lib is ES2022

/** What a worker receives (workerData): the module and function it runs, and the shared memory. */
export type WorkerInit = {
  module: string
  entry: string
  index: number
  stateSlot: number
  ctl: SharedArrayBuffer
  port: MessagePort
  options: Record<string, string | number | boolean>
}

/** The caller's side: `size` workers, each running `entry(init)` exported by `module` (a file URL). */
export class WorkerPool {
  readonly ctl: Int32Array
  data = new Float32Array(new SharedArrayBuffer(0))
  /** why the pool cannot be used ('' while it can) */
  failure = ''
  private workers: Worker[] = []
  private ports: MessagePort[] = []

  constructor(readonly size: number, private readonly module: string, private readonly entry: string, private readonly options: WorkerInit['options'] = {}) {
    this.ctl = new Int32Array(new SharedArrayBuffer(4 * (STATES + size)))
  }

  get started(): boolean { return this.workers.length > 0 }

  /** Spawn the workers (once). They start in the background; unref'd, they never keep the process alive. */
  start(): void {
    if (this.started || this.failure) return
    for (let w = 0; w < this.size; w++) {
      const { port1, port2 } = new MessageChannel()
      const init: WorkerInit = { module: this.module, entry: this.entry, index: w, stateSlot: STATES + w, ctl: this.ctl.buffer as SharedArrayBuffer, port: port2, options: this.options }
      // NOTE: no inherited execArgv: worker.mjs loads TypeScript itself, and the caller's flags can include `-e <script>`
      const worker = new Worker(new URL('./worker.mjs', import.meta.url), { workerData: init, transferList: [port2], execArgv: [] })
      worker.on('error', (err) => this.fail(w, `worker ${w} crashed: ${err.message}`))
      worker.unref()
      port1.unref()
      this.workers.push(worker)
      this.ports.push(port1)
    }
    this.reserve(0)
  }

  state(w: number): number { return Atomics.load(this.ctl, STATES + w) }

  readyCount(): number {
    let ready = 0
    for (let w = 0; w < this.size; w++) if (this.state(w) === IDLE || this.state(w) === BUSY) ready++
    return ready
  }

  /** Block until no worker is STARTING (or timeoutMs passed); record the first failure. Returns the ready count. */
  waitReady(timeoutMs: number): number {
    this.start()
    const deadline = performance.now() + timeoutMs
    for (let w = 0; w < this.size; w++) {
      while (this.state(w) === STARTING && performance.now() < deadline) Atomics.wait(this.ctl, STATES + w, STARTING, Math.max(1, deadline - performance.now()))
      if (this.state(w) === STARTING) this.failure ||= `worker ${w} did not start within ${timeoutMs} ms`
      if (this.state(w) === FAILED) this.fail(w, this.messageFrom(w) ?? `worker ${w} failed to start`)
    }
    return this.readyCount()
  }

  /** The shared data array, grown (never shrunk) to at least `floats`; workers pick up a new buffer by its generation. */
  reserve(floats: number): Float32Array {
    if (this.data.length >= floats && this.ctl[GEN] > 0) return this.data
    const length = Math.max(floats, 2 * this.data.length, 1 << 16)
    this.data = new Float32Array(new SharedArrayBuffer(4 * length))
    const gen = this.ctl[GEN] + 1
    for (const port of this.ports) port.postMessage({ gen, buffer: this.data.buffer })
    Atomics.store(this.ctl, GEN, gen) // after the posts: a worker that sees gen finds its message queued
    return this.data
  }

  /** Flip every idle worker to BUSY and wake it; returns the ones that took the job. */
  post(): number[] {
    const taken: number[] = []
    for (let w = 0; w < this.size; w++) {
      if (Atomics.compareExchange(this.ctl, STATES + w, IDLE, BUSY) !== IDLE) continue
      Atomics.notify(this.ctl, STATES + w)
      taken.push(w)
    }
    return taken
  }

  /** Block until every worker in `taken` is back to IDLE. Throws (and retires the pool) if one failed or hung. */
  join(taken: number[]): void {
    for (const w of taken) {
      let progress = Atomics.load(this.ctl, PROGRESS), since = performance.now()
      while (this.state(w) === BUSY) {
        Atomics.wait(this.ctl, STATES + w, BUSY, 1000)
        const now = Atomics.load(this.ctl, PROGRESS)
        if (now !== progress) [progress, since] = [now, performance.now()]
        else if (performance.now() - since > STALL_MS) this.fail(w, `worker ${w} made no progress for ${STALL_MS / 1000} s`)
        if (this.failure) break
      }
      if (this.state(w) === FAILED) this.fail(w, this.messageFrom(w) ?? `worker ${w} failed`)
      if (this.failure) throw new Error(this.failure)
    }
  }

  /** Stop the workers for good; later calls see `failure` and use another path. */
  retire(why: string): void {
    this.failure ||= why
    for (let w = 0; w < this.size; w++) Atomics.store(this.ctl, STATES + w, FAILED)
    for (const worker of this.workers) void worker.terminate()
  }

  private fail(w: number, why: string): void {
    this.failure ||= why
    Atomics.store(this.ctl, STATES + w, FAILED)
  }

  private messageFrom(w: number): string | undefined {
    const got = this.ports[w] && receiveMessageOnPort(this.ports[w])
    return got && typeof got.message === 'object' && got.message !== null && 'error' in got.message ? String(got.message.error) : undefined
  }
}

/** The worker's side of the same memory. */
export class WorkerEnd {
  readonly ctl: Int32Array
  private gen = 0
  private buffer: Float32Array = new Float32Array(0)

  constructor(readonly init: WorkerInit) {
    this.ctl = new Int32Array(init.ctl)
  }

  /** The current shared data array (receiving a newer buffer if the caller grew it). */
  data(): Float32Array {
    const want = Atomics.load(this.ctl, GEN)
    for (let tries = 0; this.gen !== want; tries++) {
      const got = receiveMessageOnPort(this.init.port)
      if (got) {
        const { gen, buffer } = got.message as { gen: number; buffer: SharedArrayBuffer }
        this.gen = gen
        this.buffer = new Float32Array(buffer)
      }
      else if (tries > 5000) throw new Error(`worker ${this.init.index}: shared buffer generation ${want} never arrived`)
      else Atomics.wait(this.ctl, PROGRESS, Atomics.load(this.ctl, PROGRESS), 1) // sleep 1 ms
    }
    return this.buffer
  }

  state(): number { return Atomics.load(this.ctl, this.init.stateSlot) }

  /** Report a step of work done (the caller's stall detector watches this). */
  progress(): void { Atomics.add(this.ctl, PROGRESS, 1) }

  /** Become (or go back to) IDLE and wake the caller. */
  idle(): void {
    Atomics.store(this.ctl, this.init.stateSlot, IDLE)
    Atomics.notify(this.ctl, this.init.stateSlot)
  }

  /** Block this thread until the caller posts a job (state BUSY). */
  waitForJob(): void {
    while (this.state() === IDLE) Atomics.wait(this.ctl, this.init.stateSlot, IDLE)
  }

  /** The same, without blocking the event loop (for workers whose jobs await Promises, e.g. WebGPU readback). */
  async waitForJobAsync(): Promise<void> {
    const keepAlive = setInterval(() => {}, 1 << 30) // NOTE: a pending waitAsync alone lets a worker's event loop end
    while (this.state() === IDLE) await waitAsync(this.ctl, this.init.stateSlot, IDLE).value
    clearInterval(keepAlive)
  }
}
