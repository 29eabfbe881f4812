// NumPy .npz files by path, for Node only; the format itself (bytes in, bytes out) is in npy.ts.
import { encodeNpz, decodeNpz, type NpyArray } from './npy.js'
import type { LoadOptions } from './safetensors.js'
import { writeFileAtomic, readFileCapped } from './files-node.js'

/** Save arrays as an uncompressed .npz (numpy.savez's layout), atomically. */
export function saveNpz(path: string, arrays: ReadonlyMap<string, NpyArray> | Record<string, NpyArray>): void {
  writeFileAtomic(path, encodeNpz(arrays), 'saveNpz')
}

/** Read every array of an .npz by name; a file over `maxBytes`, or one that would unpack to more, is refused. */
export function loadNpz(path: string, options: LoadOptions = {}): Map<string, NpyArray> {
  return decodeNpz(readFileCapped('loadNpz', path, options), path, options)
}
