// Quantized weights: MLX's group-wise affine codes, per-channel int8, and QLoRA's 4-bit NormalFloat.
// The one idea: W lives as small integer codes plus a few floats per group, and the matmuls decode a
// tile of W's rows at a time into a small scratch buffer, so the float W is never rebuilt whole.
import { fail, quote } from '../errors.js'
import { matmul as cpuMatmul, matmulNT, matmulRef } from './matmul.js'

export type QuantMode = 'affine' | 'int8' | 'nf4'

/**
 * A (rows, cols) weight matrix in packed form, row-major. Plain typed arrays and integers: kernels never see a Tensor.
 * affine: w ≈ scale·q + bias per group of `groupSize` weights of a row, q in [0, 2^bits), 32/bits codes per Uint32
 * word
 *         (first code in the lowest bits, MLX's layout); scales and biases are (rows, cols / groupSize).
 * int8:   w ≈ scale·q, q in [−127, 127], one absmax scale per row (output channel).
 * nf4:    w ≈ absmax·NF4[q] per block of `groupSize` weights of a row, two 4-bit codes per byte (low nibble first).
 */
export type QuantizedWeights =
  | {
      mode: 'affine'
      rows: number
      cols: number
      bits: number
      groupSize: number
      codes: Uint32Array
      scales: Float32Array
      biases: Float32Array
    }
  | { mode: 'int8'; rows: number; cols: number; codes: Int8Array; scales: Float32Array }
  | { mode: 'nf4'; rows: number; cols: number; groupSize: number; codes: Uint8Array; scales: Float32Array }

export type QuantizeOptions = { mode?: QuantMode; bits?: number; groupSize?: number }

/**
 * QLoRA's NormalFloat4 levels (Dettmers et al. 2023, appendix E): quantiles of N(0, 1) chosen so that each of
 * the 16 codes is equally likely for normally distributed weights, with an exact zero, scaled to [−1, 1].
 */
export const NF4_LEVELS = Float32Array.from([
  -1, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1,
])

// ---- packing -------------------------------------------------------------------------------------

/** Pack codes in [0, 2^bits) into Uint32 words, 32/bits per word, first code in the lowest bits. */
export function packBits(codes: ArrayLike<number>, bits: number): Uint32Array {
  const per = 32 / bits
  const words = new Uint32Array(Math.ceil(codes.length / per))
  for (let i = 0; i < codes.length; i++) words[(i / per) | 0] |= codes[i] << ((i % per) * bits)
  return words
}

/** The first `count` codes of packed words. */
export function unpackBits(words: Uint32Array, bits: number, count: number): Uint8Array {
  const per = 32 / bits,
    mask = 2 ** bits - 1
  const codes = new Uint8Array(count)
  for (let i = 0; i < count; i++) codes[i] = (words[(i / per) | 0] >>> ((i % per) * bits)) & mask
  return codes
}

/** The integer code of every weight, row-major (affine and nf4 unpacked; int8 as is). */
export function unpackCodes(q: QuantizedWeights): Int32Array {
  const n = q.rows * q.cols
  if (q.mode === 'affine') return Int32Array.from(unpackBits(q.codes, q.bits, n))
  if (q.mode === 'int8') return Int32Array.from(q.codes)
  const out = new Int32Array(n)
  for (let i = 0; i < n; i++) out[i] = (q.codes[i >> 1] >> ((i & 1) * 4)) & 15
  return out
}

// ---- quantize ------------------------------------------------------------------------------------

function checkOptions(rows: number, cols: number, mode: QuantMode, bits: number, groupSize: number): void {
  if (mode !== 'affine' && mode !== 'int8' && mode !== 'nf4')
    fail('quantize', `unknown mode ${quote(mode)} (expected 'affine', 'int8' or 'nf4')`)
  if (mode === 'affine' && bits !== 2 && bits !== 4 && bits !== 8)
    fail('quantize', `affine bits must be 2, 4 or 8, got ${quote(bits)}`)
  if (mode === 'int8') return
  const per = mode === 'affine' ? 32 / bits : 2
  const kind = mode === 'affine' ? `affine ${bits}-bit` : mode
  if (!Number.isInteger(groupSize) || groupSize < per || groupSize % per !== 0)
    fail('quantize', `groupSize must be a positive multiple of ${per} for ${kind}, got ${quote(groupSize)}`)
  if (cols % groupSize !== 0) {
    const weight = `a (${rows},${cols}) weight does not split into groups of ${groupSize}`
    fail('quantize', `${weight}: ${cols} in-features is not a multiple of ${groupSize}`)
  }
}

/** Quantize a (rows, cols) float matrix. Defaults: affine, 4 bits, groups of 64 (MLX's defaults). */
export function quantize(
  w: Float32Array,
  rows: number,
  cols: number,
  { mode = 'affine', bits = 4, groupSize = 64 }: QuantizeOptions = {},
): QuantizedWeights {
  checkOptions(rows, cols, mode, bits, groupSize)
  if (mode === 'int8') return quantizeInt8(w, rows, cols)
  if (mode === 'nf4') return quantizeNF4(w, rows, cols, groupSize)
  return quantizeAffine(w, rows, cols, bits, groupSize)
}

/**
 * Per group: bias = min, scale = (max − min) / (2^bits − 1), q = round((w − bias) / scale); error ≤ scale / 2.
 */
function quantizeAffine(
  w: Float32Array,
  rows: number,
  cols: number,
  bits: number,
  groupSize: number,
): QuantizedWeights {
  const levels = 2 ** bits - 1,
    groups = (rows * cols) / groupSize
  const scales = new Float32Array(groups),
    biases = new Float32Array(groups)
  const q = new Uint8Array(rows * cols)
  for (let g = 0; g < groups; g++) {
    const start = g * groupSize
    let lo = Infinity,
      hi = -Infinity
    for (let p = start; p < start + groupSize; p++) {
      lo = Math.min(lo, w[p])
      hi = Math.max(hi, w[p])
    }
    const scale = Math.fround((hi - lo) / levels),
      bias = Math.fround(lo) // round first: decoding uses the stored float32s
    scales[g] = scale
    biases[g] = bias
    if (scale === 0) continue // a constant group: every code 0 decodes to bias exactly
    for (let p = start; p < start + groupSize; p++)
      q[p] = Math.min(levels, Math.max(0, Math.round((w[p] - bias) / scale)))
  }
  return { mode: 'affine', rows, cols, bits, groupSize, codes: packBits(q, bits), scales, biases }
}

/** Per row: scale = max|w| / 127, q = round(w / scale); error ≤ scale / 2. */
function quantizeInt8(w: Float32Array, rows: number, cols: number): QuantizedWeights {
  const scales = new Float32Array(rows),
    codes = new Int8Array(rows * cols)
  for (let r = 0; r < rows; r++) {
    const row = r * cols
    let absmax = 0
    for (let p = 0; p < cols; p++) absmax = Math.max(absmax, Math.abs(w[row + p]))
    const scale = Math.fround(absmax / 127)
    scales[r] = scale
    if (scale === 0) continue
    for (let p = 0; p < cols; p++) codes[row + p] = Math.max(-127, Math.min(127, Math.round(w[row + p] / scale)))
  }
  return { mode: 'int8', rows, cols, codes, scales }
}

// Decision boundaries between neighbouring NF4 levels: a normalized weight goes to the nearest level.
const NF4_MIDPOINTS = Array.from({ length: 15 }, (_, i) => (NF4_LEVELS[i] + NF4_LEVELS[i + 1]) / 2)

/** Per block: absmax, then each w / absmax goes to its nearest NF4 level. */
function quantizeNF4(w: Float32Array, rows: number, cols: number, groupSize: number): QuantizedWeights {
  const blocks = (rows * cols) / groupSize
  const scales = new Float32Array(blocks),
    codes = new Uint8Array((rows * cols) / 2)
  for (let g = 0; g < blocks; g++) {
    const start = g * groupSize
    let absmax = 0
    for (let p = start; p < start + groupSize; p++) absmax = Math.max(absmax, Math.abs(w[p]))
    scales[g] = absmax
    for (let p = start; p < start + groupSize; p++) {
      const v = absmax === 0 ? 0 : w[p] / absmax
      let code = 0
      while (code < 15 && v > NF4_MIDPOINTS[code]) code++
      codes[p >> 1] |= code << ((p & 1) * 4)
    }
  }
  return { mode: 'nf4', rows, cols, groupSize, codes, scales }
}

// ---- dequantize ----------------------------------------------------------------------------------

/** Decode rows [r0, r1) of Ŵ into out[0 .. (r1 − r0)·cols). The one place that knows each mode's layout. */
export function dequantizeRowsInto(q: QuantizedWeights, r0: number, r1: number, out: Float32Array): void {
  const start = r0 * q.cols,
    end = r1 * q.cols // flat element range; groups never straddle rows
  if (q.mode === 'int8') {
    for (let r = r0; r < r1; r++) {
      const s = q.scales[r],
        row = r * q.cols,
        o = row - start
      for (let p = 0; p < q.cols; p++) out[o + p] = s * q.codes[row + p]
    }
  } else if (q.mode === 'affine') {
    const per = 32 / q.bits,
      mask = 2 ** q.bits - 1,
      bits = q.bits
    for (let g = start / q.groupSize; g < end / q.groupSize; g++) {
      const s = q.scales[g],
        b = q.biases[g]
      let o = g * q.groupSize - start
      for (let word = (g * q.groupSize) / per, last = word + q.groupSize / per; word < last; word++) {
        const v = q.codes[word]
        for (let shift = 0; shift < 32; shift += bits) out[o++] = s * ((v >>> shift) & mask) + b
      }
    }
  } else {
    for (let g = start / q.groupSize; g < end / q.groupSize; g++) {
      const a = q.scales[g]
      let o = g * q.groupSize - start
      for (let byte = (g * q.groupSize) >> 1, last = byte + (q.groupSize >> 1); byte < last; byte++) {
        const v = q.codes[byte]
        out[o++] = a * NF4_LEVELS[v & 15]
        out[o++] = a * NF4_LEVELS[v >> 4]
      }
    }
  }
}

/** The whole Ŵ (rows, cols) as floats: for dequantize() and merging, never for the matmuls. */
export function dequantize(q: QuantizedWeights): Float32Array {
  const out = new Float32Array(q.rows * q.cols)
  dequantizeRowsInto(q, 0, q.rows, out)
  return out
}

// ---- matmuls against packed weights --------------------------------------------------------------

// Why tiles: the float Ŵ is what quantization saves, so the matmuls never rebuild it. They decode at most
// TILE_FLOATS weights (a tile of whole rows of Ŵ) at a time and multiply each tile with `product`: the CPU's
// matmul here, a backend's own when it installs these kernels (src/backends), so its threads or SIMD run the
// tiles too. 64K floats (256 KB) stay in L2 while every row of x passes over them, and hold a whole 512 × 128
// layer, so a small model's layers are one product each; decoding costs rows·cols per call whatever m is.
const TILE_FLOATS = 65536

// One scratch buffer for every call, grown when a larger one is needed and never shrunk: two tiles (bounded)
// plus, in qmatmulT, the tile's m × rows columns of dy (which grow with the batch).
// Regions: [decoded tile | its transpose (qmatmulT) | the tile's columns of dy (qmatmulT)].
let scratch = new Float32Array(0)
function scratchOf(size: number): Float32Array {
  if (scratch.length < size) scratch = new Float32Array(size)
  return scratch
}

/**
 * Rows of Ŵ per tile: as many as fit in TILE_FLOATS, a multiple of 4 when more than 4 fit (matmulNT takes rows of
 * B in fours), at least 1.
 */
function tileRows(q: QuantizedWeights): number {
  const t = Math.floor(TILE_FLOATS / q.cols)
  return Math.max(1, Math.min(q.rows, t > 4 ? t & ~3 : t))
}

/** The product the tiles go through: C = op(A)·op(B), as cpu.matmul. */
export type MatmulFn = typeof cpuMatmul

/** y = x · Ŵᵀ. x (m, k), Ŵ (n, k) packed → y (m, n). Per tile of tj rows of Ŵ: decode, x·tileᵀ, scatter. */
export function qmatmul(x: Float32Array, q: QuantizedWeights, m: number, product: MatmulFn = cpuMatmul): Float32Array {
  const n = q.rows,
    k = q.cols,
    t = tileRows(q)
  const wTile = scratchOf(t * k)
  if (t === n) {
    // Ŵ is one tile: y is the tile's output, nothing to scatter
    dequantizeRowsInto(q, 0, n, wTile)
    return product(x, wTile.subarray(0, n * k), m, k, n, { transB: true })
  }
  const y = new Float32Array(m * n)
  for (let j0 = 0; j0 < n; j0 += t) {
    const tj = Math.min(t, n - j0)
    dequantizeRowsInto(q, j0, j0 + tj, wTile)
    const yTile = product(x, wTile.subarray(0, tj * k), m, k, tj, { transB: true }) // (m, tj)
    for (let i = 0; i < m; i++) {
      // the tile's outputs are columns j0 .. j0 + tj of each row of y
      const yRow = i * n + j0,
        tRow = i * tj
      for (let j = 0; j < tj; j++) y[yRow + j] = yTile[tRow + j]
    }
  }
  return y
}

/**
 * dx = dy · Ŵ. dy (m, n), Ŵ (n, k) packed → dx (m, k) = Σ over tiles dy[:, tile] · Ŵ[tile, :]. A backend's
 * `product` takes each decoded tile as it is (a plain A·B) and returns the tile's part fresh. Without it the
 * CPU's matmulNT adds each part into dx in place, so each tile is first transposed within the scratch (the A·Bᵀ
 * form matmulNT runs without repacking).
 */
export function qmatmulT(dy: Float32Array, q: QuantizedWeights, m: number, product?: MatmulFn): Float32Array {
  const n = q.rows,
    k = q.cols,
    t = tileRows(q)
  const buf = scratchOf(2 * t * k + (t < n ? m * t : 0))
  const wTile = buf.subarray(0, t * k),
    wTileT = buf.subarray(t * k, 2 * t * k)
  const dyTile = t < n ? buf.subarray(2 * t * k) : dy // Ŵ in one tile: its columns of dy are all of dy
  const dx = new Float32Array(product && t === n ? 0 : m * k) // (a backend's one tile: its product is dx)
  for (let j0 = 0; j0 < n; j0 += t) {
    const tj = Math.min(t, n - j0)
    dequantizeRowsInto(q, j0, j0 + tj, wTile)
    if (t < n) {
      for (let i = 0; i < m; i++) {
        // dyTile (m, tj) = dy[:, j0 .. j0 + tj]
        const dyRow = i * n + j0,
          tRow = i * tj
        for (let j = 0; j < tj; j++) dyTile[tRow + j] = dy[dyRow + j]
      }
    }
    if (product) {
      // a backend's product (more cores, SIMD, a GPU): dyTile (m, tj) · wTile (tj, k)
      const part = product(dyTile.subarray(0, m * tj), wTile.subarray(0, tj * k), m, tj, k)
      if (t === n) return part // one tile: its part is dx
      for (let i = 0; i < part.length; i++) dx[i] += part[i]
      continue
    }
    for (let j = 0; j < tj; j++) {
      // wTileT (k, tj) = wTileᵀ
      const row = j * k
      for (let p = 0; p < k; p++) wTileT[p * tj + j] = wTile[row + p]
    }
    matmulNT(dyTile, wTileT, dx, m, tj, k) // dx += dyTile · wTile, in place
  }
  return dx
}

/** Reference for both: decode all of Ŵ, then matmulRef. The tests' oracle. */
export function qmatmulRef(a: Float32Array, q: QuantizedWeights, m: number, { transposed = false } = {}): Float32Array {
  const w = dequantize(q)
  return transposed ? matmulRef(a, w, m, q.rows, q.cols) : matmulRef(a, w, m, q.cols, q.rows, { transB: true })
}
