// Row kernels: reductions over one axis seen as (outer, n, inner), and the fused softmax, cross-entropy and layer-norm
// loops over the rows of a (rows, cols) matrix, forward and backward. Every sum is a float64 (a JS number, or a
// Float64Array down columns) rounded to float32 once, so its error does not grow with the number of terms.

/**
 * out[o, i] = Σ_j a[o, j, i], added up in float64 and rounded once. A float32 running sum stops growing once its
 * terms fall below half its last bit (3·10⁷ ones summed to 16,777,216 = 2²⁴), and its error grows with n.
 */
export function sumAxis(a: Float32Array, outer: number, n: number, inner: number): Float32Array {
  const out = new Float32Array(outer * inner)
  const acc = new Float64Array(inner) // one float64 sum per column of a slab
  for (let o = 0; o < outer; o++) {
    if (inner === 1) {
      let s = 0 // a whole row: one JS number (float64), no typed-array round trip per term
      for (let j = o * n; j < (o + 1) * n; j++) s += a[j]
      out[o] = s
      continue
    }
    acc.fill(0)
    for (let j = 0; j < n; j++) {
      const aBase = (o * n + j) * inner
      for (let i = 0; i < inner; i++) acc[i] += a[aBase + i]
    }
    out.set(acc, o * inner)
  }
  return out
}

/** Max (sign = 1) or min (sign = −1) over the axis, with the index of the first extreme. */
export function extremeAxis(
  a: Float32Array,
  outer: number,
  n: number,
  inner: number,
  sign: 1 | -1,
): { values: Float32Array; indices: Int32Array } {
  const values = new Float32Array(outer * inner)
  const indices = new Int32Array(outer * inner)
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let best = a[o * n * inner + i],
        bestJ = 0
      for (let j = 1; j < n; j++) {
        const v = a[(o * n + j) * inner + i]
        if (sign * v > sign * best || (v !== v && best === best)) {
          // NaN wins, as in NumPy
          best = v
          bestJ = j
        }
      }
      values[o * inner + i] = best
      indices[o * inner + i] = bestJ
    }
  }
  return { values, indices }
}

/** dx[o, idx[o, i], i] = dy[o, i]: route each gradient to the element that won the max/min. */
export function extremeAxisBackward(
  dy: Float32Array,
  indices: Int32Array,
  outer: number,
  n: number,
  inner: number,
): Float32Array {
  const dx = new Float32Array(outer * n * inner)
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) dx[(o * n + indices[o * inner + i]) * inner + i] = dy[o * inner + i]
  return dx
}

/** y[r] += b for every row r of a (rows, cols) matrix. */
export function addRowInPlace(y: Float32Array, b: Float32Array, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols
    for (let j = 0; j < cols; j++) y[base + j] += b[j]
  }
}

// ---- softmax family, over the rows of a (rows, cols) matrix -----------------------------------

/** y = exp(x − max) / Σ exp(x − max), row by row (subtracting the max keeps exp finite). */
export function softmaxRows(x: Float32Array, rows: number, cols: number): Float32Array {
  const y = new Float32Array(rows * cols)
  for (let r = 0; r < rows; r++) {
    const base = r * cols
    let max = -Infinity
    for (let j = 0; j < cols; j++) if (x[base + j] > max) max = x[base + j]
    let s = 0
    for (let j = 0; j < cols; j++) {
      const e = Math.exp(x[base + j] - max)
      y[base + j] = e
      s += e
    }
    const inv = 1 / s
    for (let j = 0; j < cols; j++) y[base + j] *= inv
  }
  return y
}

/** dx = y ⊙ (dy − Σ_j dy·y), row by row. */
export function softmaxRowsBackward(y: Float32Array, dy: Float32Array, rows: number, cols: number): Float32Array {
  const dx = new Float32Array(rows * cols)
  for (let r = 0; r < rows; r++) {
    const base = r * cols
    let dot = 0
    for (let j = 0; j < cols; j++) dot += dy[base + j] * y[base + j]
    for (let j = 0; j < cols; j++) dx[base + j] = y[base + j] * (dy[base + j] - dot)
  }
  return dx
}

/** y = x − max − log Σ exp(x − max), row by row. */
export function logSoftmaxRows(x: Float32Array, rows: number, cols: number): Float32Array {
  const y = new Float32Array(rows * cols)
  for (let r = 0; r < rows; r++) {
    const base = r * cols
    let max = -Infinity
    for (let j = 0; j < cols; j++) if (x[base + j] > max) max = x[base + j]
    let s = 0
    for (let j = 0; j < cols; j++) s += Math.exp(x[base + j] - max)
    const shift = max + Math.log(s)
    for (let j = 0; j < cols; j++) y[base + j] = x[base + j] - shift
  }
  return y
}

/** dx = dy − exp(y)·Σ_j dy, row by row (exp(y) is the softmax). */
export function logSoftmaxRowsBackward(y: Float32Array, dy: Float32Array, rows: number, cols: number): Float32Array {
  const dx = new Float32Array(rows * cols)
  for (let r = 0; r < rows; r++) {
    const base = r * cols
    let s = 0
    for (let j = 0; j < cols; j++) s += dy[base + j]
    for (let j = 0; j < cols; j++) dx[base + j] = dy[base + j] - Math.exp(y[base + j]) * s
  }
  return dx
}

/**
 * Cross-entropy per row: loss[r] = log Σ exp(x_r) − x_r[t_r], and the softmax kept for backward.
 * Rows whose target equals `ignoreIndex` get loss 0.
 */
export function crossEntropyRows(
  x: Float32Array,
  targets: Int32Array,
  rows: number,
  cols: number,
  ignoreIndex: number,
): { losses: Float32Array; probs: Float32Array } {
  const probs = softmaxRows(x, rows, cols)
  const losses = new Float32Array(rows)
  for (let r = 0; r < rows; r++) {
    if (targets[r] === ignoreIndex) continue
    // −log p computed from the logits, not from the rounded p, so tiny probabilities keep their precision
    const base = r * cols
    let max = -Infinity
    for (let j = 0; j < cols; j++) if (x[base + j] > max) max = x[base + j]
    let s = 0
    for (let j = 0; j < cols; j++) s += Math.exp(x[base + j] - max)
    losses[r] = max + Math.log(s) - x[base + targets[r]]
  }
  return { losses, probs }
}

/** dx[r] = dyRow[r] · (p[r] − onehot(t[r])); ignored rows get 0. */
export function crossEntropyRowsBackward(
  probs: Float32Array,
  targets: Int32Array,
  dyRow: Float32Array,
  rows: number,
  cols: number,
  ignoreIndex: number,
): Float32Array {
  const dx = new Float32Array(rows * cols)
  for (let r = 0; r < rows; r++) {
    if (targets[r] === ignoreIndex) continue
    const base = r * cols,
      g = dyRow[r]
    for (let j = 0; j < cols; j++) dx[base + j] = g * probs[base + j]
    dx[base + targets[r]] -= g
  }
  return dx
}

// ---- layer norm over the rows of a (rows, cols) matrix ------------------------------------------

/** y = (x − mean) · rstd · w + b per row, rstd = 1/√(var + eps); mean and rstd are kept for backward. */
export function layerNormRows(
  x: Float32Array,
  w: Float32Array,
  b: Float32Array,
  rows: number,
  cols: number,
  eps: number,
): { y: Float32Array; mean: Float32Array; rstd: Float32Array } {
  const y = new Float32Array(rows * cols)
  const mean = new Float32Array(rows)
  const rstd = new Float32Array(rows)
  for (let r = 0; r < rows; r++) {
    const base = r * cols
    let s = 0
    for (let j = 0; j < cols; j++) s += x[base + j]
    const mu = s / cols
    let v = 0
    for (let j = 0; j < cols; j++) {
      const d = x[base + j] - mu
      v += d * d
    }
    const rs = 1 / Math.sqrt(v / cols + eps)
    for (let j = 0; j < cols; j++) y[base + j] = (x[base + j] - mu) * rs * w[j] + b[j]
    mean[r] = mu
    rstd[r] = rs
  }
  return { y, mean, rstd }
}

/**
 * With x̂ = (x − mean)·rstd and g = dy ⊙ w:  dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)),
 * dw = Σ_rows dy ⊙ x̂,  db = Σ_rows dy.
 */
export function layerNormRowsBackward(
  dy: Float32Array,
  x: Float32Array,
  w: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
  rows: number,
  cols: number,
  withParams = true,
): { dx: Float32Array; dw: Float32Array; db: Float32Array } {
  const dx = new Float32Array(rows * cols)
  // Σ over rows in float64 (as sumAxis); frozen weight and bias (LoRA): no dw, db work
  const dw = new Float64Array(withParams ? cols : 0)
  const db = new Float64Array(withParams ? cols : 0)
  for (let r = 0; r < rows; r++) {
    const base = r * cols,
      mu = mean[r],
      rs = rstd[r]
    let gMean = 0,
      gxMean = 0
    for (let j = 0; j < cols; j++) {
      const xHat = (x[base + j] - mu) * rs
      const g = dy[base + j] * w[j]
      gMean += g
      gxMean += g * xHat
      if (withParams) {
        dw[j] += dy[base + j] * xHat
        db[j] += dy[base + j]
      }
    }
    gMean /= cols
    gxMean /= cols
    for (let j = 0; j < cols; j++) {
      const xHat = (x[base + j] - mu) * rs
      dx[base + j] = rs * (dy[base + j] * w[j] - gMean - xHat * gxMean)
    }
  }
  return { dx, dw: new Float32Array(dw), db: new Float32Array(db) }
}
