// Which code runs matmul: the TS kernels on one thread ('cpu'), on every core ('parallel'), or gpu.js
// ('gpujs'); 'auto' measures them here and keeps the fastest that proves correct (auto.ts). Each backend is a
// Partial<Kernels> of matmul entries; useKernels() installs it, and only this file calls it.
import { cpu, useKernels, type Kernels } from '../kernels/index.js'
import { qmatmul, qmatmulT, type MatmulFn } from '../kernels/quant.js'
import { startParallel, parallelInfo, parallelKernels, PARALLEL_MIN_FLOPS } from './parallel.js'
import { openGpujs, gpujsTable, gpujsCandidates, GPUJS_MIN_FLOPS, type GpujsMode, type GpujsPath } from './gpu.js'
import { chooseAuto, type Probe } from './auto.js'

export type BackendName = 'cpu' | 'parallel' | 'gpujs' | 'auto'
export type BackendOptions = { gpujsMode?: GpujsMode; timeoutMs?: number }
export type { Probe }
export type BackendInfo = {
  /** what runs matmul now */
  backend: 'cpu' | 'parallel' | 'gpujs'
  /** what was asked for, and by whom */
  requested: BackendName | 'auto (not probed yet)'
  gpujsMode?: GpujsMode
  /** which kernels run which products */
  matmul: string
  reason: string
  probes: Probe[]
  thresholds: { parallelMinFlops: number; gpujsMinFlops: number }
  parallel: ReturnType<typeof parallelInfo>
}
/** The matmul entries a backend provides; the quantized matmuls' tiles go through them too. */
export type MatmulTable = Pick<Kernels, 'matmul' | 'matmulBatched'>

const BACKENDS: BackendName[] = ['cpu', 'parallel', 'gpujs', 'auto']
const CPU_TABLE: MatmulTable = { matmul: cpu.matmul, matmulBatched: cpu.matmulBatched }
const opened = new Map<GpujsMode, GpujsPath>()
const failed = new Map<GpujsMode, string>() // a mode that failed once is not retried in this process
let info: BackendInfo = describe('cpu', 'auto (not probed yet)', 'the CPU table: no backend installed yet', [])

/** Route matmul through `name`; returns backendInfo(). Throws saying why if that backend cannot run here. */
export function setBackend(name: BackendName, options: BackendOptions = {}): BackendInfo {
  if (name === 'cpu') return install('cpu', 'cpu', CPU_TABLE, `setBackend('cpu')`, [])
  if (name === 'parallel') {
    const started = startParallel(options.timeoutMs)
    if (started.failure) throw new Error(`setBackend('parallel'): ${started.failure}`)
    return install('parallel', 'parallel', parallelKernels, `setBackend('parallel')`, [])
  }
  if (name === 'gpujs') {
    const probes: Probe[] = []
    const path = openFirst(options.gpujsMode ? [options.gpujsMode] : candidates(probes), options, probes)
    if (!path) throw new Error(`setBackend('gpujs'): no gpu.js mode works here: ${probes.map((p) => `${p.path}: ${p.note}`).join('; ')}`)
    probes.push({ path: `gpujs ${path.mode}`, ok: true, note: 'self-check passed' })
    return install('gpujs', 'gpujs', gpujsTable(path.run, CPU_TABLE), `setBackend('gpujs')`, probes, path.mode)
  }
  if (name === 'auto') return probeAuto(options)
  throw new Error(`setBackend: unknown backend '${String(name)}': expected ${BACKENDS.map((b) => `'${b}'`).join(', ')}`)
}

/** Which backend runs matmul, for which sizes, and why (including what probing found). */
export function backendInfo(): BackendInfo {
  const broken = info.gpujsMode && opened.get(info.gpujsMode)?.failure()
  return { ...info, reason: broken ? `${info.reason}; gpu.js failed since, the CPU runs its products: ${broken}` : info.reason, parallel: parallelInfo() }
}

/**
 * Install the backend TENNY_BACKEND names (cpu | parallel | gpujs | auto), or auto when it is unset. Nothing
 * starts now: the first product big enough to matter picks (auto) or starts the backend. A name that is not a
 * backend is one clear error at the first product, not at import.
 */
export function useDefaultBackend(): void {
  const env: unknown = Reflect.get(globalThis, 'process')
  const wanted = typeof env === 'object' && env !== null ? Reflect.get(Reflect.get(env, 'env') ?? {}, 'TENNY_BACKEND') : undefined
  if (typeof wanted !== 'string' || wanted === '') return lazily('auto', 'TENNY_BACKEND unset: auto, probed on the first product big enough to matter')
  if (!isBackendName(wanted)) {
    const why = `TENNY_BACKEND=${wanted}: not a backend (expected one of ${BACKENDS.join(', ')})`
    useKernels(withQuant({ matmul: () => { throw new Error(why) }, matmulBatched: () => { throw new Error(why) } }))
    info = describe('cpu', 'auto (not probed yet)', `${why}: every product throws until setBackend() picks one`, [])
    return
  }
  lazily(wanted, `TENNY_BACKEND=${wanted}, started on the first product big enough to matter`)
}

const isBackendName = (name: string): name is BackendName => BACKENDS.some((b) => b === name)

/** Install a table that starts backend `name` on the first product of ≥ 64³ multiply-adds, then runs it there. */
function lazily(name: BackendName, reason: string): void {
  const minFlops = Math.min(PARALLEL_MIN_FLOPS, GPUJS_MIN_FLOPS)
  const start = () => {
    if (name === 'auto') return setBackend('auto')
    try {
      return { ...setBackend(name), reason: `TENNY_BACKEND=${name}` }
    } catch (err) { // the environment asked for it, so fall back and say why rather than fail every product
      return install('cpu', 'cpu', CPU_TABLE, `TENNY_BACKEND=${name} failed, using cpu: ${err instanceof Error ? err.message : String(err)}`, [])
    }
  }
  useKernels(withQuant({
    matmul(a, b, m, k, n, flags = {}) {
      if (m * k * n < minFlops) return cpu.matmul(a, b, m, k, n, flags)
      start()
      return installedMatmul.matmul(a, b, m, k, n, flags)
    },
    matmulBatched(a, b, batch, m, k, n, flags = {}) {
      if (batch * m * k * n < minFlops) return cpu.matmulBatched(a, b, batch, m, k, n, flags)
      start()
      return installedMatmul.matmulBatched(a, b, batch, m, k, n, flags)
    },
  }))
  info = describe('cpu', name === 'auto' ? 'auto (not probed yet)' : name, reason, [])
}

let installedMatmul: MatmulTable = CPU_TABLE

/** A table's products plus the quantized matmuls, whose tiles go through the same products. */
function withQuant(table: MatmulTable): Partial<Kernels> {
  const product: MatmulFn = (a, b, m, k, n, flags) => table.matmul(a, b, m, k, n, flags)
  return { ...table, qmatmul: (x, q, m) => qmatmul(x, q, m, product), qmatmulT: (dy, q, m) => qmatmulT(dy, q, m, product) }
}

function install(backend: BackendInfo['backend'], requested: BackendName, table: MatmulTable, reason: string, probes: Probe[], gpujsMode?: GpujsMode): BackendInfo {
  installedMatmul = table
  useKernels(backend === 'cpu' ? {} : withQuant(table))
  info = describe(backend, requested, reason, probes, gpujsMode)
  return backendInfo()
}

function describe(backend: BackendInfo['backend'], requested: BackendInfo['requested'], reason: string, probes: Probe[], gpujsMode?: GpujsMode): BackendInfo {
  const matmul = {
    cpu: 'TS kernels (src/kernels/matmul.ts), 1 thread',
    parallel: `TS matmulNT on ${parallelInfo().threads} threads for batch·m·k·n ≥ ${PARALLEL_MIN_FLOPS}, TS kernels below`,
    gpujs: `gpu.js ${gpujsMode} for batch·m·k·n ≥ ${GPUJS_MIN_FLOPS}, TS kernels below`,
  }[backend]
  const thresholds = { parallelMinFlops: PARALLEL_MIN_FLOPS, gpujsMinFlops: GPUJS_MIN_FLOPS }
  return { backend, requested, gpujsMode, matmul, reason, probes, thresholds, parallel: parallelInfo() }
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

/** auto: measure the candidates (auto.ts) and install the one it picks. */
function probeAuto(options: BackendOptions): BackendInfo {
  const probes: Probe[] = []
  const started = startParallel(options.timeoutMs)
  const gpu = openFirst(candidates(probes), options, probes)
  const choice = chooseAuto({ cpu: CPU_TABLE, parallel: started.failure ? started.failure : parallelKernels, gpu }, probes)
  const cpuSide = choice.fallback === 'parallel' ? parallelKernels : CPU_TABLE
  if (choice.backend === 'gpujs' && gpu) return install('gpujs', 'auto', gpujsTable(gpu.run, cpuSide), choice.reason, probes, gpu.mode)
  return install(choice.fallback, 'auto', cpuSide, choice.reason, probes)
}
