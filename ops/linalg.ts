// Linear algebra on 2-D tensors: SVD, rank, QR, norms. Numeric routines, not ops: they record no graph.
// Everything runs in float64 inside (float32 rounding noise would otherwise look like extra rank) and
// comes back as float32 Tensors. `import { linalg } from 'tenny'` then `linalg.matrixRank(A)`.
import { Tensor } from '../src/tensor.js'
import { shapeStr } from '../src/shape.js'
import { fail, quote } from '../src/errors.js'
import { matmul } from './matmul.js'
import { transpose } from './movement.js'

const EPS32 = 2 ** -23 // float32 machine epsilon (1.19e-7), the unit NumPy's matrix_rank tolerance uses
const EPS64 = 2 ** -52
const MAX_SWEEPS = 60 // Jacobi converges quadratically; 6–12 sweeps are typical, 60 is only a safety stop

/** The (m, n) of a 2-D tensor whose entries are all finite; otherwise an Error naming the function. */
function check2D(fn: string, A: Tensor): [number, number] {
  const op = `linalg.${fn}`
  if (A.ndim !== 2)
    fail(op, `expected a 2-D tensor (m, n), got shape ${shapeStr(A.shape)}; reshape a vector to (1, n) or (n, 1)`)
  const [m, n] = A.shape
  const i = A.data.findIndex((v) => !Number.isFinite(v))
  const where = `[${Math.floor(i / n)}, ${i % n}]`
  if (i >= 0) fail(op, `the ${shapeStr(A.shape)} matrix has ${A.data[i]} at ${where}; expected finite numbers`)
  return [m, n]
}

/**
 * Rotate columns p and q (each `len` long, at offsets op and oq) of a: (g_p, g_q) ← (c·g_p − s·g_q, s·g_p +
 * c·g_q).
 */
function rotate(a: Float64Array, op: number, oq: number, len: number, c: number, s: number): void {
  for (let i = 0; i < len; i++) {
    const x = a[op + i],
      y = a[oq + i]
    a[op + i] = c * x - s * y
    a[oq + i] = s * x + c * y
  }
}

/**
 * One-sided Jacobi (Hestenes, 1958). `g` holds c columns of length L one after another (c ≤ L).
 * Sweep over every pair (p, q): if g_p and g_q are not yet orthogonal, rotate them in their own plane so
 * that they are. Each rotation leaves every other pair alone, and the sum of squared off-diagonal entries of
 * GᵀG shrinks with every sweep, until all columns are mutually orthogonal. Collecting the rotations in J
 * (columns, c × c, starting at I) gives M·J = G, hence M = G·Jᵀ = Ũ·diag(σ)·Jᵀ with σ_j = ‖g_j‖, u_j =
 * g_j/σ_j.
 */
function jacobi(g: Float64Array, L: number, c: number, J: Float64Array | null): void {
  const tol = L * EPS64 // a dot product of length L is only exact to about L·ε
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    let rotated = false
    for (let p = 0; p < c - 1; p++) {
      for (let q = p + 1; q < c; q++) {
        const op = p * L,
          oq = q * L
        let alpha = 0,
          beta = 0,
          gamma = 0 // the 2×2 Gram matrix [[α, γ], [γ, β]] of g_p and g_q
        for (let i = 0; i < L; i++) {
          const x = g[op + i],
            y = g[oq + i]
          alpha += x * x
          beta += y * y
          gamma += x * y
        }
        if (Math.abs(gamma) <= tol * Math.sqrt(alpha * beta)) continue // orthogonal to working precision
        // After the rotation g_p'·g_q' = cs(α − β) + (c² − s²)γ. Setting it to 0 with t = s/c gives
        // t² + 2ζt − 1 = 0, ζ = (β − α) / 2γ. Take the smaller root t = sign(ζ) / (|ζ| + √(1 + ζ²)),
        // a rotation by at most 45°, which keeps the sweep stable; then c = 1/√(1 + t²), s = c·t.
        const zeta = (beta - alpha) / (2 * gamma)
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.hypot(1, zeta))
        const cs = 1 / Math.sqrt(1 + t * t)
        rotate(g, op, oq, L, cs, cs * t)
        if (J) rotate(J, p * c, q * c, c, cs, cs * t) // J ← J·R, the same column rotation
        rotated = true
      }
    }
    if (!rotated) return
  }
  // NOTE: reaching here means MAX_SWEEPS ran out; the columns are then orthogonal to far below float32 precision.
}

/** M as c column vectors of length L, with c ≤ L: A's columns if A is tall or square, else its rows (M = Aᵀ). */
function columnsOf(A: Tensor): { g: Float64Array; L: number; c: number; wide: boolean } {
  const [m, n] = A.shape
  if (m < n) return { g: Float64Array.from(A.data), L: n, c: m, wide: true } // row i of A = column i of Aᵀ
  const g = new Float64Array(m * n)
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) g[j * m + i] = A.data[i * n + j]
  return { g, L: m, c: n, wide: false }
}

/** ‖g_j‖ for each of the c columns. */
function columnNorms(g: Float64Array, L: number, c: number): Float64Array {
  const s = new Float64Array(c)
  for (let j = 0; j < c; j++) {
    let ss = 0
    for (let i = 0; i < L; i++) ss += g[j * L + i] ** 2
    s[j] = Math.sqrt(ss)
  }
  return s
}

/** Singular values in float64, descending: the column norms after Jacobi. No vectors are accumulated. */
function singularValues(fn: string, A: Tensor): Float64Array {
  check2D(fn, A)
  const { g, L, c } = columnsOf(A)
  jacobi(g, L, c, null)
  return columnNorms(g, L, c).sort().reverse()
}

/**
 * Turn the columns of G into unit vectors u_j = g_j / σ_j. A zero column (σ_j = 0, from a rank-deficient A)
 * has no direction of its own: it gets the standard basis vector least covered by the columns so far,
 * orthogonalised against them twice (Gram–Schmidt), so Ũ still has orthonormal columns.
 */
function normalizeColumns(g: Float64Array, L: number, c: number, sigma: Float64Array): void {
  const covered = new Float64Array(L) // Σ over finished columns of u_j[i]², how much of e_i is spanned
  const done: number[] = []
  const finish = (j: number) => {
    for (let i = 0; i < L; i++) covered[i] += g[j * L + i] ** 2
    done.push(j)
  }
  for (let j = 0; j < c; j++) {
    if (sigma[j] === 0) continue
    for (let i = 0; i < L; i++) g[j * L + i] /= sigma[j]
    finish(j)
  }
  for (let j = 0; j < c; j++) {
    if (sigma[j] !== 0) continue
    let best = 0
    for (let i = 1; i < L; i++) if (covered[i] < covered[best]) best = i
    const oj = j * L
    g[oj + best] = 1
    for (let pass = 0; pass < 2; pass++) {
      for (const d of done) {
        let dot = 0
        for (let i = 0; i < L; i++) dot += g[d * L + i] * g[oj + i]
        for (let i = 0; i < L; i++) g[oj + i] -= dot * g[d * L + i]
      }
    }
    const len = columnNorms(g.subarray(oj, oj + L), L, 1)[0]
    for (let i = 0; i < L; i++) g[oj + i] /= len
    finish(j)
  }
}

/** Columns `order` of a column-stored (rows × ·) matrix, as a row-major float32 (rows, order.length) Tensor. */
function pickColumns(a: Float64Array, rows: number, order: number[]): Tensor {
  const k = order.length
  const out = new Float32Array(rows * k)
  for (let r = 0; r < k; r++) {
    const o = order[r] * rows
    for (let i = 0; i < rows; i++) out[i * k + r] = a[o + i]
  }
  return new Tensor(out, [rows, k])
}

/** Thin SVD: A = U·diag(S)·Vᵀ.   A: (m, n)   U: (m, k)   S: (k), descending, ≥ 0   V: (n, k)   k = min(m, n) */
export function svd(A: Tensor): { U: Tensor; S: Tensor; V: Tensor } {
  check2D('svd', A)
  const { g, L, c, wide } = columnsOf(A)
  const J = new Float64Array(c * c)
  for (let j = 0; j < c; j++) J[j * c + j] = 1
  jacobi(g, L, c, J)
  const sigma = columnNorms(g, L, c)
  normalizeColumns(g, L, c, sigma)
  const order = Array.from({ length: c }, (_, j) => j).sort((a, b) => sigma[b] - sigma[a])
  const sorted = Float32Array.from(order, (j) => sigma[j]) // σ, descending
  const S = new Tensor(sorted, [c])
  const Ut = pickColumns(g, L, order) // Ũ: (L, k)
  const Jt = pickColumns(J, c, order) // J: (k, k)
  // M = Ũ·diag(σ)·Jᵀ. For a tall A, M = A. For a wide A, M = Aᵀ, so A = J·diag(σ)·Ũᵀ and the roles swap.
  return wide ? { U: Jt, S, V: Ut } : { U: Ut, S, V: Jt }
}

/**
 * Thin SVD of a product B·A without forming it, the cheap way to see inside LoRA's ΔW = B·A: with B = Q_B·R_B and
 * Aᵀ = Q_A·R_A, B·A = Q_B·(R_B·R_Aᵀ)·Q_Aᵀ, so only the small core R_B·R_Aᵀ needs an SVD.
 * B: (m, r)   A: (r, n)   U: (m, k)   S: (k)   V: (n, k)   k = min(m, r, n)
 */
export function svdProduct(B: Tensor, A: Tensor): { U: Tensor; S: Tensor; V: Tensor } {
  const [, r] = check2D('svdProduct', B)
  if (check2D('svdProduct', A)[0] !== r)
    fail('linalg.svdProduct', `B ${shapeStr(B.shape)} · A ${shapeStr(A.shape)}: inner sizes differ`)
  const b = qr(B) // Q_B: (m, kB)   R_B: (kB, r)
  const a = qr(transpose(A)) // Q_A: (n, kA)   R_A: (kA, r)
  const core = svd(matmul(b.R, transpose(a.R))) // (kB, kA) = Uc·diag(S)·Vcᵀ
  return { U: matmul(b.Q, core.U), S: core.S, V: matmul(a.Q, core.V) } // B·A = (Q_B·Uc)·diag(S)·(Q_A·Vc)ᵀ
}

/**
 * The best rank-r approximation W ≈ B·A (Eckart–Young), split evenly between the factors:
 * B = U_r·diag(√σ_r) (m, r), A = diag(√σ_r)·V_rᵀ (r, n). PiSSA initialises LoRA's loraB, loraA this way.
 */
export function lowRank(W: Tensor, r: number): { B: Tensor; A: Tensor } {
  const [m, n] = check2D('lowRank', W)
  if (!Number.isInteger(r) || r < 1 || r > Math.min(m, n))
    fail(
      'linalg.lowRank',
      `rank must be an integer in 1..${Math.min(m, n)} for a ${shapeStr(W.shape)} matrix, got ${quote(r)}`,
    )
  const { U, S, V } = svd(W)
  const k = S.size
  const B = new Float32Array(m * r),
    A = new Float32Array(r * n)
  for (let p = 0; p < r; p++) {
    const root = Math.sqrt(S.data[p])
    for (let i = 0; i < m; i++) B[i * r + p] = U.data[i * k + p] * root
    for (let j = 0; j < n; j++) A[p * n + j] = root * V.data[j * k + p]
  }
  return { B: new Tensor(B, [m, r]), A: new Tensor(A, [r, n]) }
}

/** The singular values of A (k), descending; cheaper than svd() since no vectors are formed. */
export function svdvals(A: Tensor): Tensor {
  const s = singularValues('svdvals', A)
  return new Tensor(Float32Array.from(s), [s.length])
}

/**
 * rank(A) = the number of singular values above tol: how many independent directions A really has.
 * Default tol = σ_max · max(m, n) · ε(float32), as NumPy's matrix_rank, so float32 rounding does not count as rank.
 */
export function matrixRank(A: Tensor, tol?: number): number {
  const s = singularValues('matrixRank', A)
  if (tol !== undefined && !(tol >= 0 && Number.isFinite(tol)))
    fail('linalg.matrixRank', `tol must be a finite number ≥ 0, got ${quote(tol)}`)
  const threshold = tol ?? (s.length > 0 ? s[0] : 0) * Math.max(...A.shape) * EPS32
  return s.filter((x) => x > threshold).length
}

/**
 * Reduced QR by Householder reflections: A = Q·R.   A: (m, n)   Q: (m, k), orthonormal columns   R: (k, n), upper
 * triangular with diag(R) ≥ 0   k = min(m, n)
 */
export function qr(A: Tensor): { Q: Tensor; R: Tensor } {
  const [m, n] = check2D('qr', A)
  const k = Math.min(m, n)
  const R = Float64Array.from(A.data) // (m, n), made upper triangular in place
  const vs: Float64Array[] = [] // v_j acts on rows j..m−1
  for (let j = 0; j < k; j++) {
    // H_j = I − 2vvᵀ/vᵀv sends x = R[j:, j] to (−sign(x₀)·‖x‖, 0, …, 0). Choosing the sign opposite to
    // x₀
    // makes v₀ = x₀ + sign(x₀)·‖x‖ a sum, never a cancelling difference.
    const v = new Float64Array(m - j)
    for (let i = j; i < m; i++) v[i - j] = R[i * n + j]
    const normX = columnNorms(v, m - j, 1)[0]
    if (normX > 0) v[0] += (v[0] >= 0 ? 1 : -1) * normX
    reflect(R, n, j, v)
    vs.push(v)
  }
  // Q = H_0·H_1·…·H_{k−1}·I[:, :k], applied right to left onto the first k columns of I
  const Q = new Float64Array(m * k)
  for (let i = 0; i < k; i++) Q[i * k + i] = 1
  for (let j = k - 1; j >= 0; j--) reflect(Q, k, j, vs[j])
  const q = new Float32Array(m * k),
    r = new Float32Array(k * n)
  for (let j = 0; j < k; j++) {
    const sign = R[j * n + j] < 0 ? -1 : 1 // flip row j of R and column j of Q together: QR is unchanged
    for (let c = j; c < n; c++) r[j * n + c] = sign * R[j * n + c] // below the diagonal stays exactly 0
    for (let i = 0; i < m; i++) q[i * k + j] = sign * Q[i * k + j]
  }
  return { Q: new Tensor(q, [m, k]), R: new Tensor(r, [k, n]) }
}

/**
 * a ← (I − 2vvᵀ/vᵀv)·a on rows j.. of the row-major a (·, width): w = vᵀa, then a −= (2/vᵀv)·v·wᵀ.
 */
function reflect(a: Float64Array, width: number, j: number, v: Float64Array): void {
  let vv = 0
  for (const x of v) vv += x * x
  if (vv === 0) return // x was already zero: H = I
  const w = new Float64Array(width)
  for (let i = 0; i < v.length; i++) {
    const row = (j + i) * width
    for (let c = 0; c < width; c++) w[c] += v[i] * a[row + c]
  }
  for (let i = 0; i < v.length; i++) {
    const row = (j + i) * width,
      f = (2 / vv) * v[i]
    for (let c = 0; c < width; c++) a[row + c] -= f * w[c]
  }
}

export type NormOrd = 'fro' | 'nuc' | 2

/** Matrix norms: 'fro' = √(Σ a_ij²), 'nuc' = Σ σ_i (nuclear), 2 = σ_max (spectral). A: (m, n). */
export function norm(A: Tensor, ord: NormOrd = 'fro'): number {
  if (ord !== 'fro' && ord !== 'nuc' && ord !== 2)
    fail('linalg.norm', `ord must be 'fro', 'nuc' or 2, got ${quote(ord)}`)
  if (ord === 'fro') {
    check2D('norm', A)
    let ss = 0
    for (const x of A.data) ss += x * x
    return Math.sqrt(ss)
  }
  const s = singularValues('norm', A)
  if (ord === 2) return s.length > 0 ? s[0] : 0
  return s.reduce((a, b) => a + b, 0)
}
