// The entry of a Web Worker (threads.ts starts it in a cross-origin-isolated page): the first message
// carries the shared memory and the worker's index.
import { runWorker } from './worker.js'
import type { WorkerInit } from './threads.js'

declare const self: {
  addEventListener(type: 'message', listener: (e: { data: WorkerInit }) => void, options: { once: boolean }): void
}

self.addEventListener('message', (e) => runWorker(e.data), { once: true })
