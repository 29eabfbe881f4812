// setBackend for pages and Web Workers. A worker started from a browser thread comes up only once that thread's
// event loop turns, so a synchronous setBackend there would measure (or install) a pool with no worker ready
// yet. startBackend starts the pool, awaits its workers without blocking, then does what setBackend does.
import { setBackend, type BackendName, type BackendOptions, type BackendInfo } from './index.js'
import { sharedPool, STARTING } from './threads/pool.js'

/** setBackend(name, options) once the thread pool's workers have started, failed, or timeoutMs (10 s) passed. */
export async function startBackend(name: BackendName = 'auto', options: BackendOptions = {}): Promise<BackendInfo> {
  const pool = sharedPool() // undefined where there can be no threads: backendInfo() says why
  if (pool) {
    pool.start()
    const deadline = performance.now() + (options.timeoutMs ?? 10_000)
    const starting = () => Array.from({ length: pool.size }, (_, w) => pool.state(w)).includes(STARTING)
    while (starting() && !pool.failure && performance.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return setBackend(name, options)
}
