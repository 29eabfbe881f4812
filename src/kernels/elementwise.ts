// Elementwise kernels: one explicit loop per op over same-length Float32Arrays (no callbacks in
// hot loops: a shared loop taking a function measured ~7x slower once several functions had used it).

export function add(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i]
  return out
}

export function sub(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i] - b[i]
  return out
}

export function mul(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i] * b[i]
  return out
}

export function div(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i] / b[i]
  return out
}

/** a·s + t for scalars s, t (covers neg, scaling and adding a constant). */
export function affine(a: Float32Array, s: number, t: number): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i] * s + t
  return out
}

export function exp(a: Float32Array): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = Math.exp(a[i])
  return out
}

export function log(a: Float32Array): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = Math.log(a[i])
  return out
}

export function sqrt(a: Float32Array): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = Math.sqrt(a[i])
  return out
}

export function abs(a: Float32Array): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = Math.abs(a[i])
  return out
}

/** −1, 0 or 1. */
export function sign(a: Float32Array): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i] > 0 ? 1 : a[i] < 0 ? -1 : 0
  return out
}

/** Elementwise aᵉ for a scalar exponent e. */
export function powScalar(a: Float32Array, e: number): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = Math.pow(a[i], e)
  return out
}

/** Elementwise a^b. */
export function pow(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = Math.pow(a[i], b[i])
  return out
}

export function tanh(a: Float32Array): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = Math.tanh(a[i])
  return out
}

export function sigmoid(a: Float32Array): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = 1 / (1 + Math.exp(-a[i]))
  return out
}

export function relu(a: Float32Array): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i] > 0 ? a[i] : 0
  return out
}

/** dx = dy where x > 0, else 0. */
export function reluBackward(x: Float32Array, dy: Float32Array): Float32Array {
  const out = new Float32Array(x.length)
  for (let i = 0; i < x.length; i++) out[i] = x[i] > 0 ? dy[i] : 0
  return out
}

/** x·σ(x). */
export function silu(a: Float32Array): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i] / (1 + Math.exp(-a[i]))
  return out
}

/** d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x))). */
export function siluBackward(x: Float32Array, dy: Float32Array): Float32Array {
  const out = new Float32Array(x.length)
  for (let i = 0; i < x.length; i++) {
    const s = 1 / (1 + Math.exp(-x[i]))
    out[i] = dy[i] * s * (1 + x[i] * (1 - s))
  }
  return out
}

const GELU_C = Math.sqrt(2 / Math.PI)

/**
 * GPT-2's gelu: 0.5·x·(1 + tanh u), u = √(2/π)·(x + 0.044715·x³). Written as x − x/(e^{2u} + 1), the same
 * value (1 + tanh u = 2 − 2/(e^{2u} + 1)) with one exp instead of Math.tanh: ~40% faster here.
 */
export function gelu(a: Float32Array): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) {
    const x = a[i]
    const e = Math.exp(2 * GELU_C * (x + 0.044715 * x * x * x))
    out[i] = x - x / (e + 1) // e = ∞ gives x, e = 0 gives 0: no NaN at the tails
  }
  return out
}

/** With t = tanh u = 1 − 2/(e^{2u} + 1):  d/dx = 0.5(1 + t) + 0.5·x·(1 − t²)·√(2/π)(1 + 3·0.044715x²). */
export function geluBackward(a: Float32Array, dy: Float32Array): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) {
    const x = a[i]
    const t = 1 - 2 / (Math.exp(2 * GELU_C * (x + 0.044715 * x * x * x)) + 1)
    out[i] = dy[i] * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * x * x))
  }
  return out
}

/** erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, below float32's resolution near 1). */
function erf(x: number): number {
  const sign = x < 0 ? -1 : 1
  const ax = Math.abs(x)
  const t = 1 / (1 + 0.3275911 * ax)
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
  return sign * (1 - poly * Math.exp(-ax * ax))
}

/** Exact gelu: x·Φ(x) = 0.5·x·(1 + erf(x/√2)). */
export function geluErf(a: Float32Array): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = 0.5 * a[i] * (1 + erf(a[i] / Math.SQRT2))
  return out
}

/** d/dx x·Φ(x) = Φ(x) + x·φ(x). */
export function geluErfBackward(a: Float32Array, dy: Float32Array): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) {
    const x = a[i]
    const pdf = Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI)
    out[i] = dy[i] * (0.5 * (1 + erf(x / Math.SQRT2)) + x * pdf)
  }
  return out
}

export function clamp(a: Float32Array, lo: number, hi: number): Float32Array {
  const out = new Float32Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i] < lo ? lo : a[i] > hi ? hi : a[i]
  return out
}

/** dy passes where lo ≤ x ≤ hi, else 0. */
export function clampBackward(x: Float32Array, dy: Float32Array, lo: number, hi: number): Float32Array {
  const out = new Float32Array(x.length)
  for (let i = 0; i < x.length; i++) out[i] = x[i] >= lo && x[i] <= hi ? dy[i] : 0
  return out
}

/** cond ≠ 0 ? a : b. */
export function where(cond: Float32Array, a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(cond.length)
  for (let i = 0; i < cond.length; i++) out[i] = cond[i] !== 0 ? a[i] : b[i]
  return out
}

/** Σ a (in float64, so long sums do not drift). */
export function sumAll(a: Float32Array): number {
  let s = 0
  for (let i = 0; i < a.length; i++) s += a[i]
  return s
}
