// Rotary position embeddings in Hugging Face's `rotate_half` layout: within each head of width D, element i is
// paired with element i + D/2 (not with its neighbour i + 1, the interleaved layout of the original paper).

/**
 * x (B, T, nHead·D) → y: each pair (x₁, x₂) = (x[i], x[i + D/2]) of every head at position t turns by the angle
 * whose cos and sin are row t, column i of the (T, D/2) tables:  y₁ = x₁·cos − x₂·sin,  y₂ = x₂·cos +
 * x₁·sin.
 * sign −1 turns by the opposite angle: a rotation's inverse is its transpose, so that is the backward.
 */
export function rotaryRows(
  x: Float32Array,
  cos: Float32Array,
  sin: Float32Array,
  B: number,
  T: number,
  nHead: number,
  D: number,
  sign: 1 | -1 = 1,
): Float32Array {
  const y = new Float32Array(x.length)
  const half = D / 2
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const row = (b * T + t) * nHead * D,
        table = t * half
      for (let h = 0; h < nHead; h++) {
        const at = row + h * D
        for (let i = 0; i < half; i++) {
          const c = cos[table + i],
            s = sign * sin[table + i]
          const x1 = x[at + i],
            x2 = x[at + half + i]
          y[at + i] = x1 * c - x2 * s
          y[at + half + i] = x2 * c + x1 * s
        }
      }
    }
  }
  return y
}
