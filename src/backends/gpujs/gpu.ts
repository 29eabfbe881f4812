// gpu.js matmul kernels for the kernel table, built around gpu.js traps measured on the
// project's dev machine (each is shown avoided in test/kernels-backends.test.ts):
// K lives in `constants` (a loop bounded by an argument stops at loopMaxIterations without a word),
// every shape gets its own compiled kernel (no dynamic arguments or output), compiled kernels sit in a
// bounded LRU that destroy()s what it evicts, and results, which come back as rows, are flattened once.
// WebGPU (and threaded webasm) only answer with Promises: in Node they run in a bridge worker while the
// caller blocks on Atomics.wait (gpu-node.ts, installed by src/node.ts), so the table stays synchronous.
// gpu.js is an optional peer dependency (`npm install gpu.js` beside Tenny): only its types are imported here,
// the module itself comes from the bridge's loadGpujs() on first use, so Tenny installs and runs without it.
import { fail } from '../../errors.js'
import type { GPU, IKernelFunctionThis } from 'gpu.js'
import {
  matmul as cpuMatmul,
  matmulBatched as cpuMatmulBatched,
  transpose2d,
  type MatmulFlags,
} from '../../kernels/matmul.js'
import { addRowInPlace } from '../../kernels/rows.js'

/**
 * The gpu.js modes Tenny drives. 'webgpu' and 'webasm-threads' run in a bridge worker; 'webgl2', 'webgl' in browsers.
 */
export type GpujsMode = 'webgpu' | 'webgl2' | 'webgl' | 'headlessgl' | 'webasm-threads' | 'webasm' | 'cpu'
type Variant = 'nn' | 'nt' | 'tn'
type MatmulTable = { matmul: typeof cpuMatmul; matmulBatched: typeof cpuMatmulBatched }
type Dims = { M: number; K: number; N: number }
type This = IKernelFunctionThis<Dims>
/** A compiled gpu.js kernel as Tenny calls it (gpu.js's own types stay out of Tenny's published ones). */
type CompiledKernel = { (a: Float32Array, b: Float32Array): unknown; destroy(): void }

/**
 * Products with batch·m·k·n below this stay on the fallback table: a first call per shape compiles (10–50 ms),
 * which tiny products never pay back. On this CPU-only VM gpu.js never beats the TS kernels (bench/backends.ts:
 * webasm ≤ 0.85 GFLOP/s sync, ≤ 1.5 threaded, against 3.3 for cpu NT), so only setBackend('gpujs') uses it.
 * NOTE: untested on a real GPU; there the crossover is likely higher (upload and readback per call).
 */
export const GPUJS_MIN_FLOPS = 64 * 64 * 64
/** Compiled kernels kept per GpuMatmul: a training step of the tiny GPT uses ~15 shapes. */
export const KERNEL_CACHE_SIZE = 32

// C_z[y][x] = Σ_p op(A_z)[y][p] · op(B_z)[p][x], one output cell per thread; A_z, B_z are back to back.
function nn(this: This, a: Float32Array, b: Float32Array): number {
  let s = 0
  for (let p = 0; p < this.constants.K; p++)
    s +=
      a[(this.thread.z * this.constants.M + this.thread.y) * this.constants.K + p] *
      b[(this.thread.z * this.constants.K + p) * this.constants.N + this.thread.x]
  return s
}
function nt(this: This, a: Float32Array, b: Float32Array): number {
  // B_z stored (N, K)
  let s = 0
  for (let p = 0; p < this.constants.K; p++)
    s +=
      a[(this.thread.z * this.constants.M + this.thread.y) * this.constants.K + p] *
      b[(this.thread.z * this.constants.N + this.thread.x) * this.constants.K + p]
  return s
}
function tn(this: This, a: Float32Array, b: Float32Array): number {
  // A_z stored (K, M)
  let s = 0
  for (let p = 0; p < this.constants.K; p++)
    s +=
      a[(this.thread.z * this.constants.K + p) * this.constants.M + this.thread.y] *
      b[(this.thread.z * this.constants.K + p) * this.constants.N + this.thread.x]
  return s
}
const SOURCES = { nn, nt, tn }

/** Least-recently-used map of compiled kernels; what it evicts is destroy()ed (gpu.js would keep it alive). */
export class KernelCache<V extends { destroy(): void }> {
  private entries = new Map<string, V>()
  /** kernels destroyed on eviction so far */
  destroyed = 0
  constructor(readonly capacity: number) {}
  get size(): number {
    return this.entries.size
  }
  get(key: string, make: () => V): V {
    let value = this.entries.get(key)
    if (value)
      this.entries.delete(key) // re-insert below: Map order is recency order
    else value = make()
    this.entries.set(key, value)
    for (const [oldKey, old] of this.entries) {
      if (this.entries.size <= this.capacity) break
      this.entries.delete(oldKey)
      old.destroy()
      this.destroyed++
    }
    return value
  }
  clear(): void {
    for (const value of this.entries.values()) value.destroy()
    this.entries.clear()
  }
}

/** Flatten gpu.js's nested rows (z, y) of Float32Arrays into one (batch·m·n) array. */
export function flatten(out: unknown, size: number): Float32Array {
  const flat = new Float32Array(size)
  let at = 0
  const walk = (v: unknown): void => {
    if (v instanceof Float32Array) {
      flat.set(v, at)
      at += v.length
    } else if (Array.isArray(v)) for (const row of v) walk(row)
    else throw new Error(`gpu.js matmul: expected rows of Float32Array, got ${typeof v}`)
  }
  walk(out)
  if (at !== size) throw new Error(`gpu.js matmul: got ${at} values, expected ${size}`)
  return flat
}

/** One gpu.js instance in one mode, with its kernels cached by shape. */
export class GpuMatmul {
  private readonly gpu: GPU
  readonly cache: KernelCache<CompiledKernel>
  private readonly asyncMode: boolean
  constructor(
    readonly mode: Exclude<GpujsMode, 'webasm-threads'>,
    { cacheSize = KERNEL_CACHE_SIZE, asyncMode = false } = {},
  ) {
    this.gpu = new (gpujs().GPU)({ mode })
    this.cache = new KernelCache(cacheSize)
    this.asyncMode = asyncMode
  }

  /** op(A)·op(B) for `batch` products; a Promise in async modes. Aᵀ·Bᵀ transposes A first (rare). */
  run(
    a: Float32Array,
    b: Float32Array,
    batch: number,
    m: number,
    k: number,
    n: number,
    { transA = false, transB = false }: MatmulFlags = {},
  ): Float32Array | Promise<Float32Array> {
    if (transA && transB) {
      const aT = new Float32Array(a.length)
      for (let t = 0; t < batch; t++) aT.set(transpose2d(a.subarray(t * m * k, (t + 1) * m * k), k, m), t * m * k)
      return this.run(aT, b, batch, m, k, n, { transB })
    }
    const variant: Variant = transA ? 'tn' : transB ? 'nt' : 'nn'
    const kernel = this.cache.get(`${variant} ${batch}x${m}x${k}x${n}`, () =>
      this.gpu
        .createKernel<[Float32Array, Float32Array], Dims>(SOURCES[variant], {
          output: [n, m, batch], // x = column j, y = row i, z = matrix t
          constants: { M: m, K: k, N: n },
          tactic: 'precision',
          asyncMode: this.asyncMode,
        })
        .setLoopMaxIterations(Math.max(k, 1000)),
    ) // belt and braces: the loop bound is already a constant
    const out = kernel(a, b)
    return out instanceof Promise ? out.then((o: unknown) => flatten(o, batch * m * n)) : flatten(out, batch * m * n)
  }

  /** Has the WebGL context gone (GPU reset, a shader past the OS's time limit)? Then readback gives zeros, silently. */
  contextLost(): boolean {
    const context: unknown = Reflect.get(this.gpu, 'context')
    const isLost: unknown =
      typeof context === 'object' && context !== null ? Reflect.get(context, 'isContextLost') : undefined
    return typeof isLost === 'function' && isLost.call(context) === true
  }

  destroy(): void {
    this.cache.clear()
    void this.gpu.destroy()
  }
}

/** What Node adds to gpu.js (gpu-node.ts): the modes answering with Promises, run in a worker the caller blocks on. */
export type GpujsBridge = {
  open(mode: 'webgpu' | 'webasm-threads', timeoutMs: number, cacheSize: number): GpujsPath
  /** the modes worth trying on this machine, best first, and why others are left out ('' if none is) */
  candidates(): { modes: GpujsMode[]; skipped: string }
  /** the gpu.js module, loaded on first use; throws saying how to install it */
  loadGpujs(): unknown
}
let bridge: GpujsBridge | undefined
/** Install the bridge for gpu.js's webgpu and threaded webasm modes (src/node.ts does, with Node's). */
export function useGpujsBridge(installed: GpujsBridge | undefined): void {
  bridge = installed
}

type Gpujs = { GPU: typeof GPU }
let loaded: Gpujs | undefined
/** The gpu.js module, from the bridge's loader the first time (checked to be gpu.js), then as loaded. */
function gpujs(): Gpujs {
  if (loaded) return loaded
  if (!bridge) {
    const node = 'in Node import the `node` entry, which loads gpu.js when a gpujs backend is asked for'
    fail('gpu.js', `no loader here; ${node}; in a browser bundle call useGpujs(gpujs) with the module you import`)
  }
  const module = bridge.loadGpujs()
  if (!isGpujs(module)) fail('gpu.js', 'the module that loaded has no GPU class (not gpu.js 2?)')
  loaded = module
  return module
}

function isGpujs(module: unknown): module is Gpujs {
  return typeof module === 'object' && module !== null && 'GPU' in module && typeof module.GPU === 'function'
}

/** Does gpu.js see a WebGPU adapter (navigator.gpu)? */
export function webgpuAvailable(): Promise<boolean> {
  return gpujs().GPU.isWebGPUAvailable()
}

/** gpu.js modes worth trying here, best first: with Node's bridge, what it finds; without, synchronous webasm. */
export function gpujsCandidates(): { modes: GpujsMode[]; skipped: string } {
  return bridge
    ? bridge.candidates()
    : { modes: ['webasm'], skipped: "webgpu, headlessgl, webasm-threads: need Node's entry (src/node.ts)" }
}

/** Run op(A)·op(B) for `batch` products, synchronously; flags.bias is not applied here (gpujsTable adds it). */
export type MatmulRun = (
  a: Float32Array,
  b: Float32Array,
  batch: number,
  m: number,
  k: number,
  n: number,
  flags: MatmulFlags,
) => Float32Array
/** An opened gpu.js path: its mode, a synchronous runner, and how to release it. */
export type GpujsPath = {
  mode: GpujsMode
  run: MatmulRun
  close(): void
  /** why it stopped working since it opened ('' if it did not) */ failure(): string
}

/**
 * Open one gpu.js mode, prove it right (K > 1000, all three variants, batched) and return it; throws an
 * Error saying why when the mode is missing or wrong here. Bridge modes block up to timeoutMs to start.
 */
export function openGpujs(mode: GpujsMode, { timeoutMs = 30_000, cacheSize = KERNEL_CACHE_SIZE } = {}): GpujsPath {
  if (mode === 'webgpu' || mode === 'webasm-threads') {
    if (!bridge)
      fail(`gpu.js ${mode}`, "answers only with Promises, so it runs in a bridge worker, which Node's entry installs")
    return bridge.open(mode, timeoutMs, cacheSize)
  }
  const { GPU } = gpujs()
  if (mode === 'headlessgl' && !GPU.isHeadlessGLSupported) {
    const how = 'gpu.js builds it from source, and it needs an X display: run under `xvfb-run -a`'
    fail('gpu.js headlessgl', `the optional native package \`gl\` is not installed or has no display (${how})`)
  }
  if (mode === 'webasm' && !GPU.isWebAssemblySupported) fail('gpu.js webasm', 'WebAssembly is not supported here')
  if ((mode === 'webgl2' && !GPU.isWebGL2Supported) || (mode === 'webgl' && !GPU.isWebGLSupported)) {
    const where = 'a browser page, or a Web Worker with OffscreenCanvas'
    fail(`gpu.js ${mode}`, `no ${mode === 'webgl2' ? 'WebGL 2' : 'WebGL'} context here (${where})`)
  }
  const gm = new GpuMatmul(mode, { cacheSize })
  let lost = '' // once the WebGL context is lost, every product runs on the CPU and failure() says why
  const run: MatmulRun = (a, b, batch, m, k, n, flags) => {
    const { transA, transB } = flags // no bias: gpujsTable adds it after, to the CPU's result as to the kernel's
    if (lost) return cpuMatmulBatched(a, b, batch, m, k, n, { transA, transB })
    const c = gm.run(a, b, batch, m, k, n, flags)
    if (c instanceof Promise) fail(`gpu.js ${mode}`, 'kernel answered with a Promise')
    if (!gm.contextLost()) return c
    const at = `at a ${batch}×${m}×${k}×${n} product, whose zeros were not used`
    lost = `gpu.js ${mode}: the WebGL context was lost (${at})`
    return cpuMatmulBatched(a, b, batch, m, k, n, { transA, transB })
  }
  try {
    selfCheck(mode, run)
  } catch (err) {
    gm.destroy()
    throw err
  }
  return { mode, run, close: () => gm.destroy(), failure: () => lost }
}

/** Kernel-table entries that send products of ≥ minFlops (batch·m·k·n) to `run`, the rest to `fallback`. */
export function gpujsTable(run: MatmulRun, fallback: MatmulTable, minFlops = GPUJS_MIN_FLOPS): MatmulTable {
  const biased: MatmulRun = (a, b, batch, m, k, n, flags) => {
    // gpu.js kernels know no bias: add it after
    const c = run(a, b, batch, m, k, n, flags)
    if (flags.bias) addRowInPlace(c, flags.bias, batch * m, n)
    return c
  }
  return {
    matmul: (a, b, m, k, n, flags = {}) =>
      m * k * n < minFlops ? fallback.matmul(a, b, m, k, n, flags) : biased(a, b, 1, m, k, n, flags),
    matmulBatched: (a, b, batch, m, k, n, flags = {}) =>
      batch * m * k * n < minFlops
        ? fallback.matmulBatched(a, b, batch, m, k, n, flags)
        : biased(a, b, batch, m, k, n, flags),
  }
}

/** A product that catches trap 1 (K = 1030 > loopMaxIterations' 1000), odd shapes, every variant, batch 2. */
export function checkCases(): {
  a: Float32Array
  b: Float32Array
  batch: number
  m: number
  k: number
  n: number
  flags: MatmulFlags
}[] {
  const fill = (size: number, seed: number) => Float32Array.from({ length: size }, (_, i) => Math.sin(seed + i * 0.37))
  const [m, k, n] = [3, 1030, 5]
  return [{}, { transB: true }, { transA: true }, { transA: true, transB: true }].map((flags, i) => ({
    a: fill(2 * m * k, i),
    b: fill(2 * k * n, 10 + i),
    batch: 2,
    m,
    k,
    n,
    flags,
  }))
}

/** Throw naming the case and index where `got` differs from the CPU table by more than 1e-4 of the output's scale. */
export function compare(
  mode: GpujsMode,
  { a, b, batch, m, k, n, flags }: ReturnType<typeof checkCases>[number],
  got: Float32Array,
): void {
  const want = cpuMatmulBatched(a, b, batch, m, k, n, flags)
  const scale = want.reduce((s, v) => Math.max(s, Math.abs(v)), 1) // float32 sums' error grows with the output's scale
  for (let i = 0; i < want.length; i++) {
    if (got.length !== want.length || !(Math.abs(got[i] - want[i]) <= 1e-4 * scale)) {
      const product = `(${batch}, ${m}, ${k}, ${n}) ${JSON.stringify(flags)}`
      fail(`gpu.js ${mode}`, `self-check failed at index ${i} of ${product}: ${got[i]} vs CPU ${want[i]}`)
    }
  }
}

function selfCheck(mode: GpujsMode, run: MatmulRun): void {
  for (const c of checkCases()) compare(mode, c, run(c.a, c.b, c.batch, c.m, c.k, c.n, c.flags))
}
