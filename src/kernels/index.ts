// The kernel table every op calls through. K starts as the CPU loops; importing Tenny (src/index.ts) installs `auto`
// (or the backend TENNY_BACKEND names, src/backends/), which on the first large product replaces the entries another
// backend does better (useKernels). Ops never know which one ran.
import * as cpu from './cpu.js'

export type Kernels = typeof cpu
export const K: Kernels = { ...cpu }

/** Install overrides on top of the CPU table (entries not given fall back to the CPU). */
export function useKernels(overrides: Partial<Kernels>): void {
  Object.assign(K, cpu, overrides)
}

export { cpu }
