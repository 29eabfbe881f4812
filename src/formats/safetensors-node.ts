// Safetensors files by path, for Node only; the format itself (bytes in, bytes out) is in safetensors.ts.
import { serializeSafetensors, parseSafetensors, type LoadOptions, type StoredTensor } from './safetensors.js'
import { writeFileAtomic, readFileCapped } from './files-node.js'
import type { Tensor } from '../tensor.js'

/** Write a .safetensors file atomically. */
export function saveSafetensors(
  path: string,
  tensors: Record<string, Tensor | StoredTensor>,
  metadata: Record<string, string> = {},
): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata), 'saveSafetensors')
}

/** Read and validate a .safetensors file; a file over `maxBytes` (default DEFAULT_MAX_BYTES) is refused unread. */
export function loadSafetensors(
  path: string,
  options: LoadOptions = {},
): { tensors: Record<string, StoredTensor>; metadata: Record<string, string> } {
  return parseSafetensors(readFileCapped('loadSafetensors', path, options), path, options)
}
