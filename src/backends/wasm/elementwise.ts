// Elementwise kernels as WebAssembly SIMD, four floats per step: add, a vector exp (Cephes' expf, the polynomial most
// libm's float exp descends from) and GPT-2's gelu and its derivative built on it, as in src/kernels/elementwise.ts.
// Arrays are byte addresses in the module's memory; the caller rounds lengths up to a multiple of 4 (the extra
// lanes compute on whatever is there and are never read back).
import { FunctionBody } from './emit.js'

const GELU_C = Math.sqrt(2 / Math.PI)
const GELU_A = 0.044715

/**
 * for (let i = 0; i < count; i += 4) body(): `pointers` (byte addresses) advance one vector per step. count ≥ 1.
 */
export function eachVector(f: FunctionBody, pointers: number[], count: number, body: () => void): void {
  const end = f.local('i32')
  f.get(pointers[0]).get(count).i32(4).op('i32.mul').op('i32.add').set(end)
  f.doWhile(() => {
    body()
    for (const p of pointers) f.get(p).i32(16).op('i32.add').set(p)
    f.get(pointers[0]).get(end).op('i32.lt_u')
  })
}

/** add(a, b, dst, count): dst[i] = a[i] + b[i], as kernels/elementwise.ts's add. */
export function addKernel(): FunctionBody {
  const f = new FunctionBody({ a: 'i32', b: 'i32', dst: 'i32', count: 'i32' })
  const { a, b, dst, count } = f.param
  eachVector(f, [a, b, dst], count, () =>
    f.get(dst).get(a).mem('v128.load').get(b).mem('v128.load').op('f32x4.add').mem('v128.store'),
  )
  return f
}

/**
 * y = e^x in each lane; x is overwritten. Cephes' expf, max relative error ~1.5e-7 (float32 rounding is 6e-8):
 *   x = clamp(x, −87.34, 88.72)                   // at 88.72, 2ⁿ below is ∞ and so is e^x
 *   n = round(x · log₂e),  r = x − n·ln2           // |r| ≤ ln2/2; ln2 = C1 + C2, n·C1 exact (Cody–Waite)
 *   e^r ≈ 1 + r + r²·P(r),  e^x = e^r · 2ⁿ          // 2ⁿ built from its bits: (n + 127) << 23
 *   e^x = 0 where x < −87.34                       // underflow (a NaN compares false and stays NaN)
 */
export function exp(f: FunctionBody, x: number, y: number): void {
  const n = f.local('v128'),
    under = f.local('v128')
  f.get(x).splat(-87.33654).op('f32x4.lt').set(under)
  f.get(x).splat(88.72283).op('f32x4.pmin').splat(-87.33654).op('f32x4.pmax').set(x)
  f.get(x).splat(Math.LOG2E).op('f32x4.mul').op('f32x4.nearest').set(n)
  f.get(x)
    .get(n)
    .splat(0.693359375)
    .op('f32x4.mul')
    .op('f32x4.sub')
    .get(n)
    .splat(-2.1219444e-4)
    .op('f32x4.mul')
    .op('f32x4.sub')
    .set(x)
  f.splat(1.98756915e-4)
  for (const c of [1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1])
    f.get(x).op('f32x4.mul').splat(c).op('f32x4.add')
  f.get(x).op('f32x4.mul').get(x).op('f32x4.mul').get(x).op('f32x4.add').splat(1).op('f32x4.add') // 1 + r + r²·P(r)
  f.get(n).op('i32x4.trunc_sat_f32x4_s').i32(127).op('i32x4.splat').op('i32x4.add') // n + 127: 2ⁿ's exponent bits …
  f.i32(23).op('i32x4.shl') // … shifted into place
  f.op('f32x4.mul').get(under).op('v128.andnot').set(y)
}

/** e = e^{2u}, u = √(2/π)·(x + 0.044715·x³), from the lanes of local x. */
function geluExp(f: FunctionBody, x: number, e: number): void {
  const u = f.local('v128')
  f.get(x)
    .get(x)
    .op('f32x4.mul')
    .get(x)
    .op('f32x4.mul')
    .splat(GELU_A)
    .op('f32x4.mul')
    .get(x)
    .op('f32x4.add')
    .splat(2 * GELU_C)
    .op('f32x4.mul')
    .set(u)
  exp(f, u, e)
}

/**
 * gelu(src, dst, count): dst[i] = 0.5·x·(1 + tanh u) = x / (1 + e^{−2u}), as kernels/elementwise.ts's gelu. In
 * float32 this form loses nothing where gelu is tiny (x − x/(e + 1), the TS kernel's, cancels there); e = ∞
 * gives x and e = 0 gives ±0.
 */
export function geluKernel(): FunctionBody {
  const f = new FunctionBody({ src: 'i32', dst: 'i32', count: 'i32' })
  const { src, dst, count } = f.param
  const x = f.local('v128'),
    e = f.local('v128')
  eachVector(f, [src, dst], count, () => {
    f.get(src).mem('v128.load').set(x)
    geluExp(f, x, e)
    f.get(dst).get(x).splat(1).splat(1).get(e).op('f32x4.div').op('f32x4.add').op('f32x4.div').mem('v128.store')
  })
  return f
}

/**
 * geluBackward(src, dy, dst, count): dst[i] = dy·(0.5(1 + t) + 0.5·x·(1 − t²)·√(2/π)(1 + 3·0.044715x²))
 * with
 * t = tanh u, as kernels/elementwise.ts's geluBackward, written without cancellation through e = e^{2u}:
 *   0.5(1 + t) = e/(e + 1) = s,   1 − t² = 4·s·q with q = 1/(e + 1)
 * so d = s + 2·√(2/π)·x·s·q·(1 + 3·0.044715x²). The second term is below float32's resolution for |x| > 20,
 * where x is clamped in it (x³ would overflow and make 0·∞).
 */
export function geluBackwardKernel(): FunctionBody {
  const f = new FunctionBody({ src: 'i32', dy: 'i32', dst: 'i32', count: 'i32' })
  const { src, dy, dst, count } = f.param
  const x = f.local('v128'),
    e = f.local('v128'),
    s = f.local('v128'),
    xc = f.local('v128')
  eachVector(f, [src, dy, dst], count, () => {
    f.get(src).mem('v128.load').set(x)
    f.get(x).splat(20).op('f32x4.pmin').splat(-20).op('f32x4.pmax').set(xc)
    geluExp(f, x, e)
    f.splat(1).splat(1).splat(1).get(e).op('f32x4.div').op('f32x4.add').op('f32x4.div').set(s) // s = 1/(1 + 1/e)
    f.get(dst).get(s)
    f.get(xc)
      .get(s)
      .op('f32x4.mul')
      .splat(2 * GELU_C)
      .op('f32x4.mul')
      .get(e)
      .splat(1)
      .op('f32x4.add')
      .op('f32x4.div') // 2·√(2/π)·x·s·q
    f.splat(1)
      .get(xc)
      .get(xc)
      .op('f32x4.mul')
      .splat(3 * GELU_A)
      .op('f32x4.mul')
      .op('f32x4.add')
      .op('f32x4.mul') // · (1 + 3·0.044715x²)
    f.op('f32x4.add').get(dy).mem('v128.load').op('f32x4.mul').mem('v128.store')
  })
  return f
}

/** s = σ(g) = 1/(1 + e^{−g}) from the lanes of local g (e^{−g} = ∞ gives 0, 0 gives 1). */
function sigmoid(f: FunctionBody, g: number, s: number): void {
  const e = f.local('v128')
  f.zero().get(g).op('f32x4.sub').set(e) // −g
  exp(f, e, e)
  f.splat(1).splat(1).get(e).op('f32x4.add').op('f32x4.div').set(s)
}

/** swiglu(g, u, dst, count): dst[i] = g·σ(g)·u, as kernels/swiglu.ts's swiglu. */
export function swigluKernel(): FunctionBody {
  const f = new FunctionBody({ g: 'i32', u: 'i32', dst: 'i32', count: 'i32' })
  const { g, u, dst, count } = f.param
  const x = f.local('v128'),
    s = f.local('v128')
  eachVector(f, [g, u, dst], count, () => {
    f.get(g).mem('v128.load').set(x)
    sigmoid(f, x, s)
    f.get(dst).get(x).get(s).op('f32x4.mul').get(u).mem('v128.load').op('f32x4.mul').mem('v128.store')
  })
  return f
}

/**
 * swigluBackward(g, u, dh, dg, du, count): dg[i] = dh·u·σ(g)·(1 + g·(1 − σ(g))), du[i] = dh·g·σ(g), one σ
 * for both,
 * as kernels/swiglu.ts's swigluBackward.
 */
export function swigluBackwardKernel(): FunctionBody {
  const f = new FunctionBody({ g: 'i32', u: 'i32', dh: 'i32', dg: 'i32', du: 'i32', count: 'i32' })
  const { g, u, dh, dg, du, count } = f.param
  const x = f.local('v128'),
    s = f.local('v128'),
    d = f.local('v128')
  eachVector(f, [g, u, dh, dg, du], count, () => {
    f.get(g).mem('v128.load').set(x)
    f.get(dh).mem('v128.load').set(d)
    sigmoid(f, x, s)
    f.get(du).get(d).get(x).op('f32x4.mul').get(s).op('f32x4.mul').mem('v128.store') // dh·g·σ
    f.get(dg).get(d).get(u).mem('v128.load').op('f32x4.mul').get(s).op('f32x4.mul') // dh·u·σ …
    f.splat(1).get(x).splat(1).get(s).op('f32x4.sub').op('f32x4.mul').op('f32x4.add') // … · (1 + g·(1 − σ))
    f.op('f32x4.mul').mem('v128.store')
  })
  return f
}
