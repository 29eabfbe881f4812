// Elementwise ops with NumPy broadcasting. Each computes its output with a kernel, then hands
// fromOp a closure that is its backward; a binary op's backward ends in sumTo (undo the broadcast).
// Names: a, b are a binary op's operands (ta, tb as tensors), x a unary op's input, y always an output.
import { Tensor, fromOp, addGrad } from '../src/tensor.js'
import { K } from '../src/kernels/index.js'
import { fail } from '../src/errors.js'
import { broadcastShapes, broadcastTo, sumTo, sameShape } from '../src/shape.js'

/** A tensor or a plain number (treated as a constant scalar). */
export type Operand = Tensor | number

function asTensor(x: Operand): Tensor {
  return typeof x === 'number' ? new Tensor(new Float32Array([x]), []) : x
}

/** Bring a and b to their common shape; only a side that needs broadcasting is copied. */
function broadcastPair(op: string, a: Tensor, b: Tensor): { shape: number[]; ad: Float32Array; bd: Float32Array } {
  if (sameShape(a.shape, b.shape)) return { shape: a.shape, ad: a.data, bd: b.data }
  const shape = broadcastShapes(op, a.shape, b.shape)
  const ad = sameShape(a.shape, shape) ? a.data : broadcastTo(a.data, a.shape, shape)
  const bd = sameShape(b.shape, shape) ? b.data : broadcastTo(b.data, b.shape, shape)
  return { shape, ad, bd }
}

/** y = x·s + t for numbers s, t: the fast path for scalar arithmetic. */
function affine(x: Tensor, s: number, t: number): Tensor {
  return fromOp(K.affine(x.data, s, t), x.shape, [x], (dy) => {
    addGrad(x, K.affine(dy, s, 0)) // dx = s·dy
  })
}

/** a + b, broadcast. */
export function add(a: Operand, b: Operand): Tensor {
  if (typeof b === 'number' && typeof a !== 'number') return affine(a, 1, b)
  if (typeof a === 'number' && typeof b !== 'number') return affine(b, 1, a)
  const ta = asTensor(a),
    tb = asTensor(b)
  const { shape, ad, bd } = broadcastPair('add', ta, tb)
  return fromOp(K.add(ad, bd), shape, [ta, tb], (dy) => {
    if (ta.requiresGrad) addGrad(ta, sumTo(dy, shape, ta.shape)) // da = dy
    if (tb.requiresGrad) addGrad(tb, sumTo(dy, shape, tb.shape)) // db = dy
  })
}

/** a − b, broadcast. */
export function sub(a: Operand, b: Operand): Tensor {
  if (typeof b === 'number' && typeof a !== 'number') return affine(a, 1, -b)
  if (typeof a === 'number' && typeof b !== 'number') return affine(b, -1, a)
  const ta = asTensor(a),
    tb = asTensor(b)
  const { shape, ad, bd } = broadcastPair('sub', ta, tb)
  return fromOp(K.sub(ad, bd), shape, [ta, tb], (dy) => {
    if (ta.requiresGrad) addGrad(ta, sumTo(dy, shape, ta.shape)) // da = dy
    if (tb.requiresGrad) addGrad(tb, sumTo(K.affine(dy, -1, 0), shape, tb.shape)) // db = −dy
  })
}

/** a ⊙ b, broadcast. */
export function mul(a: Operand, b: Operand): Tensor {
  if (typeof b === 'number' && typeof a !== 'number') return affine(a, b, 0)
  if (typeof a === 'number' && typeof b !== 'number') return affine(b, a, 0)
  const ta = asTensor(a),
    tb = asTensor(b)
  const { shape, ad, bd } = broadcastPair('mul', ta, tb)
  return fromOp(K.mul(ad, bd), shape, [ta, tb], (dy) => {
    if (ta.requiresGrad) addGrad(ta, sumTo(K.mul(dy, bd), shape, ta.shape)) // da = dy ⊙ b
    if (tb.requiresGrad) addGrad(tb, sumTo(K.mul(dy, ad), shape, tb.shape)) // db = dy ⊙ a
  })
}

/** a / b, broadcast. */
export function div(a: Operand, b: Operand): Tensor {
  if (typeof b === 'number' && typeof a !== 'number') return affine(a, 1 / b, 0)
  const ta = asTensor(a),
    tb = asTensor(b)
  const { shape, ad, bd } = broadcastPair('div', ta, tb)
  const out = K.div(ad, bd)
  return fromOp(out, shape, [ta, tb], (dy) => {
    if (ta.requiresGrad) addGrad(ta, sumTo(K.div(dy, bd), shape, ta.shape)) // da = dy / b
    // db = −dy · a/b² = −dy·out/b
    if (tb.requiresGrad) addGrad(tb, sumTo(K.affine(K.div(K.mul(dy, out), bd), -1, 0), shape, tb.shape))
  })
}

/** −x. */
export function neg(x: Tensor): Tensor {
  return affine(x, -1, 0)
}

/**
 * xᵉ, with e a number or a broadcast tensor. As PyTorch's pow_backward: dx = 0 where e = 0 (x⁰ is constant, even
 * at x = 0 where e·x^(e−1) would be 0·∞), and de = 0 where x = 0 and e ≥ 0 (there xᵉ·ln x would be
 * 0·(−∞)).
 */
export function pow(x: Tensor, exponent: Operand): Tensor {
  if (typeof exponent === 'number') {
    const e = exponent
    return fromOp(K.powScalar(x.data, e), x.shape, [x], (dy) => {
      const dx = e === 0 ? new Float32Array(dy.length) : K.mul(dy, K.affine(K.powScalar(x.data, e - 1), e, 0))
      addGrad(x, dx) // dx = dy · e·x^(e−1), 0 where e = 0
    })
  }
  const { shape, ad, bd } = broadcastPair('pow', x, exponent)
  const out = K.pow(ad, bd),
    zero = new Float32Array(out.length)
  return fromOp(out, shape, [x, exponent], (dy) => {
    if (x.requiresGrad) {
      const dx = K.where(bd, K.mul(dy, K.mul(bd, K.pow(ad, K.affine(bd, 1, -1)))), zero) // dx = dy · e·x^(e−1)
      addGrad(x, sumTo(dx, shape, x.shape)) // 0 where e = 0
    }
    const de = K.mul(dy, K.mul(out, K.log(ad))) // de = dy · xᵉ·ln x, kept at x = 0 only where e < 0
    if (exponent.requiresGrad)
      addGrad(exponent, sumTo(K.where(ad, de, K.where(K.relu(K.affine(bd, -1, 0)), de, zero)), shape, exponent.shape))
  })
}

/** e to the power x, elementwise. */
export function exp(x: Tensor): Tensor {
  const y = K.exp(x.data)
  return fromOp(y, x.shape, [x], (dy) => {
    addGrad(x, K.mul(dy, y)) // dx = dy · eˣ
  })
}

/** Natural logarithm, elementwise (x > 0). */
export function log(x: Tensor): Tensor {
  return fromOp(K.log(x.data), x.shape, [x], (dy) => {
    addGrad(x, K.div(dy, x.data)) // dx = dy / x
  })
}

/** Square root, elementwise (x >= 0). */
export function sqrt(x: Tensor): Tensor {
  const y = K.sqrt(x.data)
  return fromOp(y, x.shape, [x], (dy) => {
    addGrad(x, K.affine(K.div(dy, y), 0.5, 0)) // dx = dy / (2√x)
  })
}

/** Absolute value |x|, elementwise. */
export function abs(x: Tensor): Tensor {
  return fromOp(K.abs(x.data), x.shape, [x], (dy) => {
    addGrad(x, K.mul(dy, K.sign(x.data))) // dx = dy · sign(x), 0 at x = 0
  })
}

/** Hyperbolic tangent, elementwise. */
export function tanh(x: Tensor): Tensor {
  const y = K.tanh(x.data)
  return fromOp(y, x.shape, [x], (dy) => {
    addGrad(x, K.mul(dy, K.affine(K.mul(y, y), -1, 1))) // dx = dy · (1 − tanh²x)
  })
}

/** Logistic sigmoid 1/(1+exp(-x)), elementwise. */
export function sigmoid(x: Tensor): Tensor {
  const y = K.sigmoid(x.data)
  return fromOp(y, x.shape, [x], (dy) => {
    addGrad(x, K.mul(dy, K.mul(y, K.affine(y, -1, 1)))) // dx = dy · σ(1 − σ)
  })
}

/** Rectified linear unit: max(x, 0), elementwise. */
export function relu(x: Tensor): Tensor {
  return fromOp(K.relu(x.data), x.shape, [x], (dy) => {
    addGrad(x, K.reluBackward(x.data, dy)) // dx = dy · [x > 0]
  })
}

/** x·σ(x) (a.k.a. swish). */
export function silu(x: Tensor): Tensor {
  return fromOp(K.silu(x.data), x.shape, [x], (dy) => {
    addGrad(x, K.siluBackward(x.data, dy)) // dx = dy · σ(x)(1 + x(1 − σ(x)))
  })
}

/**
 * GELU. Default: GPT-2's tanh approximation 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))); `approximate: 'none'`
 * gives the exact x·Φ(x). Fused: the composite would be six ops and five temporaries on the GPT's MLP path.
 */
export function gelu(x: Tensor, { approximate = 'tanh' }: { approximate?: 'tanh' | 'none' } = {}): Tensor {
  if (approximate === 'none') {
    return fromOp(K.geluErf(x.data), x.shape, [x], (dy) => {
      addGrad(x, K.geluErfBackward(x.data, dy)) // dx = dy · (Φ(x) + x·φ(x))
    })
  }
  return fromOp(K.gelu(x.data), x.shape, [x], (dy) => {
    addGrad(x, K.geluBackward(x.data, dy)) // dx = dy · gelu'(x), derivation in the kernel
  })
}

/** Clip to [min, max]; the gradient passes only inside the interval. */
export function clamp(x: Tensor, min = -Infinity, max = Infinity): Tensor {
  if (min > max) fail('clamp', `min ${min} is greater than max ${max}`)
  return fromOp(K.clamp(x.data, min, max), x.shape, [x], (dy) => {
    addGrad(x, K.clampBackward(x.data, dy, min, max)) // dx = dy · [min ≤ x ≤ max]
  })
}

/** cond ≠ 0 ? a : b, all three broadcast together. cond carries no gradient. */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const ta = asTensor(a),
    tb = asTensor(b)
  const shape = broadcastShapes('where', broadcastShapes('where', cond.shape, ta.shape), tb.shape)
  const expand = (t: Tensor): Float32Array => (sameShape(t.shape, shape) ? t.data : broadcastTo(t.data, t.shape, shape))
  const c = expand(cond)
  const zero = new Float32Array(c.length)
  return fromOp(K.where(c, expand(ta), expand(tb)), shape, [ta, tb], (dy) => {
    if (ta.requiresGrad) addGrad(ta, sumTo(K.where(c, dy, zero), shape, ta.shape)) // da = dy where cond
    if (tb.requiresGrad) addGrad(tb, sumTo(K.where(c, zero, dy), shape, tb.shape)) // db = dy elsewhere
  })
}

/** x with `value` wherever mask ≠ 0 (e.g. −∞ above the diagonal for causal attention). */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  return where(mask, value, x)
}
