// The wasm backend: WebAssembly SIMD kernels that TypeScript generates at run time. Its kernel table (wasmKernels)
// is what backends/index.ts installs; matmul's path runs driver.ts → threads/pool.ts → pack.ts → matmul.ts (the
// kernel generator) → emit.ts (the emitter), the other kernels' kernels.ts → module.ts → the generators.
import type { Kernels } from '../../kernels/index.js'
import { matmulKernels } from './driver.js'
import {
  elementwiseKernels,
  attentionKernels,
  softmaxKernels,
  layerNormKernels,
  reduceKernels,
  TILE,
} from './kernels.js'

export {
  wasmMatmul,
  wasmPanels,
  wasmRows,
  wasmJob,
  WASM_PANELS,
  WASM_MIN_FLOPS,
  WASM_MIN_ROWS,
  WASM_ROWS_BELOW,
  WASM_THREADS_MIN_FLOPS,
  WASM_PIECE_FLOATS,
} from './driver.js'
export { wasmSupport } from './module.js'
export { WASM_MIN_ELEMENTS, WASM_MIN_ATTENTION } from './kernels.js'

/**
 * The backend's kernel-table entries: small products on the TS kernels, the rest on 1 thread or on all.
 * everySize sends every product and every kernel to the generated code (and to the threads, if any), and tile sets
 * the floats of an operand copied in per call (kernels.ts's TILE), as the tests do.
 */
export function wasmKernels({
  threads,
  everySize = false,
  tile = TILE,
}: {
  threads: boolean
  everySize?: boolean
  tile?: number
}): Pick<Kernels, 'matmul' | 'matmulBatched'> & Partial<Kernels> {
  return {
    ...matmulKernels(threads, everySize),
    ...elementwiseKernels(everySize, tile),
    ...attentionKernels(everySize),
    ...softmaxKernels(everySize, tile),
    ...layerNormKernels(everySize, tile),
    ...reduceKernels(everySize),
  }
}
