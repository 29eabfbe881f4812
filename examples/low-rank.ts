// Low-rank approximation: keep the k largest singular triplets of a matrix and see how little is lost.
//   npx tsx examples/low-rank.ts
//
// The SVD writes A = Σᵢ σᵢ·uᵢ·vᵢᵀ, largest σ first. Keeping k terms, A_k = U_k·diag(σ_k)·V_kᵀ, is
// the best rank-k
// approximation there is (Eckart–Young): its error is exactly √(Σ_{i>k} σᵢ²). A smooth "image" has a few large
// σᵢ and a long tail of small ones (the noise), so a small k already keeps almost everything — in k·(m + n)
// numbers instead of m·n.
import { manualSeed, randn, tensor, matmul, mul, sub, add, slice, transpose, linalg, type Tensor } from '../src/index'

manualSeed(0)
const m = 64,
  n = 64

// A smooth 64×64 picture: two soft blobs on a gentle gradient, plus a little pixel noise. Each piece is f(x)·g(y),
// rank 1, so the clean picture has rank 3; the noise spreads small singular values over all 64 directions.
const clean = tensor(
  Array.from({ length: m }, (_, i) =>
    Array.from({ length: n }, (_, j) => {
      const x = i / m,
        y = j / n
      return (
        0.5 * x +
        Math.exp(-((x - 0.3) ** 2 + (y - 0.6) ** 2) * 30) +
        0.6 * Math.exp(-((x - 0.7) ** 2 + (y - 0.3) ** 2) * 50)
      )
    }),
  ),
)
const image = add(clean, mul(randn([m, n]), 0.02))

const { U, S, V } = linalg.svd(image)
console.log('largest singular values:', Array.from(S.data.slice(0, 8), (s) => s.toFixed(3)).join('  '), ' …')

/** A_k = U_k·diag(σ_k)·V_kᵀ: the first k columns of U scaled by σ, times the first k columns of V transposed. */
function rankK(k: number): Tensor {
  const Uk = slice(U, 1, 0, k) // (m, k)
  const Sk = slice(S, 0, 0, k) // (k)
  const Vk = slice(V, 1, 0, k) // (n, k)
  return matmul(mul(Uk, Sk), transpose(Vk)) // (m, n)
}

const total = linalg.norm(image)
const columns = '   ‖A − A_k‖/‖A‖   √(Σ_{i>k} σᵢ²)/‖A‖'
console.log(`\n   k   numbers stored${columns}   ‖clean − A_k‖/‖clean‖`)
for (const k of [1, 2, 3, 4, 8, 16, 32, 64]) {
  const Ak = rankK(k)
  const tail = Math.sqrt(Array.from(S.data.slice(k)).reduce((acc, s) => acc + s * s, 0))
  const row = [
    String(k).padStart(4),
    `${k * (m + n)}`.padStart(8) + ` (${((100 * k * (m + n)) / (m * n)).toFixed(0).padStart(3)}%)`,
    (linalg.norm(sub(image, Ak)) / total).toExponential(2).padStart(13),
    (tail / total).toExponential(2).padStart(18),
    (linalg.norm(sub(clean, Ak)) / linalg.norm(clean)).toExponential(2).padStart(20),
  ]
  console.log(row.join('  '))
}

// Reading the table: the error falls steeply up to k = 3 and then crawls, since all that is left is noise; the
// middle column (Eckart–Young's formula) matches it. The last column shows k = 3 sitting closer to the clean
// picture than the noisy original (k = 64) does: dropping the small σᵢ removed noise, not information.
//
// This is LoRA's bet. A fine-tuning update ΔW (out × in) is assumed to look like this picture: a few
// directions carry the change. So LoRA never learns ΔW itself; it learns ΔW = B·A with B (out × r) and
// A (r × in), r ≪ min(out, in), training r·(out + in) numbers instead of out·in, exactly the "numbers
// stored" column above. See examples/rank.ts: such a product can never have rank above r.
