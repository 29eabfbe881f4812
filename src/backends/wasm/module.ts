// The module of the wasm backend's kernels other than matmul (elementwise, rows, attention: kernels.ts drives them)
// on this thread's private memory (driver.ts's), whether this runtime can run WebAssembly SIMD at all, and how
// their operands are laid out: consecutive regions of the memory, rows copied in and out with padding.
import { webAssembly } from '../webassembly.js'
import { DATA_BYTE, growTo } from '../threads/pool.js'
import { wasmModule, instantiate, FunctionBody } from './emit.js'
import { privateMemory, MAX_PAGES } from './driver.js'
import { addKernel, geluKernel, geluBackwardKernel, swigluKernel, swigluBackwardKernel } from './elementwise.js'
import { attentionForwardKernel, attentionBackwardKernel } from './attention.js'
import { layerNormKernel, layerNormBackwardKernel, sumAxisKernel, softmaxRowsKernel } from './rows.js'

/** The module's exports: byte addresses and counts in, nothing out (results are written to memory). */
export type Exports = {
  add: (a: number, b: number, dst: number, count: number) => void
  gelu: (src: number, dst: number, count: number) => void
  geluBackward: (src: number, dy: number, dst: number, count: number) => void
  swiglu: (g: number, u: number, dst: number, count: number) => void
  swigluBackward: (g: number, u: number, dh: number, dg: number, du: number, count: number) => void
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

/** The generated functions, by export name. */
export const kernelFunctions = (): Record<keyof Exports, FunctionBody> => ({
  add: addKernel(),
  gelu: geluKernel(),
  geluBackward: geluBackwardKernel(),
  swiglu: swigluKernel(),
  swigluBackward: swigluBackwardKernel(),
  softmaxRows: softmaxRowsKernel(),
  attentionForward: attentionForwardKernel(),
  attentionBackward: attentionBackwardKernel(),
  layerNorm: layerNormKernel(),
  layerNormBackward: layerNormBackwardKernel(),
  sumAxis: sumAxisKernel(),
})

let run: Exports | undefined
/** The kernels, instantiated on this thread's private memory on first use. */
export function kernels(): Exports {
  run ??= instantiate<Exports>(
    wasmModule({ shared: false, minPages: 1, maxPages: MAX_PAGES }, kernelFunctions()),
    privateMemory(),
  )
  return run
}

let support: string | undefined
/** Why this runtime cannot run the kernels ('' if it can): no WebAssembly, or no SIMD (a v128 local is refused). */
export function wasmSupport(): string {
  if (support === undefined) {
    const probe = new FunctionBody({})
    probe.zero().set(probe.local('v128'))
    if (!webAssembly) support = 'no WebAssembly in this runtime'
    else if (!webAssembly.validate(wasmModule({ shared: false, minPages: 1, maxPages: 1 }, { simd: probe })))
      support = 'WebAssembly SIMD is not supported here (a 128-bit SIMD module fails validation)'
    else support = ''
  }
  return support
}

/**
 * Float offsets of consecutive regions of the given sizes, from DATA_BYTE, in the private memory (grown to fit),
 * or undefined if they do not fit in its 1 GiB: the caller then runs the TS loop.
 */
export function regions(sizes: number[]): { floats: Float32Array; at: number[] } | undefined {
  const memory = privateMemory()
  const at: number[] = []
  let end = DATA_BYTE / 4
  for (const size of sizes) {
    at.push(end)
    end += Math.ceil(size / 4) * 4 // keep every region 16-byte aligned
  }
  if (!growTo(memory, 4 * end - DATA_BYTE)) return undefined
  return { floats: new Float32Array(memory.buffer), at }
}

/**
 * Copy (rows, cols) rows of `src` into rows of `stride` floats at `at`, the stride − cols after each set to `pad`.
 */
export function padRows(
  floats: Float32Array,
  at: number,
  src: Float32Array,
  rows: number,
  cols: number,
  stride: number,
  pad = 0,
): void {
  if (cols === stride) return floats.set(src.subarray(0, rows * cols), at)
  for (let r = 0; r < rows; r++) {
    floats.set(src.subarray(r * cols, (r + 1) * cols), at + r * stride)
    floats.fill(pad, at + r * stride + cols, at + (r + 1) * stride)
  }
}

/** `rows` rows of `stride` floats at `at`, `cols` of each, into out from row `outRow` on (or a fresh array): out. */
export function unpadRows(
  floats: Float32Array,
  at: number,
  rows: number,
  cols: number,
  stride: number,
  out?: Float32Array,
  outRow = 0,
): Float32Array {
  if (!out && cols === stride) return floats.slice(at, at + rows * cols)
  const into = out ?? new Float32Array(rows * cols)
  if (cols === stride) into.set(floats.subarray(at, at + rows * cols), outRow * cols)
  else
    for (let r = 0; r < rows; r++)
      into.set(floats.subarray(at + r * stride, at + r * stride + cols), (outRow + r) * cols)
  return into
}
