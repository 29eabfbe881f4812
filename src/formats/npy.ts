// NumPy's .npy and .npz files, as MLX's original LoRA example saved adapters (mx.savez). A .npy is a 10-byte
// preamble (magic, version, header length), an ASCII Python-dict header padded to 64 bytes, then raw data; an
// .npz is a zip of .npy files (fflate does the zip). Bytes in, bytes out; files by path are in npy-node.ts.
import { zipSync, unzipSync, type UnzipFileInfo, type Zippable } from 'fflate'
import { permute } from '../kernels/movement.js'
import { fail as failWith, quote } from '../errors.js'
import { asBytes, byteCap, dims, sourceName, tooBig, type Bytes, type LoadOptions } from './bytes.js'

export type NpyArray = { shape: number[]; data: Float32Array }

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59] // \x93NUMPY

/** A float32 array as .npy bytes (format 1.0, little-endian '<f4', C order). */
export function encodeNpy({ shape, data }: NpyArray): Uint8Array {
  if (shape.reduce((n, d) => n * d, 1) !== data.length)
    throw new Error(`encodeNpy: shape (${shape.join(',')}) does not hold ${data.length} values`)
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})` // Python tuples: (n,) for one element
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${dims}, }`
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n' // data starts 64-byte aligned
  const bytes = new Uint8Array(10 + header.length + data.byteLength)
  bytes.set(MAGIC)
  bytes[6] = 1 // version 1.0
  new DataView(bytes.buffer).setUint16(8, header.length, true)
  for (let i = 0; i < header.length; i++) bytes[10 + i] = header.charCodeAt(i)
  const view = new DataView(bytes.buffer, 10 + header.length)
  for (let i = 0; i < data.length; i++) view.setFloat32(4 * i, data[i], true)
  return bytes
}

// The header dict as numpy writes it (its keys sorted; spacing aside): a key found anywhere else (inside another
// value, or a second time) would be a guess where numpy reads something else.
const HEADER = new RegExp(
  String.raw`^\{\s*'descr':\s*'([^']*)',\s*'fortran_order':\s*(True|False),` +
    String.raw`\s*'shape':\s*\(((?:\s*\d+\s*,)*(?:\s*\d+)?\s*)\),?\s*\}\s*$`,
)

/** .npy bytes → a float32 array (from '<f4' or '<f8', C or Fortran order). Throws naming `source`. */
export function decodeNpy(input: Bytes, source = '<npy>'): NpyArray {
  const bytes = asBytes('decodeNpy', input, 'the .npy bytes'),
    name = sourceName('decodeNpy', source)
  const fail = (problem: string): never => failWith('npy', `${name}: ${problem}`)
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) fail('not a .npy file (no \\x93NUMPY magic)')
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const major = bytes[6]
  if (major < 1 || major > 3) fail(`unsupported .npy version ${major}.${bytes[7]}`)
  const lenBytes = major === 1 ? 2 : 4
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true)
  const start = 8 + lenBytes + headerLen
  if (start > bytes.length) fail(`header of ${headerLen} bytes runs past the end of the ${bytes.length}-byte file`)
  const header = new TextDecoder().decode(bytes.subarray(8 + lenBytes, start))
  const m = HEADER.exec(header)
  if (!m)
    return fail(
      `cannot read the header ${quote(header.trim())} (expected {'descr': …, 'fortran_order': …, 'shape': (…)})`,
    )
  const [, descr, fortran, tuple] = m
  if (descr !== '<f4' && descr !== '<f8')
    fail(`dtype ${quote(descr)} is not supported (expected little-endian float32 '<f4' or float64 '<f8')`)
  const shape = tuple
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number)
  if (!shape.every((d) => Number.isSafeInteger(d))) fail(`bad shape ${quote(`(${tuple})`)}`)
  const n = shape.reduce((a, d) => a * d, 1),
    size = descr === '<f4' ? 4 : 8
  if (bytes.length - start !== n * size)
    fail(`shape ${dims(shape)} needs ${n * size} data bytes, the file has ${bytes.length - start}`)
  let data: Float32Array = new Float32Array(n)
  for (let i = 0; i < n; i++)
    data[i] = size === 4 ? view.getFloat32(start + 4 * i, true) : view.getFloat64(start + 8 * i, true)
  if (fortran === 'True' && shape.length > 1) {
    // column-major: the data is C order for the reversed shape
    const reversed = [...shape].reverse()
    data = permute(
      data,
      reversed,
      reversed.map((_, i) => reversed.length - 1 - i),
    )
  }
  return { shape, data }
}

/** Arrays → the bytes of an uncompressed .npz (numpy.savez's layout: one `<name>.npy` entry per array). */
export function encodeNpz(arrays: ReadonlyMap<string, NpyArray> | Record<string, NpyArray>): Uint8Array {
  const files: Zippable = {}
  for (const [name, a] of arrays instanceof Map ? arrays : Object.entries(arrays)) files[`${name}.npy`] = encodeNpy(a)
  return zipSync(files, { level: 0 })
}

/**
 * .npz bytes → its arrays by name (stored or deflated entries). Names, duplicates and every entry's declared
 * size are checked against `maxBytes` before anything is inflated. A Map, so no name (`__proto__`,
 * `constructor`) can be lost to or confused with an object's prototype.
 */
export function decodeNpz(input: Bytes, source = '<npz>', options: LoadOptions = {}): Map<string, NpyArray> {
  const bytes = asBytes('decodeNpz', input, 'the .npz bytes'),
    name = sourceName('decodeNpz', source)
  const fail = (problem: string): never => failWith('npz', `${name}: ${problem}`)
  const maxBytes = byteCap('decodeNpz', options)
  if (bytes.length > maxBytes) fail(tooBig('the file', bytes.length, maxBytes))
  const names = new Set<string>()
  let unpacked = 0,
    packed = 0
  let refusal: Error | undefined
  // fflate calls this for each entry of the zip's directory before it allocates the entry's output
  const check = (file: UnzipFileInfo): boolean => {
    try {
      checkEntry(file, names, maxBytes, (unpacked += file.compression === 0 ? file.size : file.originalSize))
      if ((packed += file.size) > bytes.length)
        throw new Error(`entries overlap: their data, up to ${quote(file.name)}, adds up to more than the file`)
    } catch (err) {
      throw (refusal = new Error(`npz: ${name}: ${err instanceof Error ? err.message : String(err)}`))
    }
    names.add(file.name)
    return true
  }
  let files: Record<string, Uint8Array>
  try {
    files = unzipSync(bytes, { filter: check })
  } catch (err) {
    if (err === refusal) throw err
    return fail(`not a readable zip archive (${err instanceof Error ? err.message : String(err)})`)
  }
  const out = new Map<string, NpyArray>()
  for (const entry of names) {
    if (!Object.hasOwn(files, entry)) fail(`entry ${quote(entry)} was lost while unzipping`)
    out.set(entry.slice(0, -'.npy'.length), decodeNpy(files[entry], `${name}:${quote(entry)}`))
  }
  return out
}

// Deflate's densest code spends 2 bits on 258 bytes (a length and a distance code of 1 bit each): 1032 to 1.
const DEFLATE_MAX_RATIO = 1032

/** One directory entry checked before fflate allocates its output; `unpacked`: what all entries so far unpack to. */
function checkEntry(file: UnzipFileInfo, names: Set<string>, maxBytes: number, unpacked: number): void {
  const entry = quote(file.name)
  if (!file.name.endsWith('.npy')) throw new Error(`entry ${entry} is not a .npy array`)
  if (names.has(file.name)) throw new Error(`entry ${entry} appears twice`)
  if (file.compression === 8 && file.originalSize > DEFLATE_MAX_RATIO * (file.size + 1))
    throw new Error(
      `entry ${entry} declares ${file.originalSize} bytes from ${file.size} deflated bytes, more than deflate can hold`,
    )
  if (unpacked > maxBytes) throw new Error(tooBig(`unpacked, the entries up to ${entry}`, unpacked, maxBytes))
}
