// The backend in words for the page: which kernels run matmul here (gpu.js on WebGL, WebAssembly SIMD, the TS
// kernels on Web Workers or on one thread), the speed auto measured for them when it chose, and the threads.
import type { BackendInfo } from 'tenny'
import type { BackendSummary } from './messages'

/** backendInfo() as the page shows it. */
export function summarize(info: BackendInfo): BackendSummary {
  const probe = info.probes.find((p) => p.ok && p.gflops !== undefined && p.path === probeName(info))
  return {
    name: nameOf(info),
    detail: info.matmul,
    gflops: probe?.gflops ?? null,
    reason: info.reason,
    threads: threadsOf(info),
  }
}

function nameOf({ backend, threads, gpujsMode }: BackendInfo): string {
  const on = threads > 1 ? `on ${threads} threads (Web Workers)` : 'on one thread'
  if (backend === 'gpujs') return `gpu.js ${gpujsMode ?? ''}`.trim()
  if (backend === 'wasm') return `WebAssembly SIMD ${on}`
  if (backend === 'parallel') return `TS kernels ${on}`
  return 'TS kernels on one thread'
}

/** The name auto's probe gave the path that runs now (auto.ts's labels). */
function probeName({ backend, threads, gpujsMode }: BackendInfo): string {
  if (backend === 'gpujs') return `gpujs ${gpujsMode ?? ''}`
  return `${backend} (${threads} thread${threads > 1 ? 's' : ''})`
}

/** How many threads Tenny can use here, or why only one (a page without COOP/COEP has no SharedArrayBuffer). */
function threadsOf({ parallel }: BackendInfo): string {
  if (parallel.failure) return `one thread: ${parallel.failure}`
  const workers = `${parallel.workersReady} Web Worker${parallel.workersReady === 1 ? '' : 's'}`
  return `${parallel.threads} (this worker + ${workers} ready)`
}
