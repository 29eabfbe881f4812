// Which code runs matmul: the TS kernels on one thread ('cpu') or on every core ('parallel'), the generated
// WebAssembly SIMD kernel ('wasm', one thread or all), or gpu.js ('gpujs'); 'auto' measures them here and keeps
// the fastest (auto.ts). Each backend is a Partial<Kernels>: the matmul entries, and any others it does better
// (wasm: add, gelu, softmax, cross-entropy, layer norm, attention, column sums). Only this file installs one.
import { cpu, useKernels, type Kernels } from '../kernels/index.js'
import { qmatmul, qmatmulT, type MatmulFn } from '../kernels/quant.js'
import { fail, quote } from '../errors.js'
import { poolInfo, startPool } from './threads/pool.js'
import { matmulAllThreads, parallelInfo, parallelKernels, PARALLEL_MIN_FLOPS } from './threads/parallel.js'
import {
  wasmKernels,
  wasmPanels,
  wasmSupport,
  WASM_MIN_FLOPS,
  WASM_MIN_ROWS,
  WASM_ROWS_BELOW,
  WASM_THREADS_MIN_FLOPS,
} from './wasm/index.js'
import { openGpujs, gpujsTable, gpujsCandidates, GPUJS_MIN_FLOPS, type GpujsMode, type GpujsPath } from './gpujs/gpu.js'
import { confirming, fastest, summary, CONFIRM_CALLS, PROBE_SIZE, SIMD_PROBE_SIZE } from './auto.js'
import type { Candidate, Probe, Run } from './auto.js'

export type BackendName = 'cpu' | 'parallel' | 'wasm' | 'gpujs' | 'auto'
/** threads: for 'wasm', 1 or all the pool has (default); gpujsMode: which gpu.js mode; timeoutMs: to start workers. */
export type BackendOptions = { threads?: number; gpujsMode?: GpujsMode; timeoutMs?: number }
export type { Probe }
export type BackendInfo = {
  /** what runs matmul now */
  backend: Exclude<BackendName, 'auto'>
  /** what was asked for, and by whom */
  requested: BackendName | 'auto (not probed yet)'
  /** threads the backend uses for large products */
  threads: number
  gpujsMode?: GpujsMode
  /** which kernels run which products */
  matmul: string
  reason: string
  probes: Probe[]
  thresholds: {
    parallelMinFlops: number
    wasmMinFlops: number
    wasmMinRows: number
    wasmRowsBelow: number
    wasmThreadsMinFlops: number
    gpujsMinFlops: number
  }
  /** the thread pool: threads it gives, workers ready, blocks workers took (parallel), and why there are none */
  parallel: ReturnType<typeof parallelInfo>
  /** why the wasm backend cannot run here ('' if it can) */
  wasm: string
}
/** The matmul entries every backend provides (the quantized matmuls' tiles use them too), and any it does better. */
export type MatmulTable = Pick<Kernels, 'matmul' | 'matmulBatched'> & Partial<Kernels>
/** A backend ready to install; workersOnly: its product with every item left to its workers (to warm them). */
type Installed = {
  backend: BackendInfo['backend']
  threads: number
  table: MatmulTable
  gpujsMode?: GpujsMode
  workersOnly?: Run
}

const BACKENDS: BackendName[] = ['cpu', 'parallel', 'wasm', 'gpujs', 'auto']
const CPU_TABLE: MatmulTable = { matmul: cpu.matmul, matmulBatched: cpu.matmulBatched }
const opened = new Map<GpujsMode, GpujsPath>()
const failed = new Map<GpujsMode, string>() // a mode that failed once is not retried in this process
let info: BackendInfo = describe(
  { backend: 'cpu', threads: 1, table: CPU_TABLE },
  'auto (not probed yet)',
  'the CPU table: no backend installed yet',
  [],
)

/** Route matmul through `name`; returns backendInfo(). Throws saying why if that backend cannot run here. */
export function setBackend(name: BackendName, options: BackendOptions = {}): BackendInfo {
  if (name === 'auto') return probeAuto(options)
  if (!isBackendName(name))
    fail('setBackend', `unknown backend ${quoteName(name)}: expected ${BACKENDS.map((b) => `'${b}'`).join(', ')}`)
  const probes: Probe[] = []
  const chosen = open(name, options, probes)
  if (typeof chosen === 'string') fail(`setBackend('${name}')`, chosen)
  return install(
    chosen,
    name,
    `setBackend('${name}'${options.threads ? `, { threads: ${options.threads} }` : ''})`,
    probes,
  )
}

/** Which backend runs matmul, for which sizes, and why (including what probing found). */
export function backendInfo(): BackendInfo {
  const broken = info.gpujsMode && opened.get(info.gpujsMode)?.failure()
  const lost = info.threads > 1 ? poolInfo().failure : '' // a worker failed: the pool is retired, one thread is left
  let reason = info.reason
  if (broken) reason += `; gpu.js failed since, the CPU runs its products: ${broken}`
  if (lost) reason += `; the worker threads failed since, products run on this thread: ${lost}`
  const now = lost ? { threads: 1, matmul: matmulText({ ...installed, threads: 1 }) } : {}
  return { ...info, ...now, reason, parallel: parallelInfo() }
}

/** A name that is not a backend, as the message shows it (≤ 200 characters, whatever was passed). */
const quoteName = (name: unknown) => (typeof name === 'string' ? `'${name.slice(0, 200)}'` : quote(name))

/** Backend `name` ready to install, or why it cannot run here. Starts the thread pool where it needs it. */
function open(name: Exclude<BackendName, 'auto'>, options: BackendOptions, probes: Probe[]): Installed | string {
  if (name === 'cpu') return { backend: 'cpu', threads: 1, table: CPU_TABLE }
  if (name === 'wasm') {
    if (wasmSupport()) return wasmSupport()
    const pool = options.threads === 1 ? undefined : startPool(options.timeoutMs)
    const threads = pool && !pool.failure ? pool.size + 1 : 1
    if (options.threads && options.threads > threads)
      return `${options.threads} threads asked for, ${threads} available: ${poolInfo().failure}`
    const workersOnly: Run = (a, b, batch, m, k, n, flags = {}) =>
      wasmPanels(a, b, batch, m, k, n, flags, true, { callerWorks: false })
    const table = wasmKernels({ threads: threads > 1 })
    return { backend: 'wasm', threads, table, workersOnly: threads > 1 ? workersOnly : undefined }
  }
  if (name === 'parallel') {
    const pool = startPool(options.timeoutMs)
    if (!pool || pool.failure) return poolInfo().failure
    const workersOnly: Run = (a, b, batch, m, k, n, flags = {}) =>
      matmulAllThreads(a, b, batch, m, k, n, flags, { callerWorks: false })
    return { backend: 'parallel', threads: pool.size + 1, table: parallelKernels, workersOnly }
  }
  const path = openFirst(options.gpujsMode ? [options.gpujsMode] : candidates(probes), options, probes)
  if (!path) return `no gpu.js mode works here: ${probes.map((p) => `${p.path}: ${p.note}`).join('; ')}`
  return { backend: 'gpujs', threads: 1, table: gpujsTable(path.run, CPU_TABLE), gpujsMode: path.mode }
}

/**
 * Install the backend TENNY_BACKEND names (cpu | parallel | wasm | gpujs | auto), or auto when it is unset.
 * Nothing starts now: the first product big enough to matter picks (auto) or starts the backend. A name that
 * is not a backend is one clear error at the first product, not at import.
 */
export function useDefaultBackend(): void {
  const env: unknown = Reflect.get(globalThis, 'process')
  const wanted =
    typeof env === 'object' && env !== null ? Reflect.get(Reflect.get(env, 'env') ?? {}, 'TENNY_BACKEND') : undefined
  if (typeof wanted !== 'string' || wanted === '')
    return lazily('auto', 'TENNY_BACKEND unset: auto, probed on the first product big enough to matter')
  if (!isBackendName(wanted)) {
    const why = `TENNY_BACKEND=${wanted}: not a backend (expected one of ${BACKENDS.join(', ')})`
    const refuse = (): never => {
      throw new Error(why)
    }
    useKernels(withQuant({ matmul: refuse, matmulBatched: refuse }))
    info = { ...info, reason: `${why}: every product throws until setBackend() picks one` }
    return
  }
  lazily(wanted, `TENNY_BACKEND=${wanted}, started on the first product big enough to matter`)
}

const isBackendName = (name: string): name is BackendName => BACKENDS.some((b) => b === name)

/** Install a table that starts backend `name` on the first product of ≥ 16³ multiply-adds, then runs it there. */
function lazily(name: BackendName, reason: string): void {
  const start = () => {
    if (name === 'auto') return setBackend('auto')
    try {
      return { ...setBackend(name), reason: `TENNY_BACKEND=${name}` }
    } catch (err) {
      // the environment asked for it, so fall back and say why rather than fail every product
      return install(
        { backend: 'cpu', threads: 1, table: CPU_TABLE },
        'cpu',
        `TENNY_BACKEND=${name} failed, using cpu: ${err instanceof Error ? err.message : String(err)}`,
        [],
      )
    }
  }
  useKernels(
    withQuant({
      matmul(a, b, m, k, n, flags = {}) {
        if (m * k * n < WASM_MIN_FLOPS) return cpu.matmul(a, b, m, k, n, flags)
        start()
        return installed.table.matmul(a, b, m, k, n, flags)
      },
      matmulBatched(a, b, batch, m, k, n, flags = {}) {
        if (batch * m * k * n < WASM_MIN_FLOPS) return cpu.matmulBatched(a, b, batch, m, k, n, flags)
        start()
        return installed.table.matmulBatched(a, b, batch, m, k, n, flags)
      },
    }),
  )
  info = { ...info, requested: name === 'auto' ? 'auto (not probed yet)' : name, reason }
}

let installed: Installed = { backend: 'cpu', threads: 1, table: CPU_TABLE }

/** A table's products plus the quantized matmuls, whose tiles go through the same products. */
function withQuant(table: MatmulTable): Partial<Kernels> {
  const product: MatmulFn = (a, b, m, k, n, flags) => table.matmul(a, b, m, k, n, flags)
  return {
    ...table,
    qmatmul: (x, q, m) => qmatmul(x, q, m, product),
    qmatmulT: (dy, q, m) => qmatmulT(dy, q, m, product),
  }
}

function install(chosen: Installed, requested: BackendName, reason: string, probes: Probe[]): BackendInfo {
  installed = chosen
  useKernels(chosen.backend === 'cpu' ? {} : withQuant(chosen.table))
  info = describe(chosen, requested, reason, probes)
  return backendInfo()
}

/** Which kernels run which products on this backend. */
function matmulText({ backend, threads, gpujsMode }: Installed): string {
  const onThreads = threads > 1 ? `, on ${threads} threads from ${WASM_THREADS_MIN_FLOPS}` : ', 1 thread'
  const rows = `A·Bᵀ below m = ${WASM_ROWS_BELOW}: a row kernel, 1 thread`,
    simd = `WebAssembly SIMD 4×8 kernel for batch·m·k·n ≥ ${WASM_MIN_FLOPS}, m ≥ ${WASM_MIN_ROWS} or A·B`
  const parallel = threads > 1 ? `TS matmulNT on ${threads} threads` : 'TS kernels on 1 thread (the pool failed)'
  return {
    cpu: 'TS kernels (src/kernels/matmul.ts), 1 thread',
    parallel: `${parallel} for batch·m·k·n ≥ ${PARALLEL_MIN_FLOPS}, TS kernels below`,
    wasm: `${simd}${onThreads} (${rows}); TS kernels below`,
    gpujs: `gpu.js ${gpujsMode} for batch·m·k·n ≥ ${GPUJS_MIN_FLOPS}, TS kernels below`,
  }[backend]
}

function describe(
  chosen: Installed,
  requested: BackendInfo['requested'],
  reason: string,
  probes: Probe[],
): BackendInfo {
  const { backend, threads, gpujsMode } = chosen
  const matmul = matmulText(chosen)
  const thresholds = {
    parallelMinFlops: PARALLEL_MIN_FLOPS,
    wasmMinFlops: WASM_MIN_FLOPS,
    wasmMinRows: WASM_MIN_ROWS,
    wasmRowsBelow: WASM_ROWS_BELOW,
    wasmThreadsMinFlops: WASM_THREADS_MIN_FLOPS,
    gpujsMinFlops: GPUJS_MIN_FLOPS,
  }
  return {
    backend,
    requested,
    threads,
    gpujsMode,
    matmul,
    reason,
    probes,
    thresholds,
    parallel: parallelInfo(),
    wasm: wasmSupport(),
  }
}

/** gpu.js modes worth trying here; the ones left out are noted in `probes`. */
function candidates(probes: Probe[]): GpujsMode[] {
  const { modes, skipped } = gpujsCandidates()
  if (skipped) probes.push({ path: 'gpujs', ok: false, note: skipped })
  return modes
}

/** Open the first mode that works (cached per process); record every attempt in `probes`. */
function openFirst(modes: GpujsMode[], options: BackendOptions, probes: Probe[]): GpujsPath | undefined {
  for (const mode of modes) {
    const known = opened.get(mode)
    if (known) return known
    if (failed.has(mode)) {
      probes.push({ path: `gpujs ${mode}`, ok: false, note: `${failed.get(mode)} (earlier in this process)` })
      continue
    }
    try {
      const path = openGpujs(mode, { timeoutMs: options.timeoutMs })
      opened.set(mode, path)
      return path
    } catch (err) {
      failed.set(mode, err instanceof Error ? err.message.split('\n')[0] : String(err))
      probes.push({ path: `gpujs ${mode}`, ok: false, note: failed.get(mode) ?? '' })
    }
  }
  return undefined
}

/**
 * auto: every backend that opens here, timed side by side (auto.ts); the fastest is installed, then confirmed
 * against the same kernels on the other thread count on the first large products. gpu.js joins only where a GPU
 * may be (webgpu, headlessgl, or a browser's WebGL): its CPU modes were 2–2.5× slower than one TS core in
 * `npm run bench`.
 */
function probeAuto(options: BackendOptions): BackendInfo {
  const probes: Probe[] = []
  const tried = autoCandidates(options, probes)
  const list: Candidate[] = tried.map((t) => ({
    name: label(t),
    note: '',
    threads: t.threads,
    n: t.backend === 'wasm' ? SIMD_PROBE_SIZE : PROBE_SIZE,
    run: (a, b, batch, m, k, n, flags = {}) => t.table.matmulBatched(a, b, batch, m, k, n, flags),
    workersOnly: t.workersOnly,
  }))
  const best = fastest(list, probes)
  const reason = summary(probes, list[best].name)
  const kind = (t: Installed) => (t.backend === 'parallel' ? 'cpu' : t.backend) // the same kernels on 1 thread or all
  const other = tried.findIndex((t) => kind(t) === kind(tried[best]) && t.threads !== tried[best].threads)
  if (other < 0) return install(tried[best], 'auto', reason, probes)
  const run = confirming(list[best], list[other], (winner, note) =>
    install(tried[list.indexOf(winner)], 'auto', `${reason}; confirmed ${note} → ${winner.name}`, probes),
  )
  const table = { ...tried[best].table, matmul: confirmed(run), matmulBatched: run }
  const pending = `${reason}; to be confirmed against ${list[other].name} on the first ${CONFIRM_CALLS} large products`
  return install({ ...tried[best], table }, 'auto', pending, probes)
}

/** A batched run as the kernel table's single-product entry. */
const confirmed =
  (run: Run): MatmulTable['matmul'] =>
  (a, b, m, k, n, flags = {}) =>
    run(a, b, 1, m, k, n, flags)

const label = (t: Installed) =>
  t.backend === 'gpujs' ? `gpujs ${t.gpujsMode}` : `${t.backend} (${t.threads} thread${t.threads > 1 ? 's' : ''})`

/** Every backend that opens here, the ones that do not noted in `probes`. */
function autoCandidates(options: BackendOptions, probes: Probe[]): Installed[] {
  const tried: Installed[] = []
  const consider = (name: Exclude<BackendName, 'auto'>, opts: BackendOptions) => {
    const chosen = open(name, { ...options, ...opts }, probes)
    if (typeof chosen === 'string') probes.push({ path: name, ok: false, note: chosen })
    else tried.push(chosen)
  }
  consider('cpu', {})
  consider('parallel', {})
  consider('wasm', { threads: 1 })
  if (tried.some((t) => t.backend === 'parallel')) consider('wasm', {})
  const gpu = (mode: GpujsMode) => mode === 'webgpu' || mode === 'headlessgl' || mode === 'webgl2' || mode === 'webgl'
  if (candidates([]).some(gpu)) consider('gpujs', {})
  return tried
}
