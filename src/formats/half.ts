// IEEE half (F16) and bfloat16 (BF16) to and from float32, as safetensors files store them: read widened to float32,
// written rounded to nearest even.

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** IEEE half (1 sign, 5 exponent, 10 mantissa bits) → number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1
  const exp = (h >> 10) & 0x1f,
    frac = h & 0x3ff
  if (exp === 0) return sign * frac * 2 ** -24 // subnormal: frac · 2^-14 / 2^10
  if (exp === 31) return frac ? NaN : sign * Infinity
  return sign * (1 + frac / 1024) * 2 ** (exp - 15)
}

/** number → IEEE half bits, rounding to nearest even (overflow → ±Infinity). */
export function floatToHalf(x: number): number {
  f32[0] = x
  const bits = u32[0]
  const sign = (bits >>> 16) & 0x8000
  const exp = (bits >>> 23) & 0xff,
    frac = bits & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (frac ? 0x200 : 0)
  const e = exp - 127 + 15
  if (e >= 31) return sign | 0x7c00
  if (e <= 0) {
    // subnormal half (or zero): shift the mantissa with its implicit 1 into place
    if (e < -10) return sign
    const m = frac | 0x800000,
      shift = 14 - e
    const half = 1 << (shift - 1),
      rest = m & ((1 << shift) - 1)
    let out = m >> shift
    if (rest > half || (rest === half && out & 1)) out++
    return sign | out
  }
  let out = (e << 10) | (frac >> 13)
  const rest = frac & 0x1fff
  if (rest > 0x1000 || (rest === 0x1000 && out & 1)) out++ // a carry into the exponent is still correct
  return sign | out
}

/** bfloat16 is the top half of a float32. */
export function bf16ToFloat(h: number): number {
  u32[0] = h << 16
  return f32[0]
}

export function floatToBf16(x: number): number {
  f32[0] = x
  const bits = u32[0]
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40 // keep NaN a NaN
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16 // round to nearest even
}
