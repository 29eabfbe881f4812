// The package entry: `import { tensor, matmul, nn, optim } from 'tenny'`.
// The one file in src/ that may import ops/ and nn/.
export { Tensor, tensor, zeros, ones, full, arange, eye, rand, randn, randint, noGrad, isGradEnabled, fromOp, addGrad } from './tensor'
export { manualSeed, rngState, setRngState, random, randomNormal, randomInt } from './random'
export type { RngState } from './random'
export { K, useKernels, type Kernels } from './kernels'
export { setBackend, backendInfo, type BackendName, type BackendOptions, type BackendInfo } from './backend'
export type { Shape } from './shape'
export * from '../ops'
export * as nn from '../nn'
export { serializeSafetensors, parseSafetensors, saveSafetensors, loadSafetensors, toTensor, writeFileAtomic, type Dtype, type StoredTensor, type StoredData } from './safetensors'
export * as optim from '../nn/optim'
export * as linalg from '../ops/linalg'
export { encodeNpy, decodeNpy, saveNpz, loadNpz, type NpyArray } from './npy'
