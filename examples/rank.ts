// The rank of a matrix: how many independent directions ("pieces of evidence") it really holds.
// The seed tutorial's examples, where NumPy has matrix_rank and MLX had none:  npx tsx examples/rank.ts
//
// How it is computed: the SVD writes A = U·diag(σ)·Vᵀ, a sum of rank-1 pieces σᵢ·uᵢ·vᵢᵀ. The rank is
// the
// number of σᵢ that are not zero; "zero" means below σ_max · max(m, n) · ε(float32), so rounding noise in
// float32 data does not count as information (NumPy's rule).
import { tensor, matmul, linalg, type Tensor } from '../src/index'

function show(name: string, A: Tensor, why: string): void {
  const sigma = Array.from(linalg.svdvals(A).data, (s) => s.toPrecision(4))
  console.log(`${name} = ${JSON.stringify(A.toArray())}`)
  console.log(`  singular values: [${sigma.join(', ')}]`)
  console.log(`  rank: ${linalg.matrixRank(A)}  (${why})\n`)
}

// Row 2 is 3 × row 1: the second row adds no new information, so one singular value is exactly 0.
show(
  'A',
  tensor([
    [1, 2],
    [3, 6],
  ]),
  'row 2 = 3 · row 1',
)

// No row is a multiple of the other: two independent directions, two non-zero singular values.
show(
  'B',
  tensor([
    [1, 2],
    [3, 4],
  ]),
  'rows are independent',
)

// The PyTorch example: row 3 − row 2 = row 2 − row 1, so row 3 = 2·row 2 − row 1. Its third singular value
// comes out as rounding noise (~1e-16), not exactly 0: far below the tolerance, so it does not count.
show(
  'C',
  tensor([
    [1, 2, 3],
    [4, 5, 6],
    [7, 8, 9],
  ]),
  'row 3 = 2 · row 2 − row 1',
)

// LoRA's update ΔW = B·A with B (out, r) and A (r, in) can never have rank above r, however large out and in are.
const B = tensor([
  [1, 0],
  [2, 1],
  [0, 3],
  [1, 1],
]) // (4, 2)
const A = tensor([
  [1, 2, 0, 1, 3],
  [0, 1, 1, 2, 0],
]) // (2, 5)
show('ΔW = B·A', matmul(B, A), 'a 4×5 matrix, but at most r = 2')
