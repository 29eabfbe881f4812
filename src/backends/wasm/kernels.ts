// The wasm backend's kernels other than matmul: each copies its operands into this thread's memory (module.ts's
// regions), calls the generated function, and copies the result out. Large inputs go through in tiles of at most
// TILE floats an operand (elementwise: slices; row kernels: whole rows), so the memory stays small. Below its
// threshold, for a shape a kernel does not take, or where even one tile does not fit in 1 GiB, the TS loop runs.
import { cpu, type Kernels } from '../../kernels/index.js'
import { kernels, regions, padRows, unpadRows } from './module.js'

/** Elementwise kernels below this many elements stay on the TS loops (copying in and out costs more). */
export const WASM_MIN_ELEMENTS = 256
/** Attention below this many score multiply-adds (B·H·Tq·Tk·hs) stays on the TS kernel, as one cached token does. */
export const WASM_MIN_ATTENTION = 32 * 32 * 32
/**
 * Floats of one operand copied in per call (4 MiB): add(a, a) of 10⁸ floats once asked for 1.2 GB of memory at
 * once and was refused; in tiles it takes 12 MB. A tile of ≥ 2¹⁸ floats costs nothing measurable against one call.
 */
const TILE = 1 << 20
const ceil4 = (n: number) => Math.ceil(n / 4) * 4
/** Rows of `cols` floats in a tile: as many as TILE holds, at least one (and no more than there are). */
const rowsPerTile = (rows: number, cols: number) => Math.min(rows, Math.max(1, Math.floor(TILE / Math.max(1, cols))))

/** An elementwise kernel on `inputs` (equal lengths), slice by slice of TILE: copy in, run, copy the output out. */
function elementwise(inputs: Float32Array[], kernel: (addresses: number[], count: number) => void): Float32Array {
  const length = inputs[0].length
  const out = new Float32Array(length)
  for (let start = 0; start < length; start += TILE) {
    const count = Math.min(TILE, length - start)
    const { floats, at } = regions([...inputs.map(() => count), count])! // ≤ 4 tiles: 16 MiB always fit
    inputs.forEach((input, i) => floats.set(input.subarray(start, start + count), at[i]))
    kernel(
      at.map((a) => 4 * a),
      ceil4(count), // whole f32x4 vectors: regions are padded to 4 floats
    )
    out.set(floats.subarray(at[inputs.length], at[inputs.length] + count), start)
  }
  return out
}

/** add, and gelu and its backward through the SIMD exp, from WASM_MIN_ELEMENTS elements (everySize: always). */
export function elementwiseKernels(everySize: boolean): Pick<Kernels, 'add' | 'gelu' | 'geluBackward'> {
  const big = (a: Float32Array) => everySize || a.length >= WASM_MIN_ELEMENTS
  return {
    add: (a, b) =>
      big(a) && a.length === b.length
        ? elementwise([a, b], ([x, y, dst], count) => kernels().add(x, y, dst, count))
        : cpu.add(a, b),
    gelu: (a) => (big(a) ? elementwise([a], ([src, dst], count) => kernels().gelu(src, dst, count)) : cpu.gelu(a)),
    geluBackward: (a, dy) =>
      big(a)
        ? elementwise([a, dy], ([src, g, dst], count) => kernels().geluBackward(src, g, dst, count))
        : cpu.geluBackward(a, dy),
  }
}

/**
 * Softmax of each (rows, cols) row, tile by tile of whole rows (padded to 4 with −∞, which exp turns into 0):
 * y, and each row's max and Σ e^(x − max). Undefined if one row does not fit.
 */
function softmaxTiled(
  x: Float32Array,
  rows: number,
  cols: number,
): { y: Float32Array; stats: Float32Array } | undefined {
  const colsPad = ceil4(cols),
    per = rowsPerTile(rows, colsPad)
  const space = regions([per * colsPad, per * colsPad, 2 * per])
  if (!space) return undefined
  const {
    floats,
    at: [src, dst, st],
  } = space
  const y = new Float32Array(rows * cols),
    stats = new Float32Array(2 * rows)
  for (let r0 = 0; r0 < rows; r0 += per) {
    const count = Math.min(per, rows - r0)
    padRows(floats, src, x.subarray(r0 * cols), count, cols, colsPad, -Infinity)
    kernels().softmaxRows(4 * src, 4 * dst, 4 * st, count, colsPad)
    unpadRows(floats, dst, count, cols, colsPad, y, r0)
    stats.set(floats.subarray(st, st + 2 * count), 2 * r0)
  }
  return { y, stats }
}

/** softmaxRows, and crossEntropyRows on it (loss = max + log Σ e^(x − max) − x[target]), from WASM_MIN_ELEMENTS. */
export function softmaxKernels(everySize: boolean): Pick<Kernels, 'softmaxRows' | 'crossEntropyRows'> {
  const big = (rows: number, cols: number) => cols > 0 && (everySize || rows * cols >= WASM_MIN_ELEMENTS)
  return {
    softmaxRows: (x, rows, cols) =>
      (big(rows, cols) ? softmaxTiled(x, rows, cols)?.y : undefined) ?? cpu.softmaxRows(x, rows, cols),
    crossEntropyRows(x, targets, rows, cols, ignoreIndex) {
      const soft = big(rows, cols) ? softmaxTiled(x, rows, cols) : undefined
      if (!soft) return cpu.crossEntropyRows(x, targets, rows, cols, ignoreIndex)
      const { y, stats } = soft
      const losses = new Float32Array(rows)
      for (let r = 0; r < rows; r++)
        if (targets[r] !== ignoreIndex) losses[r] = stats[2 * r] + Math.log(stats[2 * r + 1]) - x[r * cols + targets[r]]
      return { losses, probs: y }
    },
  }
}

type LayerNorm = Pick<Kernels, 'layerNormRows' | 'layerNormRowsBackward'>

/** layerNormRows tile by tile of rows (w and b copied once); undefined if one row does not fit. */
function layerNormTiled(x: Float32Array, w: Float32Array, b: Float32Array, rows: number, cols: number, eps: number) {
  const per = rowsPerTile(rows, cols)
  const space = regions([cols, cols, per * cols, per * cols, 2 * per])
  if (!space) return undefined
  const {
    floats,
    at: [aw, ab, ax, ay, as],
  } = space
  floats.set(w.subarray(0, cols), aw)
  floats.set(b.subarray(0, cols), ab)
  const y = new Float32Array(rows * cols),
    mean = new Float32Array(rows),
    rstd = new Float32Array(rows)
  for (let r0 = 0; r0 < rows; r0 += per) {
    const count = Math.min(per, rows - r0)
    floats.set(x.subarray(r0 * cols, (r0 + count) * cols), ax)
    kernels().layerNorm(4 * ax, 4 * aw, 4 * ab, 4 * ay, 4 * as, count, cols, 1 / cols, eps)
    y.set(floats.subarray(ay, ay + count * cols), r0 * cols)
    mean.set(floats.subarray(as, as + count), r0) // the kernel writes the tile's means, then its rstds
    rstd.set(floats.subarray(as + count, as + 2 * count), r0)
  }
  return { y, mean, rstd }
}

/**
 * layerNormRowsBackward tile by tile of rows: dw and db (float64, with the kernel's float32 partial sums) stay in
 * the memory across tiles and are read once at the end. Undefined if one row does not fit.
 */
function layerNormBackwardTiled(
  ...[dy, x, w, mean, rstd, rows, cols, withParams = true]: Parameters<LayerNorm['layerNormRowsBackward']>
) {
  const per = rowsPerTile(rows, cols)
  const space = regions([cols, 2 * cols, 2 * cols, 2 * cols, per * cols, per * cols, 2 * per, per * cols])
  if (!space) return undefined
  const {
    floats,
    at: [aw, adw, adb, apart, ady, ax, as, adx],
  } = space
  floats.set(w.subarray(0, cols), aw)
  floats.fill(0, adw, adw + 6 * cols) // dw and db (float64), then the partial sums (float32): contiguous
  const dx = new Float32Array(rows * cols)
  for (let r0 = 0; r0 < rows; r0 += per) {
    const count = Math.min(per, rows - r0),
      tile = [r0 * cols, (r0 + count) * cols]
    floats.set(dy.subarray(tile[0], tile[1]), ady)
    floats.set(x.subarray(tile[0], tile[1]), ax)
    floats.set(mean.subarray(r0, r0 + count), as)
    floats.set(rstd.subarray(r0, r0 + count), as + count)
    const params = withParams ? 1 : 0
    kernels().layerNormBackward(
      4 * ady,
      4 * ax,
      4 * aw,
      4 * as,
      4 * adx,
      4 * adw,
      4 * adb,
      4 * apart,
      count,
      cols,
      1 / cols,
      params,
    )
    dx.set(floats.subarray(adx, adx + count * cols), tile[0])
  }
  const sums = (at: number) => Float32Array.from(new Float64Array(floats.buffer, 4 * at, withParams ? cols : 0))
  return { dx, dw: sums(adw), db: sums(adb) }
}

/** layerNormRows and its backward in SIMD (rows.ts) where cols is a multiple of 4, from WASM_MIN_ELEMENTS. */
export function layerNormKernels(everySize: boolean): LayerNorm {
  const big = (rows: number, cols: number) =>
    cols % 4 === 0 && cols > 0 && rows > 0 && (everySize || rows * cols >= WASM_MIN_ELEMENTS)
  return {
    layerNormRows: (x, w, b, rows, cols, eps) =>
      (big(rows, cols) ? layerNormTiled(x, w, b, rows, cols, eps) : undefined) ??
      cpu.layerNormRows(x, w, b, rows, cols, eps),
    layerNormRowsBackward: (dy, x, w, mean, rstd, rows, cols, withParams = true) =>
      (big(rows, cols) ? layerNormBackwardTiled(dy, x, w, mean, rstd, rows, cols, withParams) : undefined) ??
      cpu.layerNormRowsBackward(dy, x, w, mean, rstd, rows, cols, withParams),
  }
}

type Attention = Pick<Kernels, 'attentionCausal' | 'attentionCausalBackward'>
type Forward = Attention['attentionCausal']
type Backward = Attention['attentionCausalBackward']

/** attentionCausal per (b, h) in the generated kernel (attention.ts); undefined if the operands do not fit. */
const attentionForward = (...[q, k, v, B, Tq, Tk, kvRows, H, hs, scale]: Parameters<Forward>) => {
  const C = H * hs,
    TkPad = ceil4(Tk)
  const space = regions([B * Tq * C, B * kvRows * C, B * kvRows * C, B * Tq * C, B * H * Tq * TkPad, hs * TkPad])
  if (!space) return undefined
  const {
    floats,
    at: [aq, ak, av, ay, ap, akT],
  } = space
  floats.set(q, aq)
  floats.set(k, ak)
  floats.set(v, av)
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const rowsQ = 4 * (b * Tq * C + h * hs), // byte offsets of head h of batch b's rows
        rowsK = 4 * (b * kvRows * C + h * hs)
      const [q0, k0, v0, y0, p0] = [
        4 * aq + rowsQ,
        4 * ak + rowsK,
        4 * av + rowsK,
        4 * ay + rowsQ,
        ap + (b * H + h) * Tq * TkPad,
      ]
      kernels().attentionForward(q0, k0, v0, y0, 4 * p0, 4 * akT, Tq, Tk, TkPad, Tk - Tq, hs, 4 * C, scale)
    }
  const probs = new Float32Array(B * H * Tq * Tk)
  unpadRows(floats, ap, B * H * Tq, Tk, TkPad, probs)
  return { y: floats.slice(ay, ay + B * Tq * C), probs }
}

/** attentionCausalBackward per (b, h) in the generated kernel (attention.ts); undefined if the operands do not fit. */
const attentionBackward = (...[dy, q, k, v, probs, B, Tq, Tk, kvRows, H, hs, scale]: Parameters<Backward>) => {
  const C = H * hs,
    TkPad = ceil4(Tk),
    kv = B * kvRows * C,
    rowsOfQ = B * Tq * C
  const space = regions([rowsOfQ, kv, kv, rowsOfQ, B * H * Tq * TkPad, rowsOfQ, kv, kv, hs * TkPad, Tq * TkPad])
  if (!space) return undefined
  const [aq, ak, av, ady, ap, adq, adk, adv, avT, ads] = space.at
  const floats = space.floats
  floats.set(q, aq)
  floats.set(k, ak)
  floats.set(v, av)
  floats.set(dy, ady)
  padRows(floats, ap, probs, B * H * Tq, Tk, TkPad)
  floats.fill(0, adk, adk + 2 * kv) // rows of dk and dv past Tk stay 0 (dv follows dk)
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const rowsQ = 4 * (b * Tq * C + h * hs), // byte offsets of head h of batch b's rows
        rowsK = 4 * (b * kvRows * C + h * hs)
      const [q0, k0, v0, dy0] = [4 * aq + rowsQ, 4 * ak + rowsK, 4 * av + rowsK, 4 * ady + rowsQ]
      const [p0, dq0, dk0, dv0] = [
        4 * (ap + (b * H + h) * Tq * TkPad),
        4 * adq + rowsQ,
        4 * adk + rowsK,
        4 * adv + rowsK,
      ]
      kernels().attentionBackward(
        q0,
        k0,
        v0,
        dy0,
        p0,
        dq0,
        dk0,
        dv0,
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
  return { dq: floats.slice(adq, adq + rowsOfQ), dk: floats.slice(adk, adk + kv), dv: floats.slice(adv, adv + kv) }
}

/** attentionCausal and its backward in the generated kernels where hs is a multiple of 4, from WASM_MIN_ATTENTION. */
export function attentionKernels(everySize: boolean): Attention {
  const big = (B: number, Tq: number, Tk: number, H: number, hs: number) =>
    hs % 4 === 0 && (everySize || B * H * Tq * Tk * hs >= WASM_MIN_ATTENTION)
  return {
    attentionCausal: (q, k, v, B, Tq, Tk, kvRows, H, hs, scale) =>
      (big(B, Tq, Tk, H, hs) ? attentionForward(q, k, v, B, Tq, Tk, kvRows, H, hs, scale) : undefined) ??
      cpu.attentionCausal(q, k, v, B, Tq, Tk, kvRows, H, hs, scale),
    attentionCausalBackward: (dy, q, k, v, probs, B, Tq, Tk, kvRows, H, hs, scale) =>
      (big(B, Tq, Tk, H, hs) ? attentionBackward(dy, q, k, v, probs, B, Tq, Tk, kvRows, H, hs, scale) : undefined) ??
      cpu.attentionCausalBackward(dy, q, k, v, probs, B, Tq, Tk, kvRows, H, hs, scale),
  }
}

/**
 * sumAxis in SIMD where inner is a multiple of 4 (a bias's gradient, Σ_rows dy), from WASM_MIN_ELEMENTS: TS's sums
 * exactly.
 */
export function reduceKernels(everySize: boolean): Pick<Kernels, 'sumAxis'> {
  return {
    sumAxis(a, outer, n, inner) {
      const simd = inner % 4 === 0 && inner > 0 && (everySize || a.length >= WASM_MIN_ELEMENTS)
      const space = simd ? regions([outer * n * inner, outer * inner]) : undefined
      if (!space) return cpu.sumAxis(a, outer, n, inner)
      const {
        floats,
        at: [src, dst],
      } = space
      floats.set(a.subarray(0, outer * n * inner), src)
      kernels().sumAxis(4 * src, 4 * dst, outer, n, inner)
      return floats.slice(dst, dst + outer * inner)
    },
  }
}
