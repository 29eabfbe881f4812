// The wasm backend: matmul through the generated 4 × 8 SIMD microkernel (matmul.ts). The caller packs op(A) and
// op(B) into the module's memory (pack.ts), every thread then takes 8-column panels of C from a shared counter,
// and C is copied back out. One thread uses a private memory; all threads share the pool's.
import { matmul as cpuMatmul, matmulBatched as cpuMatmulBatched, type MatmulFlags } from '../../kernels/matmul.js'
import { cpu, type Kernels } from '../../kernels/index.js'
import { webAssembly, type WasmMemory } from '../webassembly.js'
import { DATA_BYTE, PARAMS, growTo, sharedPool, type WorkerEnd, type WorkerPool } from '../pool.js'
import { wasmModule, FunctionBody } from './emit.js'
import { panelKernel } from './matmul.js'
import { geluKernel, geluBackwardKernel } from './elementwise.js'
import { attentionForwardKernel, attentionBackwardKernel } from './attention.js'
import { packA, packB, unpackC, type Layout } from './pack.js'

/**
 * Products below these sizes stay on the TS kernels (bench/backends.ts measured the crossovers): under
 * WASM_MIN_FLOPS multiply-adds or WASM_MIN_ROWS rows of C, packing costs more than the SIMD kernel saves.
 * Threads join from WASM_THREADS_MIN_FLOPS, where sharing the panels pays for waking the workers.
 */
export const WASM_MIN_FLOPS = 16 * 16 * 16
export const WASM_MIN_ROWS = 4
export const WASM_THREADS_MIN_FLOPS = 64 * 64 * 64
/** Elementwise kernels below this many elements stay on the TS loops (copying in and out costs more). */
export const WASM_MIN_ELEMENTS = 256
/** Attention below this many score multiply-adds (B·H·Tq·Tk·hs) stays on the TS kernel, as one cached token does. */
export const WASM_MIN_ATTENTION = 32 * 32 * 32
/** This backend's job kind in the pool's JOB word (worker.ts dispatches on it). */
export const WASM_PANELS = 2

type Panel = (aPack: number, aStride: number, bPanel: number, cPanel: number, mBlocks: number, kc: number, ldc: number) => void
/** The module's exports: byte addresses and counts in, nothing out (results are written to memory). */
type Exports = {
  panel: Panel
  gelu: (src: number, dst: number, count: number) => void
  geluBackward: (src: number, dy: number, dst: number, count: number) => void
  attentionForward: (q: number, k: number, v: number, y: number, probs: number, kT: number, Tq: number, Tk: number, TkPad: number, shift: number, hs: number, rowBytes: number, scale: number) => void
  attentionBackward: (q: number, k: number, v: number, dy: number, probs: number, dq: number, dk: number, dv: number, vT: number, ds: number, Tq: number, Tk: number, TkPad: number, shift: number, hs: number, rowBytes: number, scale: number) => void
}
const MAX_PAGES = 16384 // 1 GiB, as the pool's shared memory
/** p runs in chunks of KC (a block's chunk 4 KiB, a panel's 8 KiB: both in L1); an item is at most ROW_BLOCKS blocks of 4 rows. */
const KC = 256
const ROW_BLOCKS = 16

// job parameters in the pool's control words: the item counter, shapes, and where each operand is (in floats
// from the start of the memory): A as given (A_SOURCE, threads only), A and B packed, C
const NEXT = PARAMS, ITEMS = PARAMS + 1, BATCH = PARAMS + 2, M = PARAMS + 3, KK = PARAMS + 4, N = PARAMS + 5
const TRANS_A = PARAMS + 6, RANGE = PARAMS + 7, A_SOURCE = PARAMS + 8, A = PARAMS + 9, B = PARAMS + 10, C = PARAMS + 11

/** The kernel module's bytes, importing a shared or a private memory as env.memory. */
export function kernelBytes(shared: boolean): Uint8Array {
  return wasmModule({ shared, minPages: 1, maxPages: MAX_PAGES }, {
    panel: panelKernel(), gelu: geluKernel(), geluBackward: geluBackwardKernel(),
    attentionForward: attentionForwardKernel(), attentionBackward: attentionBackwardKernel(),
  })
}

let support: string | undefined
/** Why this runtime cannot run the kernels ('' if it can): no WebAssembly, or no SIMD (a module with one v128 local fails validation). */
export function wasmSupport(): string {
  if (support === undefined) {
    const probe = new FunctionBody([])
    probe.zero().set(probe.local('v128'))
    if (!webAssembly) support = 'no WebAssembly in this runtime'
    else if (!webAssembly.validate(wasmModule({ shared: false, minPages: 1, maxPages: 1 }, { simd: probe }))) support = 'WebAssembly SIMD is not supported here (a 128-bit SIMD module fails validation)'
    else support = ''
  }
  return support
}

/** A new instance's exports on `memory`. */
function instantiate(memory: WasmMemory, shared: boolean): Exports {
  if (!webAssembly) throw new Error('wasm backend: no WebAssembly in this runtime')
  const instance = new webAssembly.Instance(new webAssembly.Module(kernelBytes(shared)), { env: { memory } })
  return instance.exports as Exports
}

type Kernel = { memory: WasmMemory; run: Exports }
let single: Kernel | undefined // one thread: a private memory
let pooled: Kernel | undefined // the caller's instance on the pool's shared memory

function singleThread(): Kernel {
  if (!single) {
    if (!webAssembly) throw new Error('wasm backend: no WebAssembly in this runtime')
    const memory = new webAssembly.Memory({ initial: 2, maximum: MAX_PAGES })
    single = { memory, run: instantiate(memory, false) }
  }
  return single
}

function poolThreads(pool: WorkerPool): Kernel {
  pooled ??= { memory: pool.memory, run: instantiate(pool.memory, true) }
  return pooled
}

/** The call's shapes as the control words hold them. */
function layoutOf(ctl: Int32Array): Layout {
  const m = ctl[M], n = ctl[N]
  return { batch: ctl[BATCH], m, k: ctl[KK], n, mBlocks: Math.ceil(m / 4), nPanels: Math.ceil(n / 8) }
}

/**
 * Take items from the shared counter until none is left. An item is up to RANGE blocks of 4 rows of C for one
 * batch entry t: pack those rows of A, zero them in C, then C += A·B chunk by chunk of p, panel by panel.
 * `source` holds A as given, from float `at` (the caller's array, or the memory when threads share the work).
 */
function runItems(ctl: Int32Array, memory: Float32Array, source: Float32Array, at: number, panel: Panel): void {
  const L = layoutOf(ctl), { m, k, mBlocks, nPanels } = L, range = ctl[RANGE]
  const perEntry = Math.ceil(mBlocks / range), ldc = nPanels * 8
  for (let item = Atomics.add(ctl, NEXT, 1); item < ctl[ITEMS]; item = Atomics.add(ctl, NEXT, 1)) {
    const t = Math.floor(item / perEntry), ib0 = (item % perEntry) * range, ib1 = Math.min(ib0 + range, mBlocks)
    packA(source, at + t * m * k, ctl[TRANS_A] === 1, L, t, ib0, ib1, memory, ctl[A])
    const cRows = ctl[C] + (t * mBlocks * 4 + ib0 * 4) * ldc // &C_t[4·ib0][0]
    memory.fill(0, cRows, cRows + (ib1 - ib0) * 4 * ldc)
    for (let p0 = 0; p0 < k; p0 += KC) {
      const aChunk = 4 * (ctl[A] + ((t * mBlocks + ib0) * k + p0) * 4)
      for (let jb = 0; jb < nPanels; jb++) {
        const bChunk = 4 * (ctl[B] + ((t * nPanels + jb) * k + p0) * 8)
        panel(aChunk, 16 * k, bChunk, 4 * (cRows + jb * 8), ib1 - ib0, Math.min(KC, k - p0), 4 * ldc)
      }
    }
  }
}

/** `batch` products op(A_t)·op(B_t) through the microkernel, on one thread or on the pool's. */
export function wasmMatmul(a: Float32Array, b: Float32Array, batch: number, m: number, k: number, n: number, flags: MatmulFlags, threads: boolean): Float32Array {
  if (m === 0 || n === 0 || k === 0) return new Float32Array(batch * m * n) // the kernel's loops run at least once
  const L: Layout = { batch, m, k, n, mBlocks: Math.ceil(m / 4), nPanels: Math.ceil(n / 8) }
  const pool = threads ? sharedPool() : undefined
  const shared = pool !== undefined && !pool.failure
  const module = shared ? poolThreads(pool) : singleThread()
  const source = shared ? batch * m * k : 0 // with threads, A is copied into the memory as given
  const aSize = batch * L.mBlocks * 4 * k, bSize = batch * L.nPanels * 8 * k, cSize = batch * L.mBlocks * 4 * L.nPanels * 8
  const base = DATA_BYTE / 4
  if (!growTo(module.memory, 4 * (source + aSize + bSize + cSize))) return cpuMatmulBatched(a, b, batch, m, k, n, flags) // past 1 GiB
  const memory = new Float32Array(module.memory.buffer)
  const ctl = new Int32Array(module.memory.buffer, 0, PARAMS + 16)
  ctl[BATCH] = batch; ctl[M] = m; ctl[KK] = k; ctl[N] = n; ctl[TRANS_A] = flags.transA ? 1 : 0
  ctl[A_SOURCE] = base; ctl[A] = base + source; ctl[B] = ctl[A] + aSize; ctl[C] = ctl[B] + bSize
  ctl[RANGE] = Math.min(ROW_BLOCKS, Math.max(1, Math.ceil(L.mBlocks / (4 * (shared ? pool.size + 1 : 1)))))
  ctl[ITEMS] = batch * Math.ceil(L.mBlocks / ctl[RANGE])
  packB(b, flags.transB ?? false, L, memory, ctl[B])
  Atomics.store(ctl, NEXT, 0)
  if (!shared) {
    runItems(ctl, memory, a, 0, module.run.panel)
    return unpackC(memory, ctl[C], L)
  }
  memory.set(a.subarray(0, batch * m * k), base)
  pool.start()
  const taken = pool.post(WASM_PANELS)
  runItems(ctl, memory, memory, base, module.run.panel)
  try {
    pool.join(taken)
  } catch {
    return cpuMatmulBatched(a, b, batch, m, k, n, flags) // the pool is retired; its failure says why
  }
  return unpackC(memory, ctl[C], L)
}

/** A worker's share of a WASM_PANELS job (worker.ts calls it), on its own instance of the module. */
let workerPanel: Panel | undefined
export function wasmJob(end: WorkerEnd): void {
  workerPanel ??= instantiate(end.init.memory, true).panel
  const memory = new Float32Array(end.init.memory.buffer) // made per job: the memory may have grown since the last
  runItems(end.ctl, memory, memory, end.ctl[A_SOURCE], workerPanel)
  end.progress()
}

/**
 * An elementwise kernel on the one-thread module: copy `inputs` (equal lengths) into its memory, run `kernel`
 * on their addresses and an output's, copy the output out.
 */
function elementwise(inputs: Float32Array[], kernel: (addresses: number[], count: number) => void): Float32Array {
  const length = inputs[0].length, padded = Math.ceil(length / 4) * 4
  if (length === 0) return new Float32Array(0)
  const { memory } = singleThread()
  if (!growTo(memory, 4 * padded * (inputs.length + 1))) throw new Error(`wasm backend: ${length} elements do not fit in 1 GiB`)
  const floats = new Float32Array(memory.buffer), base = DATA_BYTE / 4
  inputs.forEach((input, i) => floats.set(input, base + i * padded))
  const addresses = inputs.map((_, i) => 4 * (base + i * padded))
  const out = base + inputs.length * padded
  kernel([...addresses, 4 * out], padded)
  return floats.slice(out, out + length)
}

/** gelu and its backward through the SIMD exp, from WASM_MIN_ELEMENTS elements (everySize: always). */
function elementwiseKernels(everySize: boolean): Pick<Kernels, 'gelu' | 'geluBackward'> {
  const big = (a: Float32Array) => everySize || a.length >= WASM_MIN_ELEMENTS
  return {
    gelu: (a) => (big(a) ? elementwise([a], ([src, dst], count) => singleThread().run.gelu(src, dst, count)) : cpu.gelu(a)),
    geluBackward: (a, dy) => (big(a) ? elementwise([a, dy], ([src, g, dst], count) => singleThread().run.geluBackward(src, g, dst, count)) : cpu.geluBackward(a, dy)),
  }
}

/**
 * The backend's kernel-table entries: small products on the TS kernels, the rest on 1 thread or on all.
 * everySize sends every product to the SIMD kernel (and to the threads, if any), as the tests do.
 */
export function wasmKernels({ threads, everySize = false }: { threads: boolean; everySize?: boolean }): Pick<Kernels, 'matmul' | 'matmulBatched'> & Partial<Kernels> {
  return { ...matmulKernels(threads, everySize), ...elementwiseKernels(everySize), ...attentionKernels(everySize) }
}

function matmulKernels(threads: boolean, everySize: boolean): Pick<Kernels, 'matmul' | 'matmulBatched'> {
  const route = (batch: number, m: number, k: number, n: number) => everySize || (batch * m * k * n >= WASM_MIN_FLOPS && m >= WASM_MIN_ROWS)
  const shared = (batch: number, m: number, k: number, n: number) => threads && (everySize || batch * m * k * n >= WASM_THREADS_MIN_FLOPS)
  return {
    matmul: (a, b, m, k, n, flags = {}) => (route(1, m, k, n) ? wasmMatmul(a, b, 1, m, k, n, flags, shared(1, m, k, n)) : cpuMatmul(a, b, m, k, n, flags)),
    matmulBatched: (a, b, batch, m, k, n, flags = {}) => (route(batch, m, k, n) ? wasmMatmul(a, b, batch, m, k, n, flags, shared(batch, m, k, n)) : cpuMatmulBatched(a, b, batch, m, k, n, flags)),
  }
}

/** Float offsets of consecutive regions of the given sizes, from DATA_BYTE, in the one-thread module's memory (grown to fit). */
function regions(sizes: number[]): { floats: Float32Array; at: number[] } {
  const { memory } = singleThread()
  const at: number[] = []
  let end = DATA_BYTE / 4
  for (const size of sizes) {
    at.push(end)
    end += Math.ceil(size / 4) * 4 // keep every region 16-byte aligned
  }
  if (!growTo(memory, 4 * end - DATA_BYTE)) throw new Error(`wasm backend: ${end} floats of attention operands do not fit in 1 GiB`)
  return { floats: new Float32Array(memory.buffer), at }
}

/** Copy (rows, cols) rows of `src` into rows of `stride` floats at `at`, or back out (unpad). */
function padRows(floats: Float32Array, at: number, src: Float32Array, rows: number, cols: number, stride: number): void {
  if (cols === stride) floats.set(src, at)
  else for (let r = 0; r < rows; r++) floats.set(src.subarray(r * cols, (r + 1) * cols), at + r * stride)
}
function unpadRows(floats: Float32Array, at: number, rows: number, cols: number, stride: number): Float32Array {
  if (cols === stride) return floats.slice(at, at + rows * cols)
  const out = new Float32Array(rows * cols)
  for (let r = 0; r < rows; r++) out.set(floats.subarray(at + r * stride, at + r * stride + cols), r * cols)
  return out
}

type Attention = Pick<Kernels, 'attentionCausal' | 'attentionCausalBackward'>

/** attentionCausal and its backward per (b, h) in the generated kernels (attention.ts), where hs is a multiple of 4. */
function attentionKernels(everySize: boolean): Attention {
  const big = (B: number, Tq: number, Tk: number, H: number, hs: number) => hs % 4 === 0 && (everySize || B * H * Tq * Tk * hs >= WASM_MIN_ATTENTION)
  return {
    attentionCausal(q, k, v, B, Tq, Tk, kvRows, H, hs, scale) {
      if (!big(B, Tq, Tk, H, hs)) return cpu.attentionCausal(q, k, v, B, Tq, Tk, kvRows, H, hs, scale)
      const C = H * hs, TkPad = Math.ceil(Tk / 4) * 4
      const { floats, at: [aq, ak, av, ay, ap, akT] } = regions([B * Tq * C, B * kvRows * C, B * kvRows * C, B * Tq * C, B * H * Tq * TkPad, hs * TkPad])
      floats.set(q, aq); floats.set(k, ak); floats.set(v, av)
      const run = singleThread().run
      for (let b = 0; b < B; b++)
        for (let h = 0; h < H; h++) {
          const head = 4 * h * hs
          run.attentionForward(4 * (aq + b * Tq * C) + head, 4 * (ak + b * kvRows * C) + head, 4 * (av + b * kvRows * C) + head, 4 * (ay + b * Tq * C) + head,
            4 * (ap + (b * H + h) * Tq * TkPad), 4 * akT, Tq, Tk, TkPad, Tk - Tq, hs, 4 * C, scale)
        }
      return { y: floats.slice(ay, ay + B * Tq * C), probs: unpadRows(floats, ap, B * H * Tq, Tk, TkPad) }
    },
    attentionCausalBackward(dy, q, k, v, probs, B, Tq, Tk, kvRows, H, hs, scale) {
      if (!big(B, Tq, Tk, H, hs)) return cpu.attentionCausalBackward(dy, q, k, v, probs, B, Tq, Tk, kvRows, H, hs, scale)
      const C = H * hs, TkPad = Math.ceil(Tk / 4) * 4, kv = B * kvRows * C
      const { floats, at } = regions([B * Tq * C, kv, kv, B * Tq * C, B * H * Tq * TkPad, B * Tq * C, kv, kv, hs * TkPad, Tq * TkPad])
      const [aq, ak, av, ady, ap, adq, adk, adv, avT, ads] = at
      floats.set(q, aq); floats.set(k, ak); floats.set(v, av); floats.set(dy, ady)
      padRows(floats, ap, probs, B * H * Tq, Tk, TkPad)
      floats.fill(0, adk, adk + 2 * kv) // rows of dk and dv past Tk stay 0 (dv follows dk)
      const run = singleThread().run
      for (let b = 0; b < B; b++)
        for (let h = 0; h < H; h++) {
          const head = 4 * h * hs, rowsQ = 4 * b * Tq * C + head, rowsK = 4 * b * kvRows * C + head
          run.attentionBackward(4 * aq + rowsQ, 4 * ak + rowsK, 4 * av + rowsK, 4 * ady + rowsQ, 4 * (ap + (b * H + h) * Tq * TkPad),
            4 * adq + rowsQ, 4 * adk + rowsK, 4 * adv + rowsK, 4 * avT, 4 * ads, Tq, Tk, TkPad, Tk - Tq, hs, 4 * C, scale)
        }
      return { dq: floats.slice(adq, adq + B * Tq * C), dk: floats.slice(adk, adk + kv), dv: floats.slice(adv, adv + kv) }
    },
  }
}
