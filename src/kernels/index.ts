// The kernel table every op calls through. CPU loops by default; another backend may replace any
// entry it does better (useKernels), and ops never know which one ran.
import * as cpu from './cpu.js'

export type Kernels = typeof cpu
export const K: Kernels = { ...cpu }

/** Install overrides on top of the CPU table (entries not given fall back to the CPU). */
export function useKernels(overrides: Partial<Kernels>): void {
  Object.assign(K, cpu, overrides)
}

export { cpu }
