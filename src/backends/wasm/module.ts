// The wasm backend's module: the bytes every kernel generator contributes to, whether this runtime can run them
// (SIMD validated on a tiny module), and the instances — one on a private memory for one thread, one per thread
// on the pool's shared memory — with the helpers that lay operands out in a memory.
import { webAssembly, type WasmMemory } from '../webassembly.js'
import { DATA_BYTE, growTo, type WorkerPool } from '../threads/pool.js'
import { wasmModule, FunctionBody } from './emit.js'
import { panelKernel, rowDotsKernel } from './matmul.js'
import { addKernel, geluKernel, geluBackwardKernel } from './elementwise.js'
import { attentionForwardKernel, attentionBackwardKernel } from './attention.js'
import { layerNormKernel, layerNormBackwardKernel, sumAxisKernel, softmaxRowsKernel } from './rows.js'

export type Panel = (
  a: number,
  aRow: number,
  aStep: number,
  bPanel: number,
  bStep: number,
  cPanel: number,
  init: number,
  mBlocks: number,
  kc: number,
  ldc: number,
) => void
/** The module's exports: byte addresses and counts in, nothing out (results are written to memory). */
export type Exports = {
  panel: Panel
  rowDots: (x: number, w: number, y: number, nPad: number, k: number) => void
  add: (a: number, b: number, dst: number, count: number) => void
  gelu: (src: number, dst: number, count: number) => void
  geluBackward: (src: number, dy: number, dst: number, count: number) => void
  softmaxRows: (src: number, dst: number, stats: number, rows: number, colsPad: number) => void
  sumAxis: (src: number, dst: number, outer: number, n: number, inner: number) => void
  layerNorm: (
    x: number,
    w: number,
    b: number,
    y: number,
    stats: number,
    rows: number,
    cols: number,
    invCols: number,
    eps: number,
  ) => void
  layerNormBackward: (
    dy: number,
    x: number,
    w: number,
    stats: number,
    dx: number,
    dw: number,
    db: number,
    partial: number,
    rows: number,
    cols: number,
    invCols: number,
    withParams: number,
  ) => void
  attentionForward: (
    q: number,
    k: number,
    v: number,
    y: number,
    probs: number,
    kT: number,
    Tq: number,
    Tk: number,
    TkPad: number,
    shift: number,
    hs: number,
    rowBytes: number,
    scale: number,
  ) => void
  attentionBackward: (
    q: number,
    k: number,
    v: number,
    dy: number,
    probs: number,
    dq: number,
    dk: number,
    dv: number,
    vT: number,
    ds: number,
    Tq: number,
    Tk: number,
    TkPad: number,
    shift: number,
    hs: number,
    rowBytes: number,
    scale: number,
  ) => void
}
const MAX_PAGES = 16384 // 1 GiB, as the pool's shared memory

/** The kernel module's bytes, importing a shared or a private memory as env.memory. */
export function kernelBytes(shared: boolean): Uint8Array {
  return wasmModule(
    { shared, minPages: 1, maxPages: MAX_PAGES },
    {
      panel: panelKernel(),
      rowDots: rowDotsKernel(),
      add: addKernel(),
      gelu: geluKernel(),
      geluBackward: geluBackwardKernel(),
      softmaxRows: softmaxRowsKernel(),
      attentionForward: attentionForwardKernel(),
      attentionBackward: attentionBackwardKernel(),
      layerNorm: layerNormKernel(),
      layerNormBackward: layerNormBackwardKernel(),
      sumAxis: sumAxisKernel(),
    },
  )
}

let support: string | undefined
/** Why this runtime cannot run the kernels ('' if it can): no WebAssembly, or no SIMD (a module with one v128 local fails validation). */
export function wasmSupport(): string {
  if (support === undefined) {
    const probe = new FunctionBody([])
    probe.zero().set(probe.local('v128'))
    if (!webAssembly) support = 'no WebAssembly in this runtime'
    else if (!webAssembly.validate(wasmModule({ shared: false, minPages: 1, maxPages: 1 }, { simd: probe })))
      support = 'WebAssembly SIMD is not supported here (a 128-bit SIMD module fails validation)'
    else support = ''
  }
  return support
}

/** A new instance's exports on `memory`. */
export function instantiate(memory: WasmMemory, shared: boolean): Exports {
  if (!webAssembly) throw new Error('wasm backend: no WebAssembly in this runtime')
  const instance = new webAssembly.Instance(new webAssembly.Module(kernelBytes(shared)), { env: { memory } })
  return instance.exports as Exports
}

export type Kernel = { memory: WasmMemory; run: Exports }
let single: Kernel | undefined // one thread: a private memory
let pooled: Kernel | undefined // the caller's instance on the pool's shared memory

export function singleThread(): Kernel {
  if (!single) {
    if (!webAssembly) throw new Error('wasm backend: no WebAssembly in this runtime')
    const memory = new webAssembly.Memory({ initial: 2, maximum: MAX_PAGES })
    single = { memory, run: instantiate(memory, false) }
  }
  return single
}

export function poolThreads(pool: WorkerPool): Kernel {
  pooled ??= { memory: pool.memory, run: instantiate(pool.memory, true) }
  return pooled
}

/** Float offsets of consecutive regions of the given sizes, from DATA_BYTE, in the one-thread module's memory (grown to fit). */
export function regions(sizes: number[]): { floats: Float32Array; at: number[] } {
  const { memory } = singleThread()
  const at: number[] = []
  let end = DATA_BYTE / 4
  for (const size of sizes) {
    at.push(end)
    end += Math.ceil(size / 4) * 4 // keep every region 16-byte aligned
  }
  if (!growTo(memory, 4 * end - DATA_BYTE))
    throw new Error(`wasm backend: ${end} floats of operands do not fit in 1 GiB`)
  return { floats: new Float32Array(memory.buffer), at }
}

/** Copy (rows, cols) rows of `src` into rows of `stride` floats at `at`, or back out (unpad). */
export function padRows(
  floats: Float32Array,
  at: number,
  src: Float32Array,
  rows: number,
  cols: number,
  stride: number,
): void {
  if (cols === stride) floats.set(src, at)
  else for (let r = 0; r < rows; r++) floats.set(src.subarray(r * cols, (r + 1) * cols), at + r * stride)
}
export function unpadRows(floats: Float32Array, at: number, rows: number, cols: number, stride: number): Float32Array {
  if (cols === stride) return floats.slice(at, at + rows * cols)
  const out = new Float32Array(rows * cols)
  for (let r = 0; r < rows; r++) out.set(floats.subarray(at + r * stride, at + r * stride + cols), r * cols)
  return out
}
