// The wasm backend's kernels other than matmul, on the one-thread module: each copies its operands into the
// memory, calls the generated function, and copies the result out; below its threshold (or for a shape the
// kernel does not take) it calls the TS loop instead.
import { cpu, type Kernels } from '../../kernels/index.js'
import { singleThread, regions, padRows, unpadRows } from './module.js'

/** Elementwise kernels below this many elements stay on the TS loops (copying in and out costs more). */
export const WASM_MIN_ELEMENTS = 256
/** Attention below this many score multiply-adds (B·H·Tq·Tk·hs) stays on the TS kernel, as one cached token does. */
export const WASM_MIN_ATTENTION = 32 * 32 * 32

/**
 * An elementwise kernel on the one-thread module: copy `inputs` (equal lengths) into its memory, run `kernel`
 * on their addresses and an output's, copy the output out.
 */
function elementwise(inputs: Float32Array[], kernel: (addresses: number[], count: number) => void): Float32Array {
  const length = inputs[0].length
  if (length === 0) return new Float32Array(0)
  const { floats, at } = regions([...inputs.map(() => length), length]) // the inputs, then the output
  inputs.forEach((input, i) => floats.set(input, at[i]))
  kernel(
    at.map((a) => 4 * a),
    Math.ceil(length / 4) * 4,
  ) // whole f32x4 vectors: regions are padded to 4 floats
  const out = at[inputs.length]
  return floats.slice(out, out + length)
}

/** add, and gelu and its backward through the SIMD exp, from WASM_MIN_ELEMENTS elements (everySize: always). */
export function elementwiseKernels(everySize: boolean): Pick<Kernels, 'add' | 'gelu' | 'geluBackward'> {
  const big = (a: Float32Array) => everySize || a.length >= WASM_MIN_ELEMENTS
  return {
    add: (a, b) =>
      big(a) && a.length === b.length
        ? elementwise([a, b], ([x, y, dst], count) => singleThread().run.add(x, y, dst, count))
        : cpu.add(a, b),
    gelu: (a) =>
      big(a) ? elementwise([a], ([src, dst], count) => singleThread().run.gelu(src, dst, count)) : cpu.gelu(a),
    geluBackward: (a, dy) =>
      big(a)
        ? elementwise([a, dy], ([src, g, dst], count) => singleThread().run.geluBackward(src, g, dst, count))
        : cpu.geluBackward(a, dy),
  }
}

type Attention = Pick<Kernels, 'attentionCausal' | 'attentionCausalBackward'>

/** attentionCausal and its backward per (b, h) in the generated kernels (attention.ts), where hs is a multiple of 4. */
export function attentionKernels(everySize: boolean): Attention {
  const big = (B: number, Tq: number, Tk: number, H: number, hs: number) =>
    hs % 4 === 0 && (everySize || B * H * Tq * Tk * hs >= WASM_MIN_ATTENTION)
  return {
    attentionCausal(q, k, v, B, Tq, Tk, kvRows, H, hs, scale) {
      if (!big(B, Tq, Tk, H, hs)) return cpu.attentionCausal(q, k, v, B, Tq, Tk, kvRows, H, hs, scale)
      const C = H * hs,
        TkPad = Math.ceil(Tk / 4) * 4
      const {
        floats,
        at: [aq, ak, av, ay, ap, akT],
      } = regions([B * Tq * C, B * kvRows * C, B * kvRows * C, B * Tq * C, B * H * Tq * TkPad, hs * TkPad])
      floats.set(q, aq)
      floats.set(k, ak)
      floats.set(v, av)
      const run = singleThread().run
      for (let b = 0; b < B; b++)
        for (let h = 0; h < H; h++) {
          const head = 4 * h * hs
          run.attentionForward(
            4 * (aq + b * Tq * C) + head,
            4 * (ak + b * kvRows * C) + head,
            4 * (av + b * kvRows * C) + head,
            4 * (ay + b * Tq * C) + head,
            4 * (ap + (b * H + h) * Tq * TkPad),
            4 * akT,
            Tq,
            Tk,
            TkPad,
            Tk - Tq,
            hs,
            4 * C,
            scale,
          )
        }
      return { y: floats.slice(ay, ay + B * Tq * C), probs: unpadRows(floats, ap, B * H * Tq, Tk, TkPad) }
    },
    attentionCausalBackward(dy, q, k, v, probs, B, Tq, Tk, kvRows, H, hs, scale) {
      if (!big(B, Tq, Tk, H, hs))
        return cpu.attentionCausalBackward(dy, q, k, v, probs, B, Tq, Tk, kvRows, H, hs, scale)
      const C = H * hs,
        TkPad = Math.ceil(Tk / 4) * 4,
        kv = B * kvRows * C
      const { floats, at } = regions([
        B * Tq * C,
        kv,
        kv,
        B * Tq * C,
        B * H * Tq * TkPad,
        B * Tq * C,
        kv,
        kv,
        hs * TkPad,
        Tq * TkPad,
      ])
      const [aq, ak, av, ady, ap, adq, adk, adv, avT, ads] = at
      floats.set(q, aq)
      floats.set(k, ak)
      floats.set(v, av)
      floats.set(dy, ady)
      padRows(floats, ap, probs, B * H * Tq, Tk, TkPad)
      floats.fill(0, adk, adk + 2 * kv) // rows of dk and dv past Tk stay 0 (dv follows dk)
      const run = singleThread().run
      for (let b = 0; b < B; b++)
        for (let h = 0; h < H; h++) {
          const head = 4 * h * hs,
            rowsQ = 4 * b * Tq * C + head,
            rowsK = 4 * b * kvRows * C + head
          run.attentionBackward(
            4 * aq + rowsQ,
            4 * ak + rowsK,
            4 * av + rowsK,
            4 * ady + rowsQ,
            4 * (ap + (b * H + h) * Tq * TkPad),
            4 * adq + rowsQ,
            4 * adk + rowsK,
            4 * adv + rowsK,
            4 * avT,
            4 * ads,
            Tq,
            Tk,
            TkPad,
            Tk - Tq,
            hs,
            4 * C,
            scale,
          )
        }
      return {
        dq: floats.slice(adq, adq + B * Tq * C),
        dk: floats.slice(adk, adk + kv),
        dv: floats.slice(adv, adv + kv),
      }
    },
  }
}

/** Softmax of each (rows, cols) row in SIMD over rows padded to 4 with −∞; returns y and each row's (max, Σ e^(x − max)). */
function softmaxPadded(x: Float32Array, rows: number, cols: number): { y: Float32Array; stats: Float32Array } {
  const colsPad = Math.ceil(cols / 4) * 4
  const {
    floats,
    at: [src, dst, stats],
  } = regions([rows * colsPad, rows * colsPad, 2 * rows])
  if (colsPad === cols) floats.set(x, src)
  else {
    floats.fill(-Infinity, src, src + rows * colsPad)
    for (let r = 0; r < rows; r++) floats.set(x.subarray(r * cols, (r + 1) * cols), src + r * colsPad)
  }
  singleThread().run.softmaxRows(4 * src, 4 * dst, 4 * stats, rows, colsPad)
  return { y: unpadRows(floats, dst, rows, cols, colsPad), stats: floats.slice(stats, stats + 2 * rows) }
}

/** softmaxRows, and crossEntropyRows on it (loss = max + log Σ e^(x − max) − x[target]), from WASM_MIN_ELEMENTS. */
export function softmaxKernels(everySize: boolean): Pick<Kernels, 'softmaxRows' | 'crossEntropyRows'> {
  const big = (rows: number, cols: number) => everySize || rows * cols >= WASM_MIN_ELEMENTS
  return {
    softmaxRows: (x, rows, cols) =>
      big(rows, cols) && cols > 0 ? softmaxPadded(x, rows, cols).y : cpu.softmaxRows(x, rows, cols),
    crossEntropyRows(x, targets, rows, cols, ignoreIndex) {
      if (!big(rows, cols) || cols === 0) return cpu.crossEntropyRows(x, targets, rows, cols, ignoreIndex)
      const { y, stats } = softmaxPadded(x, rows, cols)
      const losses = new Float32Array(rows)
      for (let r = 0; r < rows; r++)
        if (targets[r] !== ignoreIndex) losses[r] = stats[2 * r] + Math.log(stats[2 * r + 1]) - x[r * cols + targets[r]]
      return { losses, probs: y }
    },
  }
}

/** layerNormRows and its backward in SIMD (rows.ts) where cols is a multiple of 4, from WASM_MIN_ELEMENTS. */
export function layerNormKernels(everySize: boolean): Pick<Kernels, 'layerNormRows' | 'layerNormRowsBackward'> {
  const big = (rows: number, cols: number) =>
    cols % 4 === 0 && cols > 0 && rows > 0 && (everySize || rows * cols >= WASM_MIN_ELEMENTS)
  return {
    layerNormRows(x, w, b, rows, cols, eps) {
      if (!big(rows, cols)) return cpu.layerNormRows(x, w, b, rows, cols, eps)
      const {
        floats,
        at: [ax, aw, ab, ay, as],
      } = regions([rows * cols, cols, cols, rows * cols, 2 * rows])
      floats.set(x, ax)
      floats.set(w, aw)
      floats.set(b, ab)
      singleThread().run.layerNorm(4 * ax, 4 * aw, 4 * ab, 4 * ay, 4 * as, rows, cols, 1 / cols, eps)
      return {
        y: floats.slice(ay, ay + rows * cols),
        mean: floats.slice(as, as + rows),
        rstd: floats.slice(as + rows, as + 2 * rows),
      }
    },
    layerNormRowsBackward(dy, x, w, mean, rstd, rows, cols, withParams = true) {
      if (!big(rows, cols)) return cpu.layerNormRowsBackward(dy, x, w, mean, rstd, rows, cols, withParams)
      const {
        floats,
        at: [ady, ax, aw, as, adx, adw, adb, apart],
      } = regions([rows * cols, rows * cols, cols, 2 * rows, rows * cols, 2 * cols, 2 * cols, 2 * cols]) // dw, db: float64
      floats.set(dy, ady)
      floats.set(x, ax)
      floats.set(w, aw)
      floats.set(mean, as)
      floats.set(rstd, as + rows)
      floats.fill(0, adw, adw + 2 * cols)
      floats.fill(0, adb, adb + 4 * cols) // db, then the float32 partial sums
      singleThread().run.layerNormBackward(
        4 * ady,
        4 * ax,
        4 * aw,
        4 * as,
        4 * adx,
        4 * adw,
        4 * adb,
        4 * apart,
        rows,
        cols,
        1 / cols,
        withParams ? 1 : 0,
      )
      return {
        dx: floats.slice(adx, adx + rows * cols),
        dw: Float32Array.from(new Float64Array(floats.buffer, 4 * adw, withParams ? cols : 0)),
        db: Float32Array.from(new Float64Array(floats.buffer, 4 * adb, withParams ? cols : 0)),
      }
    },
  }
}

/** sumAxis in SIMD where inner is a multiple of 4 (a bias's gradient, Σ_rows dy), from WASM_MIN_ELEMENTS: bit for bit the TS loop's sums. */
export function reduceKernels(everySize: boolean): Pick<Kernels, 'sumAxis'> {
  return {
    sumAxis(a, outer, n, inner) {
      if (inner % 4 !== 0 || inner === 0 || !(everySize || a.length >= WASM_MIN_ELEMENTS))
        return cpu.sumAxis(a, outer, n, inner)
      const {
        floats,
        at: [src, dst],
      } = regions([outer * n * inner, outer * inner])
      floats.set(a.subarray(0, outer * n * inner), src)
      singleThread().run.sumAxis(4 * src, 4 * dst, outer, n, inner)
      return floats.slice(dst, dst + outer * inner)
    },
  }
}
