// Test helpers: gradcheck (central differences), assertClose, matchesComposite, and seeded random tensors.
import * as assert from 'uvu/assert'
import { Tensor, tensor, noGrad } from '../src/tensor'
import { random, randomNormal } from '../src/random'

/** A tensor of uniform values in [-scale, scale) from the seeded stream. */
export function uniform(shape: number[], scale = 1, requiresGrad = false): Tensor {
  const size = shape.reduce((a, b) => a * b, 1)
  return tensor(
    Float32Array.from({ length: size }, () => (2 * random() - 1) * scale),
    shape,
    { requiresGrad },
  )
}

export function normal(shape: number[], std = 1, requiresGrad = false): Tensor {
  const size = shape.reduce((a, b) => a * b, 1)
  return tensor(
    Float32Array.from({ length: size }, () => std * randomNormal()),
    shape,
    { requiresGrad },
  )
}

/** Throws naming the first index where |a − b| > atol + rtol·|b|. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { atol = 1e-5, rtol = 1e-5, what = 'values' } = {},
): void {
  if (actual.length !== expected.length)
    throw new Error(`${what}: length ${actual.length} vs expected ${expected.length}`)
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i],
      e = expected[i]
    if (Number.isNaN(a) !== Number.isNaN(e) || Math.abs(a - e) > atol + rtol * Math.abs(e)) {
      throw new Error(`${what}: index ${i}: got ${a}, expected ${e} (atol ${atol}, rtol ${rtol})`)
    }
  }
}

/**
 * Compare backward() against central finite differences (in float64 over the float32 data).
 * The output is reduced to a scalar through a fixed random probe, so every output element matters.
 */
export function gradcheck(f: () => Tensor, inputs: Tensor[], { eps = 1e-2, tol = 1e-2 } = {}): void {
  const out0 = f()
  const probe = Float64Array.from({ length: out0.size }, () => random() - 0.5)
  const loss = (t: Tensor) => {
    let s = 0
    for (let i = 0; i < t.size; i++) s += t.data[i] * probe[i]
    return s
  }
  for (const t of inputs) t.grad = null
  out0.backward(Float32Array.from(probe))
  for (const [n, t] of inputs.entries()) {
    if (!t.grad) throw new Error(`gradcheck: input ${n} received no gradient`)
    for (let i = 0; i < t.size; i++) {
      const keep = t.data[i]
      t.data[i] = keep + eps
      const up = noGrad(() => loss(f()))
      t.data[i] = keep - eps
      const down = noGrad(() => loss(f()))
      t.data[i] = keep
      const numeric = (up - down) / (2 * eps)
      const analytic = t.grad.data[i]
      if (Math.abs(numeric - analytic) > tol * Math.max(1, Math.abs(numeric))) {
        throw new Error(
          `gradcheck: input ${n} ${JSON.stringify(t.shape)}, index ${i}: backward gave ${analytic}, finite differences ${numeric}`,
        )
      }
    }
  }
}

/** A fused op and its composite agree in value and, under the same probe, in every input's gradient. */
export function matchesComposite(
  fused: () => Tensor,
  composite: () => Tensor,
  inputs: Tensor[],
  tol = { atol: 1e-5, rtol: 1e-4 },
): void {
  const y1 = fused(),
    y2 = composite()
  assert.equal(y1.shape, y2.shape)
  assertClose(y1.data, y2.data, { ...tol, what: 'fused vs composite values' })
  const probe = Float32Array.from({ length: y1.size }, () => random() - 0.5)
  const grads = [y1, y2].map((y) => {
    for (const t of inputs) t.grad = null
    y.backward(probe)
    return inputs.map((t) => t.grad!.data.slice())
  })
  inputs.forEach((_, i) =>
    assertClose(grads[0][i], grads[1][i], { ...tol, what: `fused vs composite gradient of input ${i}` }),
  )
}
