// RMSNorm over the rows of a (rows, cols) matrix, the Llama family's LayerNorm: no mean subtracted, no bias.
// Sums run in JavaScript numbers (float64), so a long row loses nothing to float32 accumulation.

/** y = x · rstd · w per row, rstd = 1/√(mean(x²) + eps); rstd is kept for the backward. */
export function rmsNormRows(
  x: Float32Array,
  w: Float32Array,
  rows: number,
  cols: number,
  eps: number,
): { y: Float32Array; rstd: Float32Array } {
  const y = new Float32Array(rows * cols)
  const rstd = new Float32Array(rows)
  for (let r = 0; r < rows; r++) {
    const base = r * cols
    let s = 0
    for (let j = 0; j < cols; j++) s += x[base + j] * x[base + j]
    // rounded to float32 as PyTorch holds it, so x̂ = x·rstd is the same product here and in the backward
    const rs = Math.fround(1 / Math.sqrt(s / cols + eps))
    for (let j = 0; j < cols; j++) y[base + j] = w[j] * Math.fround(x[base + j] * rs)
    rstd[r] = rs
  }
  return { y, rstd }
}

/**
 * With x̂ = x·rstd, y = x̂ ⊙ w and g = dy ⊙ w: rstd depends on x through ∂rstd/∂xⱼ = −rstd³·xⱼ/n, so
 * dxᵢ = rstd·gᵢ − xᵢ·rstd³·Σⱼ gⱼxⱼ/n = rstd · (gᵢ − x̂ᵢ · mean(g ⊙ x̂)),   dw = Σ_rows
 * dy ⊙ x̂.
 * withParams false (a frozen weight, as under LoRA) skips dw.
 */
export function rmsNormRowsBackward(
  dy: Float32Array,
  x: Float32Array,
  w: Float32Array,
  rstd: Float32Array,
  rows: number,
  cols: number,
  withParams = true,
): { dx: Float32Array; dw: Float32Array } {
  const dx = new Float32Array(rows * cols)
  const dw = new Float64Array(withParams ? cols : 0) // Σ over rows in float64, as every sum here
  for (let r = 0; r < rows; r++) {
    const base = r * cols,
      rs = rstd[r]
    let gx = 0
    for (let j = 0; j < cols; j++) {
      const xHat = x[base + j] * rs
      gx += dy[base + j] * w[j] * xHat
      if (withParams) dw[j] += dy[base + j] * xHat
    }
    gx /= cols
    for (let j = 0; j < cols; j++) dx[base + j] = rs * (dy[base + j] * w[j] - x[base + j] * rs * gx)
  }
  return { dx, dw: new Float32Array(dw) }
}
