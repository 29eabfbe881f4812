// Matrix products on row-major Float32Arrays. matmulRef is the oracle; NN, NT and TN are the fast variants, one per
// transpose case, so every backward product is a single call. All three run matmulNT's dot products: NN first copies
// B transposed (k·n floats), TN copies both A and B transposed (k·m + k·n), small next to m·k·n multiply-adds.
import { addRowInPlace } from './rows.js'

export type MatmulFlags = {
  transA?: boolean
  transB?: boolean
  /** a row (n) added to every row of C: linear's bias */ bias?: Float32Array
}

/** Reference: C = op(A)·op(B), op(A) (m, k), op(B) (k, n). Slow, obviously right; the tests' oracle. */
export function matmulRef(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  { transA = false, transB = false }: MatmulFlags = {},
): Float32Array {
  const c = new Float32Array(m * n)
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0
      for (let p = 0; p < k; p++) s += (transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j])
      c[i * n + j] = s
    }
  return c
}

/**
 * C += A·Bᵀ, A (m, k), B (n, k). Dot products of rows, 3 rows of A × 4 rows of B at once: 12 sums stay in
 * registers and each step loads 7 values for 12 multiply-adds (4 × 2 blocks: 6 for 8). Measured here against
 * 4 × 2: 4–8% faster as a lone loop, 2–3% in bench/matmul.ts. 4 × 4 would spill x64's 16 float registers.
 */
export function matmulNT(a: Float32Array, b: Float32Array, c: Float32Array, m: number, k: number, n: number): void {
  let i = 0
  // prettier-ignore
  for (; i + 3 <= m; i += 3) {
    const a0 = i * k, a1 = a0 + k, a2 = a1 + k
    const c0 = i * n, c1 = c0 + n, c2 = c1 + n
    let j = 0
    for (; j + 4 <= n; j += 4) {
      const b0 = j * k, b1 = b0 + k, b2 = b1 + k, b3 = b2 + k
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0
      let s10 = 0, s11 = 0, s12 = 0, s13 = 0
      let s20 = 0, s21 = 0, s22 = 0, s23 = 0
      for (let p = 0; p < k; p++) {
        const x0 = b[b0 + p], x1 = b[b1 + p], x2 = b[b2 + p], x3 = b[b3 + p]
        const y0 = a[a0 + p], y1 = a[a1 + p], y2 = a[a2 + p]
        s00 += y0 * x0; s01 += y0 * x1; s02 += y0 * x2; s03 += y0 * x3
        s10 += y1 * x0; s11 += y1 * x1; s12 += y1 * x2; s13 += y1 * x3
        s20 += y2 * x0; s21 += y2 * x1; s22 += y2 * x2; s23 += y2 * x3
      }
      c[c0 + j] += s00; c[c0 + j + 1] += s01; c[c0 + j + 2] += s02; c[c0 + j + 3] += s03
      c[c1 + j] += s10; c[c1 + j + 1] += s11; c[c1 + j + 2] += s12; c[c1 + j + 3] += s13
      c[c2 + j] += s20; c[c2 + j + 1] += s21; c[c2 + j + 2] += s22; c[c2 + j + 3] += s23
    }
    for (; j < n; j++) { // the last n % 4 columns of C
      const b0 = j * k
      let s0 = 0, s1 = 0, s2 = 0
      for (let p = 0; p < k; p++) {
        const x = b[b0 + p]
        s0 += a[a0 + p] * x; s1 += a[a1 + p] * x; s2 += a[a2 + p] * x
      }
      c[c0 + j] += s0; c[c1 + j] += s1; c[c2 + j] += s2
    }
  }
  // prettier-ignore
  for (; i < m; i++) { // the last m % 3 rows (all of a single-row product, as in generation): 4 rows of B at once
    const aRow = i * k, cRow = i * n
    let j = 0
    for (; j + 4 <= n; j += 4) { // four independent sums: one alone waits on its own adds (~4× slower at m = 1)
      const b0 = j * k, b1 = b0 + k, b2 = b1 + k, b3 = b2 + k
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0
      for (let p = 0; p < k; p++) {
        const x = a[aRow + p]
        s0 += x * b[b0 + p]; s1 += x * b[b1 + p]; s2 += x * b[b2 + p]; s3 += x * b[b3 + p]
      }
      c[cRow + j] += s0; c[cRow + j + 1] += s1; c[cRow + j + 2] += s2; c[cRow + j + 3] += s3
    }
    for (; j < n; j++) {
      const bRow = j * k
      let s = 0
      for (let p = 0; p < k; p++) s += a[aRow + p] * b[bRow + p]
      c[cRow + j] += s
    }
  }
}

/**
 * C += A·B, A (m, k), B (k, n). Repacks B as Bᵀ (cost k·n, small next to m·k·n) and runs matmulNT:
 * on this V8, NT's register-held dot products measured ~3.9 GFLOP/s at 512 against ~2.0 for the
 * i-k-j loop that updates four rows of C in memory (bench/matmul.ts).
 */
export function matmulNN(a: Float32Array, b: Float32Array, c: Float32Array, m: number, k: number, n: number): void {
  if (m < NN_AS_GIVEN_BELOW) matmulRowsNN(a, b, c, m, k, n)
  else matmulNT(a, transpose2d(b, k, n), c, m, k, n)
}

/**
 * Fewer rows than this read B as given: copying Bᵀ costs as much as the product at m = 1 (GPT-2's Conv1D in
 * generation). Row sweep / transpose + NT, alternating in one process: 0.09-0.24x at m = 1 and 2 for (128, 384) and
 * (768, 2304), 0.75-1.6x at m = 3, 1.4-1.8x at 4.
 */
export const NN_AS_GIVEN_BELOW = 3

/** C += A·B for few rows: each row of C gains a[i][p] · B's row p, for every p (B's rows read in order, in place). */
export function matmulRowsNN(a: Float32Array, b: Float32Array, c: Float32Array, m: number, k: number, n: number): void {
  for (let i = 0; i < m; i++) {
    const cRow = i * n
    for (let p = 0; p < k; p++) {
      const x = a[i * k + p],
        bRow = p * n
      for (let j = 0; j < n; j++) c[cRow + j] += x * b[bRow + j]
    }
  }
}

/** C += Aᵀ·B, A (k, m), B (k, n): repack Aᵀ (cost k·m), then the NN path, which repacks B too (k·n). */
export function matmulTN(a: Float32Array, b: Float32Array, c: Float32Array, m: number, k: number, n: number): void {
  matmulNN(transpose2d(a, k, m), b, c, m, k, n)
}

/** Transpose a (rows, cols) matrix into a fresh (cols, rows) one, in 32×32 tiles so both sides stay in cache. */
export function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols)
  const TILE = 32
  for (let i0 = 0; i0 < rows; i0 += TILE) {
    const iEnd = Math.min(i0 + TILE, rows)
    for (let j0 = 0; j0 < cols; j0 += TILE) {
      const jEnd = Math.min(j0 + TILE, cols)
      for (let i = i0; i < iEnd; i++) {
        const aRow = i * cols
        for (let j = j0; j < jEnd; j++) out[j * rows + i] = a[aRow + j]
      }
    }
  }
  return out
}

/** C += op(A)·op(B) into a given output, picking the variant by the flags. */
export function matmulInto(
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  m: number,
  k: number,
  n: number,
  transA: boolean,
  transB: boolean,
): void {
  if (!transA && !transB) matmulNN(a, b, c, m, k, n)
  else if (!transA && transB) matmulNT(a, b, c, m, k, n)
  else if (transA && !transB) matmulTN(a, b, c, m, k, n)
  else matmulNT(transpose2d(a, k, m), b, c, m, k, n) // Aᵀ·Bᵀ is rare: materialize Aᵀ once
}

/** C = op(A)·op(B) (+ bias on every row): op(A) (m, k), op(B) (k, n), C (m, n). */
export function matmul(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  { transA = false, transB = false, bias }: MatmulFlags = {},
): Float32Array {
  const c = new Float32Array(m * n)
  matmulInto(a, b, c, m, k, n, transA, transB)
  if (bias) addRowInPlace(c, bias, m, n)
  return c
}

/**
 * `batch` independent products, each op(A_i) (m, k) · op(B_i) (k, n) (+ bias on every row); A and B hold their
 * matrices back to back.
 */
export function matmulBatched(
  a: Float32Array,
  b: Float32Array,
  batch: number,
  m: number,
  k: number,
  n: number,
  { transA = false, transB = false, bias }: MatmulFlags = {},
): Float32Array {
  const c = new Float32Array(batch * m * n)
  for (let t = 0; t < batch; t++) {
    const aT = a.subarray(t * m * k, (t + 1) * m * k)
    const bT = b.subarray(t * k * n, (t + 1) * k * n)
    matmulInto(aT, bT, c.subarray(t * m * n, (t + 1) * m * n), m, k, n, transA, transB)
  }
  if (bias) addRowInPlace(c, bias, batch * m, n)
  return c
}
