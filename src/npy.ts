// NumPy's .npy and .npz files, as MLX's original LoRA example saved adapters (mx.savez). A .npy is a 10-byte
// preamble (magic, version, header length), an ASCII Python-dict header padded to 64 bytes, then raw data; an
// .npz is a zip of .npy files (fflate does the zip).
import { readFileSync } from 'node:fs'
import { writeFileAtomic } from './safetensors.js'
import { zipSync, unzipSync } from 'fflate'
import { permute } from './kernels/movement.js'

export type NpyArray = { shape: number[]; data: Float32Array }

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59] // \x93NUMPY



/** A float32 array as .npy bytes (format 1.0, little-endian '<f4', C order). */
export function encodeNpy({ shape, data }: NpyArray): Uint8Array {
  if (shape.reduce((n, d) => n * d, 1) !== data.length) throw new Error(`encodeNpy: shape (${shape.join(',')}) does not hold ${data.length} values`)
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

/** .npy bytes → a float32 array (from '<f4' or '<f8', C or Fortran order). Throws naming `source`. */
export function decodeNpy(bytes: Uint8Array, source = '<npy>'): NpyArray {
  const fail = (problem: string): never => { throw new Error(`npy: ${source}: ${problem}`) }
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) fail('not a .npy file (no \\x93NUMPY magic)')
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const major = bytes[6]
  if (major < 1 || major > 3) fail(`unsupported .npy version ${major}.${bytes[7]}`)
  const lenBytes = major === 1 ? 2 : 4
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true)
  const start = 8 + lenBytes + headerLen
  if (start > bytes.length) fail(`header of ${headerLen} bytes runs past the end of the ${bytes.length}-byte file`)
  const header = new TextDecoder().decode(bytes.subarray(8 + lenBytes, start))
  const descr = /'descr':\s*'([^']*)'/.exec(header)?.[1]
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1]
  const dims = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1]
  if (descr === undefined || fortran === undefined || dims === undefined) return fail(`cannot read the header ${JSON.stringify(header.trim())}`)
  if (descr !== '<f4' && descr !== '<f8') fail(`dtype '${descr}' is not supported (expected little-endian float32 '<f4' or float64 '<f8')`)
  const shape = dims.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number)
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`bad shape (${dims})`)
  const n = shape.reduce((a, d) => a * d, 1), size = descr === '<f4' ? 4 : 8
  if (bytes.length - start !== n * size) fail(`shape (${shape.join(',')}) needs ${n * size} data bytes, the file has ${bytes.length - start}`)
  let data: Float32Array = new Float32Array(n)
  for (let i = 0; i < n; i++) data[i] = size === 4 ? view.getFloat32(start + 4 * i, true) : view.getFloat64(start + 8 * i, true)
  if (fortran === 'True' && shape.length > 1) { // column-major: the data is C order for the reversed shape
    const reversed = [...shape].reverse()
    data = permute(data, reversed, reversed.map((_, i) => reversed.length - 1 - i))
  }
  return { shape, data }
}

/** Save arrays as an uncompressed .npz (numpy.savez's layout: one `<name>.npy` per array), atomically. */
export function saveNpz(path: string, arrays: Record<string, NpyArray>): void {
  const files: Record<string, Uint8Array> = {}
  for (const [name, a] of Object.entries(arrays)) files[`${name}.npy`] = encodeNpy(a)
  writeFileAtomic(path, zipSync(files, { level: 0 }))
}

/** Read every array of an .npz (stored or deflated entries). */
export function loadNpz(path: string): Record<string, NpyArray> {
  let files: Record<string, Uint8Array>
  try {
    files = unzipSync(readFileSync(path))
  } catch (err) {
    throw new Error(`npz: ${path}: not a readable zip archive (${err instanceof Error ? err.message : String(err)})`)
  }
  const out: Record<string, NpyArray> = {}
  for (const [name, bytes] of Object.entries(files)) {
    if (!name.endsWith('.npy')) throw new Error(`npz: ${path}: entry '${name}' is not a .npy array`)
    out[name.slice(0, -4)] = decodeNpy(bytes, `${path}:${name}`)
  }
  return out
}
