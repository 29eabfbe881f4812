// The backend in words for the page: which kernels run matmul here (gpu.js on WebGL, Web Workers, one thread),
// and the speed auto measured for them when it chose.
import type { BackendInfo } from 'tenny'
import type { BackendSummary } from './messages'

/** backendInfo() as the page shows it. */
export function summarize(info: BackendInfo): BackendSummary {
  const probe = info.probes.find((p) => p.ok && p.gflops !== undefined && p.path === probePath(info))
  return { name: nameOf(info), detail: info.matmul, gflops: probe?.gflops ?? null, reason: info.reason, threads: threadsOf(info) }
}

/** How many threads Tenny can use here, or why only one (a page without COOP/COEP has no SharedArrayBuffer). */
function threadsOf({ parallel }: BackendInfo): string {
  if (parallel.failure) return `one thread: ${parallel.failure}`
  return `${parallel.threads} (this worker + ${parallel.workersReady} Web Worker${parallel.workersReady === 1 ? '' : 's'} ready)`
}

function nameOf(info: BackendInfo): string {
  if (info.backend === 'gpujs') return `gpu.js ${info.gpujsMode ?? ''}`.trim()
  if (info.backend === 'parallel') return `Web Workers (${info.parallel.threads} threads)`
  return 'one thread'
}

/** The name auto's probe gave the path that runs now. */
function probePath(info: BackendInfo): string {
  if (info.backend === 'gpujs') return `gpujs ${info.gpujsMode ?? ''}`
  return info.backend
}
