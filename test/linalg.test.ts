import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Tensor, tensor, zeros, eye } from '../src/tensor'
import { manualSeed } from '../src/random'
import { linalg } from '../src/index'
import { normal, assertClose } from './helpers'

/** C = A·B in float64, both row-major. */
function mm(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n)
  for (let i = 0; i < m; i++)
    for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) c[i * n + j] += a[i * k + p] * b[p * n + j]
  return c
}

function transposed(a: ArrayLike<number>, m: number, n: number): Float64Array {
  const t = new Float64Array(m * n)
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j]
  return t
}

/** ‖actual − expected‖_F / ‖expected‖_F (absolute when expected is zero). */
function relError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let err = 0,
    ref = 0
  for (let i = 0; i < expected.length; i++) {
    err += (actual[i] - expected[i]) ** 2
    ref += expected[i] ** 2
  }
  return Math.sqrt(err) / (ref > 0 ? Math.sqrt(ref) : 1)
}

/** Throws unless the k columns of Q (rows, k) are orthonormal: QᵀQ = I to tol. */
function assertOrthonormalColumns(Q: Tensor, what: string, tol = 1e-5): void {
  const [rows, k] = Q.shape
  const qtq = mm(transposed(Q.data, rows, k), Q.data, k, rows, k)
  assertClose(qtq, eye(k).data, { atol: tol, rtol: 0, what: `${what}ᵀ${what}` })
}

/** U·diag(S)·Vᵀ in float64. */
function reconstruct({ U, S, V }: { U: Tensor; S: Tensor; V: Tensor }): Float64Array {
  const [m, k] = U.shape
  const n = V.shape[0]
  const us = Float64Array.from(U.data, (u, idx) => u * S.data[idx % k])
  return mm(us, transposed(V.data, n, k), m, k, n)
}

/** A random (m, n) matrix of rank r: an (m, r) times an (r, n) product. */
function rankR(m: number, n: number, r: number): Tensor {
  return tensor(Float32Array.from(mm(normal([m, r]).data, normal([r, n]).data, m, r, n)), [m, n])
}

test("matrixRank: the seed tutorial's A = [[1,2],[3,6]] has rank 1, B = [[1,2],[3,4]] rank 2, [[1..9]] rank 2", () => {
  assert.is(
    linalg.matrixRank(
      tensor([
        [1, 2],
        [3, 6],
      ]),
    ),
    1,
  )
  assert.is(
    linalg.matrixRank(
      tensor([
        [1, 2],
        [3, 4],
      ]),
    ),
    2,
  )
  assert.is(
    linalg.matrixRank(
      tensor([
        [1, 2, 3],
        [4, 5, 6],
        [7, 8, 9],
      ]),
    ),
    2,
  )
  assert.is(linalg.matrixRank(zeros([3, 4])), 0)
  assert.is(linalg.matrixRank(eye(5)), 5)
})

test('matrixRank: random rank-r products (m×r · r×n) have rank r, random full matrices rank min(m, n)', () => {
  manualSeed(1)
  for (const [m, n, r] of [
    [20, 15, 3],
    [30, 50, 7],
    [64, 64, 1],
    [64, 64, 16],
    [128, 40, 20],
  ]) {
    assert.is(linalg.matrixRank(rankR(m, n, r)), r, `(${m}, ${r}) · (${r}, ${n})`)
  }
  for (const [m, n] of [
    [7, 7],
    [9, 4],
    [4, 9],
  ])
    assert.is(linalg.matrixRank(normal([m, n])), Math.min(m, n), `(${m}, ${n})`)
})

test('matrixRank: an explicit tol decides which singular values count', () => {
  const A = tensor([
    [1, 0, 0],
    [0, 1e-3, 0],
    [0, 0, 0],
  ])
  assert.is(linalg.matrixRank(A), 2)
  assert.is(linalg.matrixRank(A, 1e-2), 1)
  assert.is(linalg.matrixRank(A, 0), 2)
})

test('svd: U·diag(S)·Vᵀ rebuilds A to 1e-5, U and V have orthonormal columns, S is descending and ≥ 0', () => {
  manualSeed(2)
  const cases: [string, Tensor][] = [
    ['1×1', tensor([[-3]])],
    ['1×6', normal([1, 6])],
    ['6×1', normal([6, 1])],
    ['square 8×8', normal([8, 8])],
    ['tall 40×17', normal([40, 17])],
    ['wide 17×40', normal([17, 40])],
    ['rank-3 12×12', rankR(12, 12, 3)],
    ['rank-2 wide 5×30', rankR(5, 30, 2)],
    ['zero 4×3', zeros([4, 3])],
    ['zero 3×5', zeros([3, 5])],
    [
      'repeated columns',
      tensor([
        [1, 1, 2],
        [1, 1, 2],
        [0, 0, 0],
        [3, 3, 6],
      ]),
    ],
    ['128×96', normal([128, 96])],
  ]
  for (const [name, A] of cases) {
    const [m, n] = A.shape
    const k = Math.min(m, n)
    const r = linalg.svd(A)
    assert.equal([r.U.shape, r.S.shape, r.V.shape], [[m, k], [k], [n, k]], `${name}: shapes`)
    assert.ok(
      relError(reconstruct(r), A.data) < 1e-5,
      `${name}: reconstruction error ${relError(reconstruct(r), A.data)}`,
    )
    assertOrthonormalColumns(r.U, `${name}: U`)
    assertOrthonormalColumns(r.V, `${name}: V`)
    for (let i = 0; i < k; i++) {
      assert.ok(r.S.data[i] >= 0, `${name}: S[${i}] = ${r.S.data[i]} is negative`)
      if (i > 0) assert.ok(r.S.data[i] <= r.S.data[i - 1], `${name}: S[${i}] > S[${i - 1}]`)
    }
  }
})

test('svd: singular values of a diagonal matrix are its sorted |entries|; of an orthogonal matrix, all 1', () => {
  assertClose(
    linalg.svd(
      tensor([
        [3, 0, 0, 0],
        [0, -5, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 1],
      ]),
    ).S.data,
    [5, 3, 1, 0],
  )
  const v = [1, 2, 2, 4] // |v|² = 25; the Householder reflection I − 2vvᵀ/25 is orthogonal
  const H = tensor(Array.from({ length: 4 }, (_, i) => v.map((vj, j) => (i === j ? 1 : 0) - (2 * v[i] * vj) / 25)))
  assertClose(linalg.svd(H).S.data, [1, 1, 1, 1])
  const c = Math.cos(0.3),
    s = Math.sin(0.3)
  assertClose(
    linalg.svd(
      tensor([
        [2 * c, -2 * s],
        [2 * s, 2 * c],
      ]),
    ).S.data,
    [2, 2],
  ) // 2 × a rotation
})

test('svd: a rank-1 outer product u·vᵀ has σ₁ = ‖u‖·‖v‖ and every other σ ≈ 0, with u and v as its vectors', () => {
  const u = [1, 2, 2],
    v = [3, 0, 4, 0, 0] // ‖u‖ = 3, ‖v‖ = 5
  const A = tensor(u.map((ui) => v.map((vj) => ui * vj)))
  const { U, S, V } = linalg.svd(A)
  assertClose(S.data, [15, 0, 0], { atol: 1e-5 })
  const sign = Math.sign(U.data[0]) // singular vectors are defined up to a shared sign
  assertClose(
    [0, 1, 2].map((i) => sign * U.data[i * 3]),
    u.map((x) => x / 3),
    { what: 'u₁' },
  )
  assertClose(
    [0, 1, 2, 3, 4].map((j) => sign * V.data[j * 3]),
    v.map((x) => x / 5),
    { what: 'v₁' },
  )
})

test('svd: σᵢ² are the eigenvalues of AᵀA (AᵀA·vᵢ = σᵢ²·vᵢ, and trace((AᵀA)ᵖ) = Σ σᵢ²ᵖ for p = 1..3)', () => {
  manualSeed(3)
  const A = normal([6, 3])
  const { S, V } = linalg.svd(A)
  const AtA = mm(transposed(A.data, 6, 3), A.data, 3, 6, 3)
  for (let i = 0; i < 3; i++) {
    const vi = [0, 1, 2].map((j) => V.data[j * 3 + i])
    assertClose(
      mm(AtA, vi, 3, 3, 1),
      vi.map((x) => S.data[i] ** 2 * x),
      { atol: 1e-4, rtol: 1e-4, what: `AᵀA·v${i}` },
    )
  }
  let power: Float64Array = Float64Array.from(AtA) // (AᵀA)ᵖ; three power sums fix the three eigenvalues
  for (let p = 1; p <= 3; p++) {
    const trace = power[0] + power[4] + power[8]
    const sum = Array.from(S.data).reduce((acc, s) => acc + s ** (2 * p), 0)
    assertClose([sum], [trace], { rtol: 1e-5, what: `p = ${p}` })
    power = mm(power, AtA, 3, 3, 3)
  }
})

test('svdvals: the same singular values as svd().S', () => {
  manualSeed(4)
  for (const A of [normal([9, 5]), normal([5, 9]), rankR(10, 10, 4)]) {
    assertClose(linalg.svdvals(A).data, linalg.svd(A).S.data, { atol: 1e-5 })
  }
})

test('svd, matrixRank, norm: a (0, n) matrix has no singular values and rank 0', () => {
  const { U, S, V } = linalg.svd(zeros([0, 3]))
  assert.equal([U.shape, S.shape, V.shape], [[0, 0], [0], [3, 0]])
  assert.is(linalg.matrixRank(zeros([0, 3])), 0)
  assert.is(linalg.norm(zeros([2, 0]), 2), 0)
})

test('svdProduct: the SVD of B·A from its factors matches the SVD of the formed product', () => {
  manualSeed(7)
  for (const [m, r, n] of [
    [20, 4, 30],
    [30, 4, 20],
    [6, 10, 8],
    [16, 1, 16],
  ]) {
    const B = normal([m, r]),
      A = normal([r, n])
    const BA = tensor(Float32Array.from(mm(B.data, A.data, m, r, n)), [m, n])
    const fromFactors = linalg.svdProduct(B, A)
    const k = Math.min(m, r, n)
    assert.equal([fromFactors.U.shape, fromFactors.S.shape, fromFactors.V.shape], [[m, k], [k], [n, k]])
    assertClose(fromFactors.S.data, linalg.svdvals(BA).data.slice(0, k), {
      rtol: 1e-5,
      atol: 1e-5,
      what: `σ of (${m}, ${r})·(${r}, ${n})`,
    })
    assert.ok(relError(reconstruct(fromFactors), BA.data) < 1e-5, 'U·diag(S)·Vᵀ = B·A')
    assertOrthonormalColumns(fromFactors.U, 'U')
    assertOrthonormalColumns(fromFactors.V, 'V')
  }
  assertClose(linalg.svdProduct(zeros([5, 2]), normal([2, 4])).S.data, [0, 0]) // a fresh LoRA (B = 0) has ΔW = 0
  assert.throws(
    () => linalg.svdProduct(zeros([5, 2]), zeros([3, 4])),
    /linalg\.svdProduct: B \(5,2\) · A \(3,4\): inner sizes differ/,
  )
})

test('lowRank: B·A is the best rank-r approximation, with error √(Σ_{i>r} σᵢ²), and r = min(m, n) rebuilds W', () => {
  manualSeed(8)
  const W = normal([12, 9])
  const s = Array.from(linalg.svdvals(W).data)
  for (const r of [1, 3, 9]) {
    const { B, A } = linalg.lowRank(W, r)
    assert.equal(
      [B.shape, A.shape],
      [
        [12, r],
        [r, 9],
      ],
    )
    const BA = mm(B.data, A.data, 12, r, 9)
    const err = Math.sqrt(BA.reduce((acc, x, i) => acc + (x - W.data[i]) ** 2, 0))
    const tail = Math.sqrt(s.slice(r).reduce((acc, x) => acc + x * x, 0))
    assertClose([err], [tail], { atol: 1e-5, rtol: 1e-4, what: `rank ${r} error` })
    assert.is(linalg.matrixRank(tensor(Float32Array.from(BA), [12, 9])), r)
    assertClose(linalg.svdvals(B).data, linalg.svdvals(A).data, { rtol: 1e-5, what: 'B and A share √σ' }) // evenly split
  }
  assert.throws(
    () => linalg.lowRank(W, 10),
    /linalg\.lowRank: rank must be an integer in 1\.\.9 for a \(12,9\) matrix, got 10/,
  )
})

test('qr: Q has orthonormal columns, R is upper triangular with diag ≥ 0, and Q·R = A', () => {
  manualSeed(5)
  const cases: [string, Tensor][] = [
    ['square', normal([6, 6])],
    ['tall', normal([9, 4])],
    ['wide', normal([3, 7])],
    ['1×1', tensor([[-2]])],
    ['rank-deficient', rankR(8, 6, 2)],
    [
      'zero column',
      tensor([
        [0, 1],
        [0, 2],
        [0, 3],
      ]),
    ],
    ['zero', zeros([3, 3])],
  ]
  for (const [name, A] of cases) {
    const [m, n] = A.shape
    const k = Math.min(m, n)
    const { Q, R } = linalg.qr(A)
    assert.equal(
      [Q.shape, R.shape],
      [
        [m, k],
        [k, n],
      ],
      `${name}: shapes`,
    )
    assert.ok(relError(mm(Q.data, R.data, m, k, n), A.data) < 1e-5, `${name}: Q·R ≠ A`)
    if (name !== 'rank-deficient' && name !== 'zero column' && name !== 'zero')
      assertOrthonormalColumns(Q, `${name}: Q`)
    for (let i = 0; i < k; i++) {
      assert.ok(R.data[i * n + i] >= 0, `${name}: R[${i}, ${i}] < 0`)
      for (let j = 0; j < i; j++) assert.is(R.data[i * n + j], 0, `${name}: R[${i}, ${j}] below the diagonal`)
    }
  }
})

test('qr: by hand, [[3], [4]] = [[0.6], [0.8]]·[[5]] and [[0, 1], [0, 2], [0, 3]] keeps an orthonormal Q', () => {
  const { Q, R } = linalg.qr(tensor([[3], [4]]))
  assertClose(Q.data, [0.6, 0.8])
  assertClose(R.data, [5])
  assertOrthonormalColumns(
    linalg.qr(
      tensor([
        [0, 1],
        [0, 2],
        [0, 3],
      ]),
    ).Q,
    'Q',
  ) // H = I for the zero column
})

test('norm: Frobenius, nuclear and spectral norms by hand', () => {
  const D = tensor([
    [3, 0],
    [0, -4],
  ])
  assertClose([linalg.norm(D), linalg.norm(D, 'fro'), linalg.norm(D, 'nuc'), linalg.norm(D, 2)], [5, 5, 7, 4])
  const rank1 = tensor([
    [1, 2],
    [2, 4],
  ]) // one singular value, 5: all three norms agree
  assertClose([linalg.norm(rank1, 'fro'), linalg.norm(rank1, 'nuc'), linalg.norm(rank1, 2)], [5, 5, 5])
  manualSeed(6)
  const A = normal([7, 5])
  const s = Array.from(linalg.svdvals(A).data)
  assertClose(
    [linalg.norm(A, 'fro') ** 2, linalg.norm(A, 'nuc')],
    [s.reduce((a, x) => a + x * x, 0), s.reduce((a, x) => a + x, 0)],
    { rtol: 1e-5 },
  )
})

test('linalg: results record no graph, even from a tensor that requires grad', () => {
  const A = tensor(
    [
      [1, 2],
      [3, 4],
    ],
    { requiresGrad: true },
  )
  const { U, S, V } = linalg.svd(A)
  assert.equal(
    [U.requiresGrad, S.requiresGrad, V.requiresGrad, linalg.qr(A).Q.requiresGrad],
    [false, false, false, false],
  )
})

test('linalg: errors name the function, the shape, and the position of a NaN or Inf', () => {
  assert.throws(() => linalg.svd(tensor([1, 2, 3])), /linalg\.svd: expected a 2-D tensor \(m, n\), got shape \(3\)/)
  assert.throws(() => linalg.qr(zeros([2, 2, 2])), /linalg\.qr: expected a 2-D tensor \(m, n\), got shape \(2,2,2\)/)
  assert.throws(
    () =>
      linalg.matrixRank(
        tensor([
          [1, 2],
          [3, NaN],
        ]),
      ),
    /linalg\.matrixRank: the \(2,2\) matrix has NaN at \[1, 1\]/,
  )
  assert.throws(
    () => linalg.norm(tensor([[1, Infinity, 3]]), 'nuc'),
    /linalg\.norm: the \(1,3\) matrix has Infinity at \[0, 1\]/,
  )
  assert.throws(() => linalg.norm(tensor([[-Infinity]])), /linalg\.norm: .* -Infinity at \[0, 0\]/)
  assert.throws(() => linalg.svdvals(tensor([[NaN]])), /linalg\.svdvals/)
  // @ts-expect-error: an unknown ord is rejected at runtime too
  assert.throws(() => linalg.norm(eye(2), 1), /linalg\.norm: ord must be 'fro', 'nuc' or 2, got 1/)
  assert.throws(() => linalg.matrixRank(eye(2), -1), /linalg\.matrixRank: tol must be a finite number ≥ 0, got -1/)
})

test.run()
