// Every matmul backend present on this machine against matmulRef: the TS kernels on one thread, on all
// threads (worker_threads over a shared memory), the WebAssembly SIMD kernel on one thread and on all, and
// gpu.js in each mode that opens here (webasm, threaded webasm through the bridge worker, `cpu` with fixed
// shapes; webgpu and headlessgl where a GPU is found).
// Also: each gpu.js trap measured on the dev machine (listed atop src/backends/gpujs/gpu.ts) is shown avoided, a training run gives the same loss curve
// on every backend, setBackend/backendInfo behave, and processes using the workers still exit.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { GPU } from 'gpu.js'
import { K, cpu, type Kernels } from '../src/kernels'
import { matmulRef } from '../src/kernels/matmul'
import { setBackend, backendInfo } from '../src/node' // Node's entry: installs worker_threads and gpu.js's bridge
import { matmulAllThreads, startParallel, parallelInfo } from '../src/backends/threads/parallel'
import {
  openGpujs,
  gpujsTable,
  GpuMatmul,
  KernelCache,
  type GpujsMode,
  type GpujsPath,
} from '../src/backends/gpujs/gpu'
import { WorkerPool, WorkerEnd, sharedMemory, IDLE, BUSY, RUNNING, STATES, JOB } from '../src/backends/threads/pool'
import { wasmMatmul, wasmSupport, WASM_ROWS_BELOW } from '../src/backends/wasm'
import { confirming, fastest, CONFIRM_CALLS, type Candidate, type Probe } from '../src/backends/auto'
import { startNodeWorker } from '../src/backends/threads/threads-node'
import { manualSeed, random } from '../src/random'
import { Tensor, randint } from '../src/tensor'
import { GPT } from '../nn/gpt'
import { linear } from '../ops/matmul'
import { relu } from '../ops/elementwise'
import { mseLoss } from '../ops/nn'
import { uniform } from './helpers'
import { FunctionBody } from '../src/backends/wasm/emit'

FunctionBody.checks = true // every kernel generated in this process has its operand stack checked

type Table = Pick<Kernels, 'matmul' | 'matmulBatched'>
const rnd = (size: number) => Float32Array.from({ length: size }, () => 2 * random() - 1)

/** ‖got − want‖∞ ≤ 1e-4 · max(1, ‖want‖∞): float32 sums over K = 1024 terms in [-1, 1] err by ~1e-4 absolute (measured on the dev machine). */
function assertRelClose(got: Float32Array, want: Float32Array, what: string): void {
  assert.is(got.length, want.length, `${what}: length`)
  let scale = 1
  for (const v of want) scale = Math.max(scale, Math.abs(v))
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= 1e-4 * scale))
      assert.unreachable(`${what}: index ${i}: got ${got[i]}, matmulRef ${want[i]} (scale ${scale})`)
  }
}

// --- the backends present: every table entry is forced onto its path (no size threshold) ---
const tables: [string, Table][] = [['cpu', cpu]]
const parallelReady = startParallel().failure === ''
if (parallelReady)
  tables.push([
    'parallel',
    {
      matmul: (a, b, m, k, n, f = {}) => matmulAllThreads(a, b, 1, m, k, n, f),
      matmulBatched: (a, b, t, m, k, n, f = {}) => matmulAllThreads(a, b, t, m, k, n, f),
    },
  ])
const wasmReady = wasmSupport() === ''
if (wasmReady) {
  for (const threads of parallelReady ? [false, true] : [false]) {
    tables.push([
      `wasm ${threads ? 'all threads' : '1 thread'}`,
      {
        matmul: (a, b, m, k, n, f = {}) => wasmMatmul(a, b, 1, m, k, n, f, threads),
        matmulBatched: (a, b, t, m, k, n, f = {}) => wasmMatmul(a, b, t, m, k, n, f, threads),
      },
    ])
  }
}
const gpuPaths = new Map<GpujsMode, GpujsPath>()
const gpuFailures = new Map<GpujsMode, string>()
for (const mode of ['webasm', 'webasm-threads', 'cpu', 'headlessgl', 'webgpu'] as const) {
  try {
    const path = openGpujs(mode, { timeoutMs: 20_000 })
    gpuPaths.set(mode, path)
    tables.push([`gpujs ${mode}`, gpujsTable(path.run, cpu, 0)])
  } catch (err) {
    gpuFailures.set(mode, err instanceof Error ? err.message : String(err))
  }
}

const SHAPES = [
  [1, 1, 1],
  [3, 7, 1],
  [7, 1, 33],
  [33, 130, 7],
  [130, 33, 3],
  [1, 130, 130],
  [130, 3, 130],
  [33, 1024, 130],
  [7, 1024, 3],
]
const FLAGS = [{}, { transB: true }, { transA: true }, { transA: true, transB: true }]

test('every backend: matmul NN/NT/TN/TT on sizes from {1,3,7,33,130} and K = 1024 matches matmulRef to 1e-4 relative', () => {
  manualSeed(1)
  for (const [m, k, n] of SHAPES)
    for (const flags of FLAGS) {
      const a = rnd(m * k),
        b = rnd(k * n)
      const want = matmulRef(a, b, m, k, n, flags)
      for (const [name, T] of tables)
        assertRelClose(T.matmul(a, b, m, k, n, flags), want, `${name} matmul (${m},${k},${n}) ${JSON.stringify(flags)}`)
    }
})

test('every backend: matmulBatched (3 products, K up to 1024) matches matmulRef per product', () => {
  manualSeed(2)
  const batch = 3
  for (const [m, k, n] of [
    [7, 33, 3],
    [33, 1024, 7],
    [130, 7, 33],
  ])
    for (const flags of FLAGS) {
      const a = rnd(batch * m * k),
        b = rnd(batch * k * n)
      const want = new Float32Array(batch * m * n)
      for (let t = 0; t < batch; t++)
        want.set(
          matmulRef(a.subarray(t * m * k, (t + 1) * m * k), b.subarray(t * k * n, (t + 1) * k * n), m, k, n, flags),
          t * m * n,
        )
      for (const [name, T] of tables)
        assertRelClose(
          T.matmulBatched(a, b, batch, m, k, n, flags),
          want,
          `${name} matmulBatched (${batch},${m},${k},${n}) ${JSON.stringify(flags)}`,
        )
    }
})

test("every backend: a bias row is added to every row of C (linear's y = x·Wᵀ + b), single and batched, each variant", () => {
  manualSeed(5)
  for (const [batch, m, k, n] of [
    [1, 1, 3, 1],
    [1, 7, 33, 130],
    [1, 130, 7, 33],
    [2, 33, 130, 7],
    [3, 3, 1024, 9],
  ])
    for (const flags of FLAGS) {
      const a = rnd(batch * m * k),
        b = rnd(batch * k * n),
        bias = rnd(n)
      const want = new Float32Array(batch * m * n)
      for (let t = 0; t < batch; t++)
        want.set(
          matmulRef(a.subarray(t * m * k, (t + 1) * m * k), b.subarray(t * k * n, (t + 1) * k * n), m, k, n, flags),
          t * m * n,
        )
      for (let i = 0; i < want.length; i++) want[i] += bias[i % n]
      for (const [name, T] of tables) {
        const what = `${name} (${batch},${m},${k},${n}) ${JSON.stringify(flags)} + bias`
        if (batch === 1) assertRelClose(T.matmul(a, b, m, k, n, { ...flags, bias }), want, `${what}: matmul`)
        assertRelClose(T.matmulBatched(a, b, batch, m, k, n, { ...flags, bias }), want, `${what}: matmulBatched`)
      }
    }
  const [m, k, n] = [130, 257, 66],
    a = rnd(m * k),
    b = rnd(k * n),
    bias = rnd(n)
  const plain = cpu.matmul(a, b, m, k, n, { transB: true })
  for (let i = 0; i < plain.length; i++) plain[i] += bias[i % n]
  assert.equal(
    Array.from(cpu.matmul(a, b, m, k, n, { transB: true, bias })),
    Array.from(plain),
    'cpu: the bias is added after the product, bit for bit as matmul then addRowInPlace',
  )
})

test('parallel: workers compute blocks themselves, and the result is bit-identical to the CPU table', () => {
  if (!parallelReady) return console.log(`  (parallel skipped: ${parallelInfo().failure})`)
  manualSeed(3)
  const before = parallelInfo().blocksByWorkers
  for (const flags of [...FLAGS, { transB: true, bias: rnd(66) }]) {
    const [m, k, n] = [130, 257, 66]
    const a = rnd(m * k),
      b = rnd(k * n)
    const got = matmulAllThreads(a, b, 1, m, k, n, flags, { callerWorks: false }) // every block on a worker
    assert.equal(Array.from(got), Array.from(cpu.matmul(a, b, m, k, n, flags)), `worker-only ${JSON.stringify(flags)}`)
    const both = matmulAllThreads(a, b, 1, m, k, n, flags)
    assert.equal(
      Array.from(both),
      Array.from(cpu.matmul(a, b, m, k, n, flags)),
      `caller + workers ${JSON.stringify(flags)}`,
    )
  }
  assert.ok(parallelInfo().blocksByWorkers > before, 'workers took no blocks')
})

test('gpu.js trap 1 is real, and avoided: a loop bounded by an argument stops at 1000; ours, bounded by a constant, does not', () => {
  const gpu = new GPU({ mode: 'webasm' })
  const byArgument = gpu.createKernel(
    function (this: { thread: { x: number } }, a: Float32Array, k: number) {
      let s = 0
      for (let p = 0; p < k; p++) s += a[p]
      return s + this.thread.x * 0
    },
    { output: [1] },
  )
  const ones = new Float32Array(1500).fill(1)
  const naive = byArgument(ones, 1500)
  assert.ok(naive instanceof Float32Array && naive[0] === 1000, `expected the trap (1000), got ${String(naive)}`)
  byArgument.destroy()
  const ours = new GpuMatmul('webasm').run(ones, ones, 1, 1, 1500, 1) // (1, 1500) · (1500, 1)
  assert.ok(ours instanceof Float32Array && ours[0] === 1500, `gpu.js matmul over K = 1500 gave ${String(ours)}`)
})

test('gpu.js traps 2–3 avoided: alternating shapes on one instance stay correct (webasm and cpu modes)', () => {
  manualSeed(4)
  for (const mode of ['webasm', 'cpu'] as const) {
    const gm = new GpuMatmul(mode, { cacheSize: 4 })
    for (const [m, k, n] of [
      [5, 9, 3],
      [3, 4, 12],
      [5, 9, 3],
      [12, 4, 3],
      [3, 4, 12],
    ]) {
      const a = rnd(m * k),
        b = rnd(k * n)
      const got = gm.run(a, b, 1, m, k, n)
      assert.ok(got instanceof Float32Array, `${mode}: result is one flat Float32Array`)
      assertRelClose(got, matmulRef(a, b, m, k, n), `${mode} (${m},${k},${n})`)
    }
    gm.destroy()
  }
})

test('gpu.js trap 4 avoided: the kernel cache never exceeds its bound and destroys what it evicts', () => {
  const destroyed: string[] = []
  const cache = new KernelCache<{ destroy(): void }>(2)
  const make = (key: string) => () => ({ destroy: () => void destroyed.push(key) })
  cache.get('a', make('a'))
  cache.get('b', make('b'))
  cache.get('a', make('a')) // a is now the most recent
  cache.get('c', make('c'))
  assert.equal(destroyed, ['b'])
  assert.is(cache.size, 2)
  manualSeed(5)
  const gm = new GpuMatmul('webasm', { cacheSize: 3 })
  for (let n = 1; n <= 6; n++) {
    const a = rnd(2 * 3),
      b = rnd(3 * n)
    assertRelClose(gm.run(a, b, 1, 2, 3, n) as Float32Array, matmulRef(a, b, 2, 3, n), `n = ${n}`)
    assert.ok(gm.cache.size <= 3, `cache holds ${gm.cache.size} kernels`)
  }
  assert.is(gm.cache.destroyed, 3, 'the three evicted kernels were destroyed')
  const a = rnd(6),
    b = rnd(3)
  assertRelClose(gm.run(a, b, 1, 2, 3, 1) as Float32Array, matmulRef(a, b, 2, 3, 1), 'an evicted shape, compiled again')
  gm.destroy()
})

test('webgpu and headlessgl: open where a GPU is found, otherwise fail fast with the reason', () => {
  for (const mode of ['webgpu', 'headlessgl'] as const) {
    if (gpuPaths.has(mode)) continue
    const why = gpuFailures.get(mode) ?? ''
    assert.ok(why.startsWith(`gpu.js ${mode}:`), `${mode}: ${why}`)
  }
  if (!gpuPaths.has('headlessgl'))
    assert.throws(
      () => setBackend('gpujs', { gpujsMode: 'headlessgl' }),
      /setBackend\('gpujs'\): no gpu.js mode works here: gpujs headlessgl: /,
    )
})

test('a failing worker is reported, not waited for', () => {
  const memory = sharedMemory()
  if (typeof memory === 'string') return assert.unreachable(memory)
  const bootstrap = new URL('./fixtures/no-such-worker.ts', import.meta.url)
  const pool = new WorkerPool(1, memory, (init, onError) => startNodeWorker(bootstrap, init, onError))
  const t0 = performance.now()
  pool.waitReady(20_000)
  assert.match(pool.failure, /no-such-worker/)
  assert.ok(performance.now() - t0 < 10_000, `the failure took ${performance.now() - t0} ms to surface`)
})

test('pool: a job no worker has claimed yet is taken back at join (takeBack), a claimed one is left to its worker, and claimJob waits past a taken-back one', () => {
  const memory = sharedMemory()
  if (typeof memory === 'string') return assert.unreachable(memory)
  const pool = new WorkerPool(1, memory, () => ({ terminate() {} })) // a worker this thread plays by hand
  pool.start()
  const end = new WorkerEnd({ memory, index: 0 })
  end.idle() // loaded and waiting
  pool.join(pool.post(7), { takeBack: true }) // never claimed: returns at once instead of waiting for the worker
  assert.is(end.state(), IDLE, 'taken back')
  const taken = pool.post(7)
  assert.is(end.state(), BUSY)
  assert.ok(end.claimJob(), 'a posted job is claimed')
  assert.is(end.state(), RUNNING, "claimed: join's take-back (BUSY → IDLE) cannot withdraw it")
  end.idle() // the job done
  pool.join(taken, { takeBack: true })
  assert.is(pool.failure, '')
  Atomics.store(pool.ctl, STATES, BUSY) // posted, then taken back before the worker woke ...
  Atomics.store(pool.ctl, STATES, IDLE)
  pool.post(8) // ... and a new job posted: the worker claims the new one
  assert.ok(end.claimJob())
  assert.is(pool.ctl[JOB], 8, 'the job kind the worker sees')
  end.idle()
  pool.retire('test over')
  assert.not.ok(end.claimJob(), 'a retired pool: claimJob returns false')
})

/** Four SGD steps of a 128→128→16 MLP (products above every threshold) under the current backend. */
function lossCurve(): number[] {
  manualSeed(6)
  const x = uniform([128, 128]),
    y = uniform([128, 16])
  const w1 = uniform([128, 128], 0.1, true),
    b1 = uniform([128], 0.1, true)
  const w2 = uniform([16, 128], 0.1, true),
    b2 = uniform([16], 0.1, true)
  const params = [w1, b1, w2, b2]
  const losses: number[] = []
  for (let step = 0; step < 4; step++) {
    const loss = mseLoss(linear(relu(linear(x, w1, b1)), w2, b2), y)
    for (const p of params) p.grad = null
    loss.backward()
    for (const p of params) for (let i = 0; i < p.size; i++) p.data[i] -= 0.5 * p.grad!.data[i] // p.grad! : backward reached every parameter
    losses.push(loss.data[0])
  }
  return losses
}

test('training: the loss curve is the same whichever backend runs matmul (parallel bit-identical, gpu.js to 1e-4)', () => {
  setBackend('cpu')
  const want = lossCurve()
  assert.ok(want[3] < want[0], `the loss should fall: ${want}`)
  const runs: [string, () => void][] = [
    ['parallel', () => setBackend('parallel')],
    ['wasm 1 thread', () => setBackend('wasm', { threads: 1 })],
    ['wasm', () => setBackend('wasm')],
  ]
  for (const mode of gpuPaths.keys()) runs.push([`gpujs ${mode}`, () => setBackend('gpujs', { gpujsMode: mode })])
  for (const [name, use] of runs) {
    if (name === 'parallel' && !parallelReady) continue
    if (name.startsWith('wasm') && !wasmReady) continue
    use()
    const got = lossCurve()
    if (name === 'parallel') assert.equal(got, want, 'parallel')
    else
      got.forEach((l, i) =>
        assert.ok(Math.abs(l - want[i]) <= 1e-4 * want[i], `${name} step ${i}: ${l} vs cpu ${want[i]}`),
      )
  }
  setBackend('cpu')
})

test('setBackend/backendInfo: say what runs and why; cpu restores the CPU table; bad names fail clearly', () => {
  if (parallelReady) {
    const info = setBackend('parallel')
    assert.is(info.backend, 'parallel')
    assert.match(info.matmul, /threads/)
    assert.is.not(K.matmul, cpu.matmul)
  }
  const gpu = setBackend('gpujs', { gpujsMode: 'webasm' })
  assert.is(gpu.gpujsMode, 'webasm')
  assert.is(backendInfo().backend, 'gpujs')
  setBackend('cpu')
  for (const name of Object.keys(cpu) as (keyof Kernels)[])
    assert.ok(K[name] === cpu[name], `K.${name} is back on the CPU table`)
  assert.is(backendInfo().backend, 'cpu')
  // @ts-expect-error: not a backend
  assert.throws(() => setBackend('tpu'), /unknown backend 'tpu': expected 'cpu', 'parallel', 'wasm', 'gpujs', 'auto'/)
  const huge = new Array<string>(1e6).fill('tpu') // from plain JavaScript: quoted in at most 200 characters
  assert.throws(
    // @ts-expect-error: not a backend name
    () => setBackend(huge),
    (err: Error) => err.message.length < 400 && /unknown backend \["tpu", /.test(err.message),
  )
})

test('auto: times every backend that opens here, installs the fastest (never one measured over 5% slower), and says so', () => {
  const info = setBackend('auto')
  assert.is(info.requested, 'auto')
  const timed = info.probes.filter((p) => p.gflops !== undefined)
  const names = timed.map((p) => p.path)
  assert.ok(names.includes('cpu (1 thread)'), names.join(', '))
  if (parallelReady)
    assert.ok(names.includes('parallel (2 threads)') || names.some((n) => n.startsWith('parallel (')), names.join(', '))
  if (wasmReady) assert.ok(names.includes('wasm (1 thread)'), names.join(', '))
  for (const p of timed) assert.ok(p.gflops! > 0, `${p.path}: ${p.gflops}`) // p.gflops! : filtered above
  const best = timed.reduce((x, y) => (y.gflops! > x.gflops! ? y : x))
  const installed = timed.find(
    (p) => p.path === `${info.backend} (${info.threads} thread${info.threads > 1 ? 's' : ''})`,
  )
  assert.ok(installed, `the installed ${info.backend} on ${info.threads} thread(s) was timed: ${names.join(', ')}`)
  assert.ok(
    installed!.gflops! >= 0.95 * best.gflops!,
    `installed ${installed!.path} (${installed!.gflops}), fastest was ${best.path} (${best.gflops})`,
  ) // a 5% tie goes to fewer threads
  const threadsOf = (path: string) => Number(/\((\d+) thread/.exec(path)?.[1])
  for (const p of timed.filter((p) => p.gflops! >= 0.95 * best.gflops!)) {
    // among the tied, none has fewer threads
    assert.ok(
      threadsOf(p.path) >= info.threads,
      `${p.path} (${p.gflops}) ties ${best.path} (${best.gflops}) with fewer threads than the installed ${installed!.path}`,
    )
  }
  assert.match(
    info.reason,
    /measured on \(n, n, n\) A·Bᵀ \(n = 256 for the TS kernels, 512 for wasm\), warmed, median of 7 alternating rounds: /,
  )
  assert.ok(
    info.reason.endsWith(`→ ${installed!.path}`) ||
      info.reason.includes(`→ ${installed!.path} (`) ||
      info.reason.includes(`→ ${installed!.path}; to be confirmed against `),
    info.reason,
  )
  if (info.reason.includes('to be confirmed')) {
    // the first large products run on the pick and its sibling in turn, bit for bit alike, then one is kept
    manualSeed(9)
    const [m, k, n] = [256, 256, 320] // two shapes of ≥ 256³ multiply-adds, alternating
    const a = rnd(m * k),
      b = rnd(n * k)
    const want = [
      cpu.matmul(a, b, m, k, n, { transB: true }),
      cpu.matmul(a, b.subarray(0, 256 * k), m, k, 256, { transB: true }),
    ]
    for (let call = 0; call < CONFIRM_CALLS; call++) {
      const wide = call % 2 === 0
      const got = K.matmul(a, wide ? b : b.subarray(0, 256 * k), m, k, wide ? n : 256, { transB: true })
      assertRelClose(got, want[wide ? 0 : 1], `large product ${call} while confirming`)
    }
    const after = backendInfo()
    assert.match(after.reason, /; confirmed on the first 24 products of ≥ 256³ \(2 shapes\): .* ms, .* ms → /)
    assert.ok(after.reason.endsWith(`→ ${after.backend} (${after.threads} thread${after.threads > 1 ? 's' : ''})`))
  }
  setBackend('cpu')
})

test('auto: a candidate over 5x slower than one warmed before it gets 3 calls, not 15, and is never chosen', () => {
  let slowCalls = 0
  const wait = (ms: number) => {
    for (const t0 = performance.now(); performance.now() - t0 < ms;) {
      /* a slow backend */
    }
  }
  const fast = {
    name: 'fast',
    note: '',
    n: 256,
    threads: 1,
    run: (a: Float32Array) => {
      wait(1)
      return a
    },
  }
  const slow = {
    name: 'slow',
    note: '',
    n: 256,
    threads: 1,
    run: (a: Float32Array) => {
      slowCalls++
      wait(20)
      return a
    },
  }
  const probes: Probe[] = []
  assert.is(fastest([fast, slow], probes), 0)
  assert.is(slowCalls, 3, 'a first call (it may compile), then two that confirm it')
  assert.match(probes[1].note, /not timed further: over 5× slower/)
  assert.ok(probes[1].gflops! < probes[0].gflops! / 5, JSON.stringify(probes)) // gflops set for both
})

/** A fake backend for auto's logic: each call waits `ms`, counts itself, and returns its own name's length. */
function fakeCandidate(name: string, threads: number, ms: () => number, log: string[]): Candidate {
  const wait = (t: number) => {
    for (const t0 = performance.now(); performance.now() - t0 < t;) {
      /* busy, as a kernel would be */
    }
  }
  return {
    name,
    note: '',
    n: 256,
    threads,
    run: (a) => {
      log.push(name)
      wait(ms())
      return a
    },
  }
}

test('auto: workers are warmed on calls of their own (at least 6, until their speed settles) before any is timed', () => {
  const log: string[] = []
  const calls = { worker: 0 }
  const threaded = fakeCandidate('threads', 2, () => 0.5, log)
  threaded.workersOnly = (a) => {
    log.push('workers only')
    calls.worker++
    const t0 = performance.now()
    while (performance.now() - t0 < Math.max(0.3, 3 - calls.worker * 0.5)); // cold, then faster, then steady
    return a
  }
  fastest([fakeCandidate('one', 1, () => 0.5, log), threaded], [])
  const first = log.indexOf('threads')
  assert.ok(calls.worker >= 6, `${calls.worker} worker-only calls`)
  assert.ok(log.lastIndexOf('workers only') < first, 'every worker-only call came before the candidate was timed')
  assert.ok(calls.worker >= 8, `it went on while the calls got faster (${calls.worker} calls)`)
})

test('auto: the pick is confirmed on the first large products, shape by shape, and a faster sibling replaces it', () => {
  const log: string[] = []
  const one = fakeCandidate('one thread', 1, () => 2, log)
  const two = fakeCandidate('two threads', 2, () => 1, log)
  const decided: string[] = []
  const run = confirming(one, two, (winner, note) => decided.push(`${winner.name}: ${note}`))
  const big = new Float32Array(4)
  run(big, big, 1, 8, 8, 8) // small: the pick runs it, nothing is counted
  assert.equal(log, ['one thread'])
  for (let call = 0; call < CONFIRM_CALLS; call++) run(big, big, 1, 256 + (call % 3), 256, 256, { transB: true })
  assert.is(log.filter((n) => n === 'one thread').length, 1 + CONFIRM_CALLS / 2, 'half of the large products each')
  assert.is(decided.length, 1)
  assert.match(decided[0], /^two threads: on the first 24 products of ≥ 256³ \(3 shapes\): one thread .* ms, two/)
  run(big, big, 1, 8, 8, 8)
  run(big, big, 1, 300, 300, 300)
  assert.equal(log.slice(-2), ['two threads', 'two threads'], 'after the decision, every product runs on the winner')
  const tie: string[] = []
  const even = confirming(
    fakeCandidate('2 threads', 2, () => 1, []),
    fakeCandidate('1 thread', 1, () => 1, []),
    (w) => tie.push(w.name),
  )
  for (let call = 0; call < CONFIRM_CALLS; call++) even(big, big, 1, 256, 256, 256)
  assert.equal(tie, ['1 thread'], 'a tie goes to fewer threads')
})

test('wasm: setBackend says what runs; products past the memory grow it and stay correct; one thread or all', () => {
  if (!wasmReady) return console.log(`  (wasm skipped: ${wasmSupport()})`)
  const one = setBackend('wasm', { threads: 1 })
  assert.is(one.backend, 'wasm')
  assert.is(one.threads, 1)
  assert.match(one.matmul, /WebAssembly SIMD 4×8 kernel .*1 thread/)
  manualSeed(8)
  const [m, k, n] = [1030, 1100, 1050] // 4.4 + 4.6 + 4.3 MB of operands: the memory starts at 128 KiB
  const a = rnd(m * k),
    b = rnd(k * n)
  const want = cpu.matmul(a, b, m, k, n, { transB: true })
  assertRelClose(K.matmul(a, b, m, k, n, { transB: true }), want, 'wasm 1 thread, grown memory')
  if (parallelReady) {
    const all = setBackend('wasm')
    assert.is(all.threads, parallelInfo().threads)
    assertRelClose(K.matmul(a, b, m, k, n, { transB: true }), want, 'wasm all threads, grown memory')
  }
  setBackend('cpu')
})

test('wasm: A·Bᵀ with few rows (a linear layer in generation) takes the row kernel; it matches matmulRef on awkward sizes, batched, with a bias', () => {
  if (!wasmReady) return console.log(`  (wasm skipped: ${wasmSupport()})`)
  manualSeed(9)
  for (const threads of [false, true])
    for (const [batch, m] of [
      [1, 1],
      [1, 3],
      [2, 2],
      [1, 33],
      [1, WASM_ROWS_BELOW - 1],
    ])
      for (const k of [4, 32, 132, 1024])
        for (const n of [1, 3, 7, 33, 130]) {
          const a = rnd(batch * m * k),
            b = rnd(batch * n * k),
            bias = rnd(n)
          const want = new Float32Array(batch * m * n)
          for (let t = 0; t < batch; t++)
            want.set(
              matmulRef(a.subarray(t * m * k, (t + 1) * m * k), b.subarray(t * n * k, (t + 1) * n * k), m, k, n, {
                transB: true,
              }),
              t * m * n,
            )
          const what = `(${batch},${m},${k},${n})${threads ? ' all threads' : ''}`
          assertRelClose(wasmMatmul(a, b, batch, m, k, n, { transB: true }, threads), want, what)
          for (let i = 0; i < want.length; i++) want[i] += bias[i % n]
          assertRelClose(wasmMatmul(a, b, batch, m, k, n, { transB: true, bias }, threads), want, `${what} + bias`)
        }
})

test('wasm: A·B with 1-3 rows (a Conv1D in generation) runs on the SIMD kernel with B as given, not on the TS kernel', () => {
  if (!wasmReady) return console.log(`  (wasm skipped: ${wasmSupport()})`)
  manualSeed(12)
  setBackend('wasm', { threads: 1 })
  for (const [m, k, n] of [
    [1, 768, 130],
    [2, 129, 384],
    [3, 64, 67],
  ]) {
    const a = rnd(m * k),
      b = rnd(k * n)
    const got = K.matmul(a, b, m, k, n)
    assertRelClose(got, matmulRef(a, b, m, k, n), `(${m},${k},${n})`)
    // float32 sums (wasm) and float64 sums (TS) differ in the last bits: equality says which one ran
    assert.equal(got, wasmMatmul(a, b, 1, m, k, n, {}, false), `(${m},${k},${n}) is the SIMD kernel's`)
    assert.not.equal(got, cpu.matmul(a, b, m, k, n), `(${m},${k},${n}) is not the TS kernel's`)
  }
  setBackend('cpu')
})

test('wasm: generation with the KV cache (one-row products on the row kernel) gives the tokens of the full recompute and of the CPU table', () => {
  if (!wasmReady) return console.log(`  (wasm skipped: ${wasmSupport()})`)
  manualSeed(10)
  const gpt = new GPT({ vocabSize: 65, blockSize: 24, nLayer: 2, nHead: 4, nEmbd: 64 })
  const prompt = randint(0, 65, [1, 2])
  setBackend('cpu')
  const onCpu = gpt.generate(prompt, 30, { temperature: 0 }).data
  for (const threads of parallelReady ? [1, 2] : [1]) {
    setBackend('wasm', { threads })
    const cached = gpt.generate(prompt, 30, { temperature: 0 }).data
    assert.equal(
      cached,
      gpt.generate(prompt, 30, { temperature: 0, useCache: false }).data,
      `wasm ${threads} thread(s): cached vs recomputed`,
    )
    assert.equal(cached, onCpu, `wasm ${threads} thread(s) vs the CPU table`)
  }
  setBackend('cpu')
})

test('a bridge worker that stops mid-run: products fall back to the CPU table and failure() says why', () => {
  const path = gpuPaths.get('webasm-threads')
  if (!path) return console.log(`  (skipped: ${gpuFailures.get('webasm-threads')})`)
  path.close() // retires the worker, as a lost device or a crash would
  manualSeed(7)
  const a = rnd(33 * 65),
    b = rnd(65 * 9)
  assertRelClose(path.run(a, b, 1, 33, 65, 9, {}), matmulRef(a, b, 33, 65, 9), 'after close')
  assert.is(path.failure(), 'closed')
})

/** Run `node ...args`; resolve with its exit code and output (killed after 30 s: a hang fails the test instead of the suite). */
function runNode(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { timeout: 30_000 })
    let stdout = '',
      stderr = ''
    child.stdout.on('data', (chunk) => (stdout += chunk))
    child.stderr.on('data', (chunk) => (stderr += chunk))
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

test('processes using the workers exit by themselves, under `node --import tsx` and under the tsx CLI', async () => {
  const script = [
    "import { setBackend, matmul, tensor } from './src/node.ts'",
    "setBackend('gpujs', { gpujsMode: 'webasm-threads' }); setBackend('parallel')",
    'const x = tensor(new Float32Array(200 * 200).fill(1), [200, 200])',
    'process.stdout.write(String(matmul(x, x).data[0]))',
  ].join('\n')
  const runners = [
    ['--import', 'tsx', '--input-type=module', '-e', script],
    ['node_modules/tsx/dist/cli.mjs', '-e', script],
  ]
  const results = await Promise.all(runners.map(runNode))
  results.forEach(({ code, stdout, stderr }, i) => {
    assert.is(code, 0, `${runners[i][0]}: exit ${code} ${stderr}`)
    assert.is(stdout.trim(), '200', runners[i][0])
  })
})

test.run()
