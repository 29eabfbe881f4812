// The wasm backend's kernels other than matmul: each copies its operands into this thread's memory (module.ts's
// regions), calls the generated function, and copies the result out. Large inputs go through in tiles of at most
// TILE floats an operand (elementwise: slices; row kernels: whole rows), so the memory stays small. Below its
// threshold, for a shape a kernel does not take, or where even one tile does not fit in 1 GiB, the TS loop runs.
import { cpu, type Kernels } from '../../kernels/index.js'
import { kernels, regions, padRows, unpadRows } from './module.js'

/** Elementwise kernels below this many elements stay on the TS loops (copying in and out costs more). */
export const WASM_MIN_ELEMENTS = 256
/**
 * Attention below this many score multiply-adds (B·H·Tq·Tk·hs) stays on the TS kernel, as one cached token does.
 */
export const WASM_MIN_ATTENTION = 32 * 32 * 32
/**
 * Floats of one operand copied in per call (16 MiB; wasmKernels' `tile` sets another, as the tests do): add(a, a)
 * of 10⁸ floats once asked for 1.2 GB of memory at once and was refused; in tiles it takes 48 MB. One tile comes
 * out as one slice; more are gathered into an array allocated whole, whose zero fill cost 4–7% of a softmax of 2²¹.
 */
export const TILE = 1 << 22
const ceil4 = (n: number) => Math.ceil(n / 4) * 4
/** Rows of `cols` floats in a tile: as many as `tile` floats hold, at least one (and no more than there are). */
const rowsPerTile = (rows: number, cols: number, tile: number) =>
  Math.min(rows, Math.max(1, Math.floor(tile / Math.max(1, cols))))

/**
 * An elementwise kernel on `inputs` (equal lengths) giving `outputs` arrays of that length, slice by slice of
 * `tile`: copy in, run, copy the outputs out.
 */
function elementwiseN(
  inputs: Float32Array[],
  outputs: number,
  kernel: (addresses: number[], count: number) => void,
  tile: number,
): Float32Array[] {
  const length = inputs[0].length
  if (length === 0) return Array.from({ length: outputs }, () => new Float32Array(0)) // the loops run at least once
  const out = length > tile ? Array.from({ length: outputs }, () => new Float32Array(length)) : undefined
  for (let start = 0; start < length; start += tile) {
    const count = Math.min(tile, length - start)
    const { floats, at } = regions(Array(inputs.length + outputs).fill(count))! // ≤ 5 tiles of 16 MiB always fit
    inputs.forEach((input, i) => floats.set(input.subarray(start, start + count), at[i]))
    kernel(
      at.map((a) => 4 * a),
      ceil4(count), // whole f32x4 vectors: regions are padded to 4 floats
    )
    const results = at.slice(inputs.length)
    if (!out) return results.map((r) => floats.slice(r, r + count))
    results.forEach((r, o) => out[o].set(floats.subarray(r, r + count), start))
  }
  return out!
}
const elementwise = (inputs: Float32Array[], kernel: (addresses: number[], count: number) => void, tile: number) =>
  elementwiseN(inputs, 1, kernel, tile)[0]

type Elementwise = Pick<Kernels, 'add' | 'gelu' | 'geluBackward' | 'swiglu' | 'swigluBackward'>
/** add, and gelu, swiglu and their backwards through the SIMD exp, from WASM_MIN_ELEMENTS elements (everySize: all). */
export function elementwiseKernels(everySize: boolean, tile = TILE): Elementwise {
  const big = (a: Float32Array) => everySize || a.length >= WASM_MIN_ELEMENTS
  return {
    add: (a, b) =>
      big(a) && a.length === b.length
        ? elementwise([a, b], ([x, y, dst], count) => kernels().add(x, y, dst, count), tile)
        : cpu.add(a, b),
    gelu: (a) =>
      big(a) ? elementwise([a], ([src, dst], count) => kernels().gelu(src, dst, count), tile) : cpu.gelu(a),
    geluBackward: (a, dy) =>
      big(a)
        ? elementwise([a, dy], ([src, g, dst], count) => kernels().geluBackward(src, g, dst, count), tile)
        : cpu.geluBackward(a, dy),
    swiglu: (g, u) =>
      big(g) ? elementwise([g, u], ([a, b, dst], count) => kernels().swiglu(a, b, dst, count), tile) : cpu.swiglu(g, u),
    swigluBackward: (g, u, dh, wantG, wantU) => {
      if (!big(g)) return cpu.swigluBackward(g, u, dh, wantG, wantU)
      const run = ([a, b, d, dg, du]: number[], count: number) => kernels().swigluBackward(a, b, d, dg, du, count)
      const [dg, du] = elementwiseN([g, u, dh], 2, run, tile) // both from one σ: computing one costs as much
      return { dg: wantG ? dg : null, du: wantU ? du : null }
    },
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
  tile: number,
): { y: Float32Array; stats: Float32Array } | undefined {
  const colsPad = ceil4(cols),
    per = rowsPerTile(rows, colsPad, tile)
  const space = regions([per * colsPad, per * colsPad, 2 * per])
  if (!space) return undefined
  const {
    floats,
    at: [src, dst, st],
  } = space
  if (per === rows) {
    padRows(floats, src, x, rows, cols, colsPad, -Infinity)
    kernels().softmaxRows(4 * src, 4 * dst, 4 * st, rows, colsPad)
    return { y: unpadRows(floats, dst, rows, cols, colsPad), stats: floats.slice(st, st + 2 * rows) }
  }
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

/**
 * softmaxRows, and crossEntropyRows on it (loss = max + log Σ e^(x − max) − x[target]), from WASM_MIN_ELEMENTS.
 */
export function softmaxKernels(everySize: boolean, tile = TILE): Pick<Kernels, 'softmaxRows' | 'crossEntropyRows'> {
  const big = (rows: number, cols: number) => cols > 0 && (everySize || rows * cols >= WASM_MIN_ELEMENTS)
  return {
    softmaxRows: (x, rows, cols) =>
      (big(rows, cols) ? softmaxTiled(x, rows, cols, tile)?.y : undefined) ?? cpu.softmaxRows(x, rows, cols),
    crossEntropyRows(x, targets, rows, cols, ignoreIndex) {
      const soft = big(rows, cols) ? softmaxTiled(x, rows, cols, tile) : undefined
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
function layerNormTiled(
  tile: number,
  ...[x, w, b, rows, cols, eps]: Parameters<LayerNorm['layerNormRows']>
): ReturnType<LayerNorm['layerNormRows']> | undefined {
  const per = rowsPerTile(rows, cols, tile)
  const space = regions([cols, cols, per * cols, per * cols, 2 * per])
  if (!space) return undefined
  const {
    floats,
    at: [aw, ab, ax, ay, as],
  } = space
  floats.set(w.subarray(0, cols), aw)
  floats.set(b.subarray(0, cols), ab)
  const run = (r0: number, count: number) => {
    floats.set(x.subarray(r0 * cols, (r0 + count) * cols), ax)
    kernels().layerNorm(4 * ax, 4 * aw, 4 * ab, 4 * ay, 4 * as, count, cols, 1 / cols, eps) // means, then rstds
  }
  if (per === rows) {
    run(0, rows)
    return {
      y: floats.slice(ay, ay + rows * cols),
      mean: floats.slice(as, as + rows),
      rstd: floats.slice(as + rows, as + 2 * rows),
    }
  }
  const y = new Float32Array(rows * cols),
    mean = new Float32Array(rows),
    rstd = new Float32Array(rows)
  for (let r0 = 0; r0 < rows; r0 += per) {
    const count = Math.min(per, rows - r0)
    run(r0, count)
    y.set(floats.subarray(ay, ay + count * cols), r0 * cols)
    mean.set(floats.subarray(as, as + count), r0)
    rstd.set(floats.subarray(as + count, as + 2 * count), r0)
  }
  return { y, mean, rstd }
}

/**
 * layerNormRowsBackward tile by tile of rows: dw and db (float64, with the kernel's float32 partial sums) stay in
 * the memory across tiles and are read once at the end. Undefined if one row does not fit.
 */
function layerNormBackwardTiled(
  tile: number,
  ...[dy, x, w, mean, rstd, rows, cols, withParams = true]: Parameters<LayerNorm['layerNormRowsBackward']>
): ReturnType<LayerNorm['layerNormRowsBackward']> | undefined {
  const per = rowsPerTile(rows, cols, tile)
  const space = regions([cols, 2 * cols, 2 * cols, 2 * cols, per * cols, per * cols, 2 * per, per * cols])
  if (!space) return undefined
  const {
    floats,
    at: [aw, adw, adb, apart, ady, ax, as, adx],
  } = space
  floats.set(w.subarray(0, cols), aw)
  floats.fill(0, adw, adw + 6 * cols) // dw and db (float64), then the partial sums (float32): contiguous
  const dx = per === rows ? undefined : new Float32Array(rows * cols)
  for (let r0 = 0; r0 < rows; r0 += per) {
    const count = Math.min(per, rows - r0),
      [from, to] = [r0 * cols, (r0 + count) * cols]
    floats.set(dy.subarray(from, to), ady)
    floats.set(x.subarray(from, to), ax)
    floats.set(mean.subarray(r0, r0 + count), as)
    floats.set(rstd.subarray(r0, r0 + count), as + count)
    const [dyAt, xAt, wAt, statsAt, dxAt, dwAt, dbAt, partialAt] = [ady, ax, aw, as, adx, adw, adb, apart].map(
      (at) => 4 * at,
    )
    const params = withParams ? 1 : 0
    kernels().layerNormBackward(dyAt, xAt, wAt, statsAt, dxAt, dwAt, dbAt, partialAt, count, cols, 1 / cols, params)
    dx?.set(floats.subarray(adx, adx + count * cols), from)
  }
  const sums = (at: number) => new Float32Array(new Float64Array(floats.buffer, 4 * at, withParams ? cols : 0))
  return { dx: dx ?? floats.slice(adx, adx + rows * cols), dw: sums(adw), db: sums(adb) }
}

/** layerNormRows and its backward in SIMD (rows.ts) where cols is a multiple of 4, from WASM_MIN_ELEMENTS. */
export function layerNormKernels(everySize: boolean, tile = TILE): LayerNorm {
  const big = (rows: number, cols: number) =>
    cols % 4 === 0 && cols > 0 && rows > 0 && (everySize || rows * cols >= WASM_MIN_ELEMENTS)
  return {
    layerNormRows: (x, w, b, rows, cols, eps) =>
      (big(rows, cols) ? layerNormTiled(tile, x, w, b, rows, cols, eps) : undefined) ??
      cpu.layerNormRows(x, w, b, rows, cols, eps),
    layerNormRowsBackward: (dy, x, w, mean, rstd, rows, cols, withParams = true) =>
      (big(rows, cols) ? layerNormBackwardTiled(tile, dy, x, w, mean, rstd, rows, cols, withParams) : undefined) ??
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
  return { y: floats.slice(ay, ay + B * Tq * C), probs: unpadRows(floats, ap, B * H * Tq, Tk, TkPad) }
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
