// Safetensors checkpoints, Hugging Face's format: an 8-byte little-endian header length N, N bytes of JSON
// ({name: {dtype, shape, data_offsets}, "__metadata__": {...}}), then the raw little-endian data.
// The one idea: check the whole header against the file before trusting a single byte of data.
// Bytes in, bytes out, so it runs in browsers too; reading and writing files is in safetensors-node.ts.
import { Tensor } from '../tensor.js'
import { fail, quote } from '../errors.js'
import { halfToFloat, floatToHalf, bf16ToFloat, floatToBf16 } from './half.js'
import { asBytes, byteCap, tooBig, dims, kindOf, parseJson, sourceName, type Bytes, type LoadOptions } from './bytes.js'

export { DEFAULT_MAX_BYTES, byteCap, tooBig, type Bytes, type LoadOptions } from './bytes.js'

export type Dtype = 'F32' | 'F16' | 'BF16' | 'I8' | 'U8' | 'I32' | 'U32'
export type StoredData = Float32Array | Int8Array | Uint8Array | Int32Array | Uint32Array
/** A tensor as stored: F16/BF16 are decoded to Float32Array on read (dtype 'F32'); integer dtypes keep their arrays. */
export type StoredTensor = { dtype: Dtype; shape: number[]; data: StoredData }
/** What a header says of one tensor, before any of its data is decoded. */
export type TensorInfo = { dtype: Dtype; shape: number[] }

// The reference Rust crate refuses headers over 100 MB too (its N_MAX), before reading them.
const MAX_HEADER_BYTES = 100_000_000

/** Bytes per stored value of each dtype. */
export const DTYPE_BYTES: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2, I8: 1, U8: 1, I32: 4, U32: 4 }
const BYTES = DTYPE_BYTES
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

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** A list of counts: what a shape or a pair of offsets must be (non-negative safe integers). */
function isCounts(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)
}

function count(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1)
}

// ---- writing -----------------------------------------------------------------------------------

function asStored(name: string, t: unknown): StoredTensor {
  const op = 'serializeSafetensors'
  if (t instanceof Tensor) return { dtype: 'F32', shape: t.shape, data: t.data }
  if (!isRecord(t)) fail(op, `${quote(name)} is ${kindOf(t)}, expected a Tensor or { dtype, shape, data }`)
  const { dtype, shape, data } = t
  if (!isDtype(dtype)) fail(op, `${quote(name)} has unknown dtype ${quote(dtype)}`)
  // what the reader refuses, the writer refuses too: (−2, −1) or (0.5, 4) hold 2 values but no file can say so
  if (!isCounts(shape)) fail(op, `${quote(name)} has shape ${quote(shape)}, expected a list of non-negative integers`)
  const array = ArrayBuffer.isView(data) ? data.constructor.name : kindOf(data).replace(/^an? /, '')
  if (array !== ARRAY_OF[dtype]) fail(op, `${quote(name)} is ${dtype}, which needs a ${ARRAY_OF[dtype]}, got ${array}`)
  const values = data as StoredData
  if (count(shape) !== values.length) fail(op, `${quote(name)} has ${values.length} values but shape ${dims(shape)}`)
  return { dtype, shape, data: values }
}

/** Tensors (stored as F32) and stored tensors → the bytes of a .safetensors file. */
export function serializeSafetensors(
  tensors: Record<string, Tensor | StoredTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const op = 'serializeSafetensors'
  if (!isRecord(tensors))
    fail(op, `expected tensors as an object { name: Tensor | StoredTensor }, got ${kindOf(tensors)}`)
  if (!isRecord(metadata)) fail(op, `metadata must be an object of strings, got ${kindOf(metadata)}`)
  const entries = Object.entries(tensors).map(([name, t]) => [name, asStored(name, t)] as const)
  for (const [k, v] of Object.entries(metadata))
    if (typeof v !== 'string') fail(op, `metadata ${quote(k)} must be a string, got ${quote(v)}`)
  // [key, value] pairs made an object by Object.fromEntries, which defines each key as its own property:
  // `header[name] = …` would set the prototype for a tensor named '__proto__' and silently drop its entry
  const header: [string, unknown][] = Object.keys(metadata).length ? [['__metadata__', metadata]] : []
  let offset = 0
  for (const [name, t] of entries) {
    if (name === '__metadata__') fail(op, `'__metadata__' is reserved and cannot name a tensor`)
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

type Entry = TensorInfo & { name: string; begin: number; end: number }
type Header = { entries: Entry[]; metadata: Record<string, string>; data: Uint8Array }

function decode(data: Uint8Array, e: Entry): StoredData {
  const n = count(e.shape),
    raw = data.subarray(e.begin, e.end)
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

/** One header entry checked on its own: a known dtype, a shape of counts, offsets spanning exactly its bytes. */
function readEntry(name: string, value: unknown, bad: (problem: string) => never): Entry {
  if (!isRecord(value)) return bad(`${quote(name)} is not an object`)
  const { dtype, shape, data_offsets: offsets } = value
  if (!isDtype(dtype)) bad(`${quote(name)} has unknown dtype ${quote(dtype)} (expected one of ${Object.keys(BYTES)})`)
  if (!isCounts(shape)) bad(`${quote(name)} has shape ${quote(shape)}, expected non-negative integers`)
  if (!isCounts(offsets) || offsets.length !== 2 || offsets[0] > offsets[1])
    bad(`${quote(name)} has data_offsets ${quote(offsets)}, expected [begin, end] with 0 ≤ begin ≤ end`)
  const [begin, end] = offsets,
    want = count(shape) * BYTES[dtype]
  if (end - begin !== want)
    bad(`${quote(name)} is ${dtype} ${dims(shape)} = ${want} bytes, but data_offsets span ${end - begin}`)
  return { name, dtype, shape, begin, end }
}

/** The header read and checked against the file and `maxBytes`; nothing of the data is decoded. */
function readHeader(op: string, input: unknown, source: unknown, options: unknown): Header {
  const bytes = asBytes(op, input),
    name = sourceName(op, source)
  const bad = (problem: string): never => fail('safetensors', `${name}: ${problem}`)
  const maxBytes = byteCap(op, options)
  if (bytes.length > maxBytes) bad(tooBig('the file', bytes.length, maxBytes))
  if (bytes.length < 8) bad(`file is ${bytes.length} bytes, shorter than the 8-byte header length`)
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true))
  if (n > bytes.length - 8)
    bad(`header length ${n} runs past the end of the ${bytes.length}-byte file (not a safetensors file, or truncated)`)
  if (n > MAX_HEADER_BYTES) bad(`header length ${n} is over the format's ${MAX_HEADER_BYTES}-byte limit`)
  let header: unknown
  try {
    header = parseJson(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)))
  } catch (err) {
    bad(`header is not valid UTF-8 JSON (${err instanceof Error ? err.message : String(err)})`)
  }
  if (!isRecord(header)) return bad('header is not a JSON object')
  const metadata: Record<string, string> = {}
  const entries: Entry[] = []
  for (const [name, value] of Object.entries(header)) {
    if (name !== '__metadata__') {
      entries.push(readEntry(name, value, bad))
      continue
    }
    if (!isRecord(value)) return bad('__metadata__ is not an object')
    for (const [k, v] of Object.entries(value)) {
      if (typeof v !== 'string') bad(`__metadata__ ${quote(k)} is ${quote(v)}, not a string`)
      Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true })
    }
  }
  // Sorted by offset, the ranges must tile the data section exactly: no gap, no overlap, nothing after.
  const data = bytes.subarray(8 + n)
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end)
  let at = 0
  for (const e of entries) {
    if (e.begin !== at)
      bad(`${quote(e.name)} starts at byte ${e.begin} of the data, expected ${at} (offsets overlap or leave a gap)`)
    at = e.end
  }
  if (at !== data.length)
    bad(`tensors cover ${at} bytes but the data section is ${data.length} bytes (truncated file or trailing bytes)`)
  const decoded = entries.reduce((sum, e) => sum + count(e.shape) * (e.dtype[0] === 'F' ? 4 : BYTES[e.dtype]), 0)
  if (decoded > maxBytes) bad(tooBig('the decoded tensors', decoded, maxBytes))
  return { entries, metadata, data }
}

/**
 * The header of a .safetensors file (every tensor's dtype and shape, and the metadata), checked against the file
 * as parseSafetensors checks it, with no tensor decoded: a loader compares it to what it needs before allocating.
 */
export function parseSafetensorsHeader(
  bytes: Bytes,
  source = '<buffer>',
  options: LoadOptions = {},
): { tensors: Record<string, TensorInfo>; metadata: Record<string, string> } {
  const { entries, metadata } = readHeader('parseSafetensorsHeader', bytes, source, options)
  return { tensors: Object.fromEntries(entries.map((e) => [e.name, { dtype: e.dtype, shape: e.shape }])), metadata }
}

/**
 * The bytes of a .safetensors file → its tensors and metadata. Throws naming `source` and the problem; never
 * returns half a result, and allocates nothing big before the header has been checked against `maxBytes`.
 */
export function parseSafetensors(
  bytes: Bytes,
  source = '<buffer>',
  options: LoadOptions = {},
): { tensors: Record<string, StoredTensor>; metadata: Record<string, string> } {
  const { entries, metadata, data } = readHeader('parseSafetensors', bytes, source, options)
  const tensors: Record<string, StoredTensor> = Object.fromEntries(
    entries.map((e) => {
      const dtype: Dtype = e.dtype === 'F16' || e.dtype === 'BF16' ? 'F32' : e.dtype
      return [e.name, { dtype, shape: e.shape, data: decode(data, e) }]
    }),
  )
  return { tensors, metadata }
}

/** A stored F32 tensor as a Tensor (other dtypes need a dequantize step first). */
export function toTensor(stored: StoredTensor, name: string): Tensor {
  if (stored.dtype !== 'F32' || !(stored.data instanceof Float32Array))
    fail('toTensor', `${quote(name)} is stored as ${stored.dtype}; only F32 (or decoded F16/BF16) makes a Tensor`)
  return new Tensor(stored.data, stored.shape)
}
