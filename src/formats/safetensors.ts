// Safetensors checkpoints, Hugging Face's format: an 8-byte little-endian header length N, N bytes of JSON
// ({name: {dtype, shape, data_offsets}, "__metadata__": {...}}), then the raw little-endian data.
// The one idea: check the whole header against the file before trusting a single byte of data.
// Bytes in, bytes out, so it runs in browsers too; reading and writing files is in safetensors-node.ts.
import { Tensor } from '../tensor.js'
import { shapeStr } from '../shape.js'

export type Dtype = 'F32' | 'F16' | 'BF16' | 'I8' | 'U8' | 'I32' | 'U32'
export type StoredData = Float32Array | Int8Array | Uint8Array | Int32Array | Uint32Array
/** A tensor as stored: F16/BF16 are decoded to Float32Array on read (dtype 'F32'); integer dtypes keep their typed arrays. */
export type StoredTensor = { dtype: Dtype; shape: number[]; data: StoredData }

/** What a load may read or allocate unless told otherwise (`{ maxBytes }`): far above Tenny's models, far below a bomb. */
export const DEFAULT_MAX_BYTES = 256 * 2 ** 20
/** Options of every loader of bytes: refuse inputs that would read or allocate more than `maxBytes`. */
export type LoadOptions = { maxBytes?: number }
// The reference Rust crate refuses headers over 100 MB too (its N_MAX), before reading them.
const MAX_HEADER_BYTES = 100_000_000

const BYTES: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2, I8: 1, U8: 1, I32: 4, U32: 4 }
const ARRAY_OF: Record<Dtype, string> = {
  F32: 'Float32Array',
  F16: 'Float32Array',
  BF16: 'Float32Array',
  I8: 'Int8Array',
  U8: 'Uint8Array',
  I32: 'Int32Array',
  U32: 'Uint32Array',
}

function isDtype(d: unknown): d is Dtype {
  return typeof d === 'string' && Object.hasOwn(BYTES, d)
}

function count(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1)
}

// ---- half-precision conversions ----------------------------------------------------------------

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** IEEE half (1 sign, 5 exponent, 10 mantissa bits) → number. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1
  const exp = (h >> 10) & 0x1f,
    frac = h & 0x3ff
  if (exp === 0) return sign * frac * 2 ** -24 // subnormal: frac · 2^-14 / 2^10
  if (exp === 31) return frac ? NaN : sign * Infinity
  return sign * (1 + frac / 1024) * 2 ** (exp - 15)
}

/** number → IEEE half bits, rounding to nearest even (overflow → ±Infinity). */
function floatToHalf(x: number): number {
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
function bf16ToFloat(h: number): number {
  u32[0] = h << 16
  return f32[0]
}

function floatToBf16(x: number): number {
  f32[0] = x
  const bits = u32[0]
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40 // keep NaN a NaN
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16 // round to nearest even
}

// ---- writing -----------------------------------------------------------------------------------

function asStored(name: string, t: Tensor | StoredTensor): StoredTensor {
  if (t instanceof Tensor) return { dtype: 'F32', shape: t.shape, data: t.data }
  if (!isDtype(t.dtype)) throw new Error(`serializeSafetensors: '${name}' has unknown dtype ${String(t.dtype)}`)
  if (t.data.constructor.name !== ARRAY_OF[t.dtype])
    throw new Error(
      `serializeSafetensors: '${name}' is ${t.dtype}, which needs a ${ARRAY_OF[t.dtype]}, got ${t.data.constructor.name}`,
    )
  if (count(t.shape) !== t.data.length)
    throw new Error(`serializeSafetensors: '${name}' has ${t.data.length} values but shape ${shapeStr(t.shape)}`)
  return t
}

/** Tensors (stored as F32) and stored tensors → the bytes of a .safetensors file. */
export function serializeSafetensors(
  tensors: Record<string, Tensor | StoredTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const entries = Object.entries(tensors).map(([name, t]) => [name, asStored(name, t)] as const)
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string')
      throw new Error(`serializeSafetensors: metadata '${k}' must be a string, got ${typeof v}`)
  }
  // [key, value] pairs made an object by Object.fromEntries, which defines each key as its own property:
  // `header[name] = …` would set the prototype for a tensor named '__proto__' and silently drop its entry
  const header: [string, unknown][] = Object.keys(metadata).length ? [['__metadata__', metadata]] : []
  let offset = 0
  for (const [name, t] of entries) {
    if (name === '__metadata__')
      throw new Error(`serializeSafetensors: '__metadata__' is reserved and cannot name a tensor`)
    const size = t.data.length * BYTES[t.dtype]
    header.push([name, { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] }])
    offset += size
  }
  const json = new TextEncoder().encode(JSON.stringify(Object.fromEntries(header)))
  const padded = Math.ceil(json.length / 8) * 8 // spaces keep the data section 8-byte aligned
  const bytes = new Uint8Array(8 + padded + offset)
  bytes.fill(0x20, 8 + json.length, 8 + padded)
  bytes.set(json, 8)
  const view = new DataView(bytes.buffer)
  view.setBigUint64(0, BigInt(padded), true)
  let at = 8 + padded
  for (const [, t] of entries) {
    if (t.dtype === 'F16' || t.dtype === 'BF16') {
      const encode = t.dtype === 'F16' ? floatToHalf : floatToBf16
      for (let i = 0; i < t.data.length; i++) view.setUint16(at + 2 * i, encode(t.data[i]), true)
    } else {
      bytes.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at)
    }
    at += t.data.length * BYTES[t.dtype]
  }
  return bytes
}

// ---- reading -----------------------------------------------------------------------------------

type Entry = { name: string; dtype: Dtype; shape: number[]; begin: number; end: number }

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isCounts(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)
}

function decode(bytes: Uint8Array, e: Entry): StoredData {
  const n = count(e.shape),
    raw = bytes.subarray(e.begin, e.end)
  if (e.dtype === 'F16' || e.dtype === 'BF16') {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength)
    const toFloat = e.dtype === 'F16' ? halfToFloat : bf16ToFloat
    const out = new Float32Array(n)
    for (let i = 0; i < n; i++) out[i] = toFloat(view.getUint16(2 * i, true))
    return out
  }
  const make = { F32: Float32Array, I8: Int8Array, U8: Uint8Array, I32: Int32Array, U32: Uint32Array }[e.dtype]
  const out = new make(n)
  new Uint8Array(out.buffer).set(raw) // a copy: aligned, and independent of the file buffer
  return out
}

/** A loader's cap: `maxBytes` if it is a count of bytes, else a clear error naming the loader. */
export function byteCap(op: string, { maxBytes = DEFAULT_MAX_BYTES }: LoadOptions): number {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0)
    throw new Error(`${op}: maxBytes must be a non-negative integer, got ${String(maxBytes)}`)
  return maxBytes
}

/** The refusal every loader gives for input over its cap, saying how to allow it. */
export function tooBig(what: string, bytes: number, maxBytes: number): string {
  return `${what} is ${bytes} bytes, over the ${maxBytes}-byte cap (pass { maxBytes } to allow more)`
}

/**
 * The bytes of a .safetensors file → its tensors and metadata. Throws naming `source` and the problem; never
 * returns half a result, and allocates nothing big before the header has been checked against `maxBytes`.
 */
export function parseSafetensors(
  bytes: Uint8Array,
  source = '<buffer>',
  options: LoadOptions = {},
): { tensors: Record<string, StoredTensor>; metadata: Record<string, string> } {
  const fail = (problem: string): never => {
    throw new Error(`safetensors: ${source}: ${problem}`)
  }
  const maxBytes = byteCap('parseSafetensors', options)
  if (bytes.length > maxBytes) fail(tooBig('the file', bytes.length, maxBytes))
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, shorter than the 8-byte header length`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const n = Number(view.getBigUint64(0, true))
  if (n > bytes.length - 8)
    fail(`header length ${n} runs past the end of the ${bytes.length}-byte file (not a safetensors file, or truncated)`)
  if (n > MAX_HEADER_BYTES) fail(`header length ${n} is over the format's ${MAX_HEADER_BYTES}-byte limit`)
  let header: unknown
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)))
  } catch (err) {
    fail(`header is not valid UTF-8 JSON (${err instanceof Error ? err.message : String(err)})`)
  }
  if (!isRecord(header)) return fail('header is not a JSON object')
  const metadata: Record<string, string> = {}
  const entries: Entry[] = []
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isRecord(value)) return fail('__metadata__ is not an object')
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') fail(`__metadata__ '${k}' is ${JSON.stringify(v)}, not a string`)
        Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true })
      }
      continue
    }
    if (!isRecord(value)) return fail(`'${name}' is not an object`)
    const { dtype, shape, data_offsets: offsets } = value
    if (!isDtype(dtype))
      return fail(
        `'${name}' has unknown dtype ${JSON.stringify(dtype)} (expected one of ${Object.keys(BYTES).join(', ')})`,
      )
    if (!isCounts(shape)) return fail(`'${name}' has shape ${JSON.stringify(shape)}, expected non-negative integers`)
    if (!isCounts(offsets) || offsets.length !== 2 || offsets[0] > offsets[1]) {
      return fail(`'${name}' has data_offsets ${JSON.stringify(offsets)}, expected [begin, end] with 0 ≤ begin ≤ end`)
    }
    const [begin, end] = offsets
    const want = count(shape) * BYTES[dtype]
    if (end - begin !== want)
      fail(`'${name}' is ${dtype} ${shapeStr(shape)} = ${want} bytes, but data_offsets span ${end - begin}`)
    entries.push({ name, dtype, shape, begin, end })
  }
  // Sorted by offset, the ranges must tile the data section exactly: no gap, no overlap, nothing after.
  const dataStart = 8 + n,
    dataLength = bytes.length - dataStart
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end)
  let at = 0
  for (const e of entries) {
    if (e.begin !== at)
      fail(`'${e.name}' starts at byte ${e.begin} of the data, expected ${at} (offsets overlap or leave a gap)`)
    at = e.end
  }
  if (at !== dataLength)
    fail(`tensors cover ${at} bytes but the data section is ${dataLength} bytes (truncated file or trailing bytes)`)
  const decoded = entries.reduce(
    (sum, e) => sum + count(e.shape) * (e.dtype === 'F16' || e.dtype === 'BF16' ? 4 : BYTES[e.dtype]),
    0,
  )
  if (decoded > maxBytes) fail(tooBig('the decoded tensors', decoded, maxBytes))
  const tensors: Record<string, StoredTensor> = Object.fromEntries(
    entries.map((e) => {
      const data = decode(bytes.subarray(dataStart), e)
      const dtype: Dtype = e.dtype === 'F16' || e.dtype === 'BF16' ? 'F32' : e.dtype
      return [e.name, { dtype, shape: e.shape, data }]
    }),
  )
  return { tensors, metadata }
}

/** A stored F32 tensor as a Tensor (other dtypes need a dequantize step first). */
export function toTensor(stored: StoredTensor, name: string): Tensor {
  if (stored.dtype !== 'F32' || !(stored.data instanceof Float32Array)) {
    throw new Error(
      `toTensor: '${name}' is stored as ${stored.dtype}; only F32 (or decoded F16/BF16) converts to a Tensor`,
    )
  }
  return new Tensor(stored.data, stored.shape)
}
