// The universal entry, what `import { tensor, matmul, nn, optim } from 'tenny'` gives a browser bundle: nothing
// here or below reaches node:* or needs threads or a GPU to import. Node gets node.ts (this plus file paths).
// With node.ts, the one file in src/ that may import ops/ and nn/.
import { useDefaultBackend } from './backends/index.js'
export {
  Tensor,
  tensor,
  zeros,
  ones,
  full,
  arange,
  eye,
  rand,
  randn,
  randint,
  noGrad,
  isGradEnabled,
  fromOp,
  addGrad,
} from './tensor.js'
export { manualSeed, rngState, setRngState, random, randomNormal, randomInt } from './random.js'
export type { RngState } from './random.js'
export { K, useKernels, type Kernels } from './kernels/index.js'
export { setBackend, backendInfo, type BackendName, type BackendOptions, type BackendInfo } from './backends/index.js'
export { startBackend } from './backends/start.js'
export { useGpujs } from './backends/gpujs/gpu-web.js'
export type { Shape } from './shape.js'
export * from '../ops/index.js'
export * as nn from '../nn/index.js'
export {
  serializeSafetensors,
  parseSafetensors,
  toTensor,
  DEFAULT_MAX_BYTES,
  type Dtype,
  type StoredTensor,
  type StoredData,
  type LoadOptions,
} from './formats/safetensors.js'
export * as optim from '../nn/optim.js'
export * as linalg from '../ops/linalg.js'
export { encodeNpy, decodeNpy, encodeNpz, decodeNpz, type NpyArray } from './formats/npy.js'

// The default backend: auto (or the one TENNY_BACKEND names), which measures the matmul paths on the first
// product big enough to matter. This call is the only import-time change to the kernel table K; it starts no
// thread and needs no SharedArrayBuffer until then.
useDefaultBackend()
