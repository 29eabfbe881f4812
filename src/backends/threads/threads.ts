// Where the backends' threads come from. A ThreadSpawner starts workers that run runWorker (worker.ts) on a
// WebAssembly.Memory shared with the caller. Node's spawner (worker_threads, threads-node.ts) is installed by
// src/node.ts; in a cross-origin-isolated Web Worker, Web Workers are used. Nothing here starts a thread.
import type { WasmMemory } from '../webassembly.js'

/** What a worker receives: the memory it shares with the caller, and its index (its state word). */
export type WorkerInit = { memory: WasmMemory; index: number }

/** A started worker: enough to stop it. */
export type Thread = { terminate(): void }

export type ThreadSpawner = {
  /** what starts the threads, for backendInfo() */
  readonly name: string
  /** hardware threads of this machine, the caller's included */
  cores(): number
  /** true where the caller may block (Atomics.wait) until its workers have started: Node, not a browser */
  readonly canWaitForStart: boolean
  /** start a worker running runWorker(init); a crash or a failed load is reported through onError */
  spawn(init: WorkerInit, onError: (why: string) => void): Thread
}

let installed: ThreadSpawner | undefined

/** Give the backends a way to start threads (src/node.ts passes Node's); undefined falls back to the default. */
export function useThreadSpawner(spawner: ThreadSpawner | undefined): void {
  installed = spawner
}

/** The spawner in use, or why there is none. */
export function threadSpawner(): ThreadSpawner | { failure: string } {
  return installed ?? webWorkers()
}

type WebWorker = {
  postMessage(message: unknown): void
  terminate(): void
  addEventListener(type: 'error', listener: (e: { message?: string }) => void): void
}
type WebWorkerClass = new (url: URL, options: { type: 'module' }) => WebWorker
declare const Worker: WebWorkerClass // the DOM's, present in browsers (checked before use); not in the ES2022 library

/**
 * Web Workers, where they can share memory and the caller can block on them: a cross-origin-isolated page
 * (SharedArrayBuffer exists only there), from inside a worker (Atomics.wait is refused on a page's main thread).
 */
function webWorkers(): ThreadSpawner | { failure: string } {
  const WorkerClass: unknown = Reflect.get(globalThis, 'Worker')
  if (typeof WorkerClass !== 'function')
    return {
      failure: 'no thread spawner: in Node import the `node` entry (src/node.ts), which installs worker_threads',
    }
  if (Reflect.get(globalThis, 'crossOriginIsolated') !== true)
    return { failure: 'the page is not cross-origin isolated (COOP/COEP headers), so it has no SharedArrayBuffer' }
  if (Reflect.get(globalThis, 'WorkerGlobalScope') === undefined)
    return { failure: "a page's main thread may not block on Atomics.wait: run Tenny in a Web Worker to use threads" }
  const navigator: unknown = Reflect.get(globalThis, 'navigator')
  const concurrency: unknown =
    typeof navigator === 'object' && navigator !== null ? Reflect.get(navigator, 'hardwareConcurrency') : undefined
  return {
    name: 'Web Workers',
    cores: () => (typeof concurrency === 'number' ? concurrency : 1),
    canWaitForStart: false, // a new worker may need this thread's event loop to start
    spawn(init, onError) {
      // NOTE: written as `new Worker(new URL(…, import.meta.url))` so bundlers (Vite, webpack, esbuild's
      // plugins) see it and bundle the worker's own imports; any other spelling ships a URL that 404s
      const worker = new Worker(new URL('./worker-web.js', import.meta.url), { type: 'module' })
      worker.addEventListener('error', (e) => onError(e.message ?? 'the worker failed to load'))
      worker.postMessage(init)
      return worker
    },
  }
}
