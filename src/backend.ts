// Which code runs matmul: the TS kernels on one thread ('cpu'), on every core ('parallel'), or gpu.js
// ('gpujs'); 'auto' probes this machine once and keeps the fastest path that proves correct. Only the
// matmul entries of the kernel table K change; everything else stays on the CPU table.
import { existsSync, readdirSync } from 'node:fs'
import { K, cpu, useKernels } from './kernels/index.js'
import * as parallel from './kernels/parallel.js'
import { openGpujs, gpujsTable, GPUJS_MIN_FLOPS, type GpujsMode, type GpujsPath, type MatmulRun } from './kernels/gpu.js'

export type BackendName = 'cpu' | 'parallel' | 'gpujs' | 'auto'
export type BackendOptions = { gpujsMode?: GpujsMode; timeoutMs?: number }
/** One path tried by a probe: did it open and prove correct, how fast was it, and why not if not. */
export type Probe = { path: string; ok: boolean; gflops?: number; note: string }
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
  parallel: ReturnType<typeof parallel.parallelInfo>
}

const CPU_TABLE = { matmul: cpu.matmul, matmulBatched: cpu.matmulBatched }
const GPU_ORDER: GpujsMode[] = ['webgpu', 'headlessgl', 'webasm-threads', 'webasm'] // the first that opens is 'gpujs'
const PROBE_SIZE = 256 // auto times one (256, 256, 256) NT product per path: ~5–40 ms each here
const MIN_GAIN = 1.15 // auto leaves the CPU table only for a path this much faster (the VM is noisy)

const opened = new Map<GpujsMode, GpujsPath>()
const failed = new Map<GpujsMode, string>() // a mode that failed once is not retried in this process
let info: BackendInfo = describe('cpu', 'auto (not probed yet)', 'TENNY_BACKEND unset: auto, probed on the first product big enough to matter', [])

/** Route matmul through `name`; returns backendInfo(). Throws saying why if that backend cannot run here. */
export function setBackend(name: BackendName, options: BackendOptions = {}): BackendInfo {
  if (name === 'cpu') return install('cpu', 'cpu', CPU_TABLE, `setBackend('cpu')`, [])
  if (name === 'parallel') {
    const started = parallel.startParallel(options.timeoutMs)
    if (started.failure) throw new Error(`setBackend('parallel'): ${started.failure}`)
    return install('parallel', 'parallel', parallel, `setBackend('parallel')`, [])
  }
  if (name === 'gpujs') {
    const probes: Probe[] = []
    const path = openFirst(options.gpujsMode ? [options.gpujsMode] : gpujsCandidates(probes), options, probes)
    if (!path) throw new Error(`setBackend('gpujs'): no gpu.js mode works here: ${probes.map((p) => `${p.path}: ${p.note}`).join('; ')}`)
    probes.push({ path: `gpujs ${path.mode}`, ok: true, note: 'self-check passed' })
    return install('gpujs', 'gpujs', gpujsTable(path.run, CPU_TABLE), `setBackend('gpujs')`, probes, path.mode)
  }
  if (name === 'auto') return probeAuto(options)
  throw new Error(`setBackend: unknown backend '${String(name)}': expected 'cpu', 'parallel', 'gpujs' or 'auto'`)
}

/** Which backend runs matmul, for which sizes, and why (including what probing found). */
export function backendInfo(): BackendInfo {
  const broken = info.gpujsMode && opened.get(info.gpujsMode)?.failure()
  return { ...info, reason: broken ? `${info.reason}; gpu.js failed since, the CPU runs its products: ${broken}` : info.reason, parallel: parallel.parallelInfo() }
}

function install(backend: BackendInfo['backend'], requested: BackendName, table: typeof CPU_TABLE, reason: string, probes: Probe[], gpujsMode?: GpujsMode): BackendInfo {
  useKernels(backend === 'cpu' ? {} : { matmul: table.matmul, matmulBatched: table.matmulBatched })
  info = describe(backend, requested, reason, probes, gpujsMode)
  return backendInfo()
}

function describe(backend: BackendInfo['backend'], requested: BackendInfo['requested'], reason: string, probes: Probe[], gpujsMode?: GpujsMode): BackendInfo {
  const threads = parallel.parallelInfo().threads
  const matmul = backend === 'cpu' ? 'TS kernels (src/kernels/matmul.ts), 1 thread'
    : backend === 'parallel' ? `TS matmulNT on ${threads} threads for batch·m·k·n ≥ ${parallel.PARALLEL_MIN_FLOPS}, TS kernels below`
    : `gpu.js ${gpujsMode} for batch·m·k·n ≥ ${GPUJS_MIN_FLOPS}, TS kernels below`
  const thresholds = { parallelMinFlops: parallel.PARALLEL_MIN_FLOPS, gpujsMinFlops: GPUJS_MIN_FLOPS }
  return { backend, requested, gpujsMode, matmul, reason, probes, thresholds, parallel: parallel.parallelInfo() }
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

/** GPU_ORDER, less webgpu and headlessgl where Linux shows no GPU device node: Dawn and headless-gl could only find software renderers there (and print warnings looking). */
function gpujsCandidates(probes: Probe[]): GpujsMode[] {
  if (process.platform !== 'linux' || existsSync('/dev/dri') || readdirSync('/dev').some((name) => name.startsWith('nvidia'))) return GPU_ORDER
  probes.push({ path: 'gpujs webgpu, headlessgl', ok: false, note: 'no GPU device node (/dev/dri, /dev/nvidia*): not tried' })
  return GPU_ORDER.filter((mode) => mode.startsWith('webasm'))
}

/** Time one (n, n, n) A·Bᵀ product after a warm-up call; median of 3, in GFLOP/s. */
function gflops(run: (a: Float32Array, b: Float32Array) => Float32Array, n = PROBE_SIZE): number {
  const a = Float32Array.from({ length: n * n }, (_, i) => Math.sin(i)), b = Float32Array.from({ length: n * n }, (_, i) => Math.cos(i))
  run(a, b)
  const times = [0, 1, 2].map(() => {
    const t0 = performance.now()
    run(a, b)
    return performance.now() - t0
  }).sort((x, y) => x - y)
  return (2 * n ** 3) / times[1] / 1e6
}

/**
 * auto: time the CPU table, the parallel path and the first gpu.js mode that opens at PROBE_SIZE³, and keep
 * the fastest; leaving the CPU table takes a gain of MIN_GAIN. Products too small for gpu.js go to the
 * faster of cpu and parallel.
 */
function probeAuto(options: BackendOptions): BackendInfo {
  const n = PROBE_SIZE
  const speed = (run: MatmulRun) => gflops((a, b) => run(a, b, 1, n, n, n, { transB: true }))
  const cpuSpeed = speed(cpu.matmulBatched)
  const probes: Probe[] = [{ path: 'cpu', ok: true, gflops: cpuSpeed, note: 'TS kernels, 1 thread' }]
  const started = parallel.startParallel(options.timeoutMs)
  const parallelSpeed = started.failure ? 0 : speed(parallel.matmulBatched)
  probes.push(started.failure ? { path: 'parallel', ok: false, note: started.failure } : { path: 'parallel', ok: true, gflops: parallelSpeed, note: `${started.threads} threads` })
  const path = openFirst(gpujsCandidates(probes), options, probes)
  const gpuSpeed = path ? speed(path.run) : 0
  if (path) probes.push({ path: `gpujs ${path.mode}`, ok: true, gflops: gpuSpeed, note: 'self-check passed' })
  const summary = `probed at ${n}³: ${probes.filter((p) => p.gflops !== undefined).map((p) => `${p.path} ${p.gflops?.toFixed(1)}`).join(', ')} GFLOP/s`
  const cpuSide = parallelSpeed >= MIN_GAIN * cpuSpeed ? 'parallel' : 'cpu'
  const cpuSideSpeed = Math.max(cpuSpeed, cpuSide === 'parallel' ? parallelSpeed : 0)
  // TODO: on a GPU machine, time gpu.js against the CPU side at 64³–1024³ and set its threshold from the crossover (untested: no GPU here)
  if (path && gpuSpeed >= MIN_GAIN * cpuSideSpeed) return install('gpujs', 'auto', gpujsTable(path.run, cpuSide === 'parallel' ? parallel : CPU_TABLE), `${summary} → gpujs ${path.mode}`, probes, path.mode)
  if (cpuSide === 'parallel') return install('parallel', 'auto', parallel, `${summary} → parallel`, probes)
  return install('cpu', 'auto', CPU_TABLE, `${summary} → cpu`, probes)
}

/**
 * The default (TENNY_BACKEND unset) is auto, probed lazily: products too small for any other path stay on
 * the CPU table, and the first one big enough to matter runs the probe (~0.5 s here) and then itself.
 */
const AUTO_ON_FIRST_USE: typeof CPU_TABLE = {
  matmul(a, b, m, k, n, flags = {}) {
    if (m * k * n < Math.min(parallel.PARALLEL_MIN_FLOPS, GPUJS_MIN_FLOPS)) return cpu.matmul(a, b, m, k, n, flags)
    probeAuto({})
    return K.matmul(a, b, m, k, n, flags)
  },
  matmulBatched(a, b, batch, m, k, n, flags = {}) {
    if (batch * m * k * n < Math.min(parallel.PARALLEL_MIN_FLOPS, GPUJS_MIN_FLOPS)) return cpu.matmulBatched(a, b, batch, m, k, n, flags)
    probeAuto({})
    return K.matmulBatched(a, b, batch, m, k, n, flags)
  },
}

const isBackendName = (name: string): name is BackendName => ['cpu', 'parallel', 'gpujs', 'auto'].includes(name)

/** TENNY_BACKEND=cpu|parallel|gpujs|auto picks the backend at startup; a backend that cannot run falls back to cpu, saying why. */
function fromEnvironment(): void {
  const wanted = process.env.TENNY_BACKEND
  if (!wanted) {
    useKernels(AUTO_ON_FIRST_USE)
    return
  }
  if (!isBackendName(wanted)) throw new Error(`TENNY_BACKEND=${wanted}: expected cpu, parallel, gpujs or auto`)
  try {
    setBackend(wanted)
    info = { ...info, reason: `TENNY_BACKEND=${wanted}: ${info.reason}` }
  } catch (err) {
    install('cpu', 'cpu', CPU_TABLE, `TENNY_BACKEND=${wanted} failed, using cpu: ${err instanceof Error ? err.message : String(err)}`, [])
  }
}
fromEnvironment()
