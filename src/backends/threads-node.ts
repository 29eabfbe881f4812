// Node's threads for the backends: worker_threads running worker-node.ts. The one backend file that imports
// node:worker_threads and node:os; src/node.ts installs it (useThreadSpawner(nodeThreads)).
import { Worker } from 'node:worker_threads'
import { availableParallelism } from 'node:os'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { STATES, FAILED, MESSAGE, MESSAGE_BYTES } from './pool.js'
import type { ThreadSpawner, WorkerInit } from './threads.js'

/**
 * Start the module `bootstrap` in a worker thread, given `workerData` (a WorkerInit and more). Compiled (.js) it
 * loads as is; from the repository's .ts sources through tsx, whose hooks Node 20 does not carry into workers.
 * NOTE: no inherited execArgv: the caller's flags can include `-e <script>`, which the worker would run again.
 */
export function startNodeWorker(bootstrap: URL, workerData: WorkerInit, onError: (why: string) => void): Worker {
  const worker = new Worker(loader(bootstrap), { eval: true, workerData, execArgv: [] })
  worker.on('error', (err) => onError(err.message))
  worker.unref() // a pool never keeps the process alive
  return worker
}

/**
 * The worker's JavaScript: import the bootstrap, and if that fails say why in the shared memory (as
 * WorkerEnd.fail does), since the caller may be blocked on Atomics.wait, where no 'error' event reaches it.
 */
function loader(bootstrap: URL): string {
  const url = JSON.stringify(bootstrap.href)
  const tsx = bootstrap.pathname.endsWith('.ts') ? tsxApi() : undefined
  const load = tsx ? `import(${JSON.stringify(tsx)}).then(({ tsImport }) => tsImport(${url}, ${url}))` : `import(${url})`
  return `const { workerData } = require('node:worker_threads')
${load}.catch((err) => {
  const buffer = workerData.memory.buffer, ctl = new Int32Array(buffer, 0, 1024), slot = ${STATES} + workerData.index
  const why = new TextEncoder().encode('worker ' + workerData.index + ' could not load ' + ${url} + ': ' + String(err && err.stack || err)).subarray(0, ${MESSAGE_BYTES})
  new Uint8Array(buffer, ${4 * MESSAGE + 4}, why.length).set(why)
  Atomics.store(ctl, ${MESSAGE}, why.length)
  Atomics.store(ctl, slot, ${FAILED})
  Atomics.notify(ctl, slot)
})`
}

/** tsx's API module, when the sources run under tsx (undefined otherwise: a runtime that loads .ts itself). */
function tsxApi(): string | undefined {
  try {
    if (typeof import.meta.resolve === 'function') return import.meta.resolve('tsx/esm/api')
    // NOTE: tsx's CommonJS mode (`tsx -e`) has no import.meta.resolve, and the CommonJS API that require.resolve
    // finds cannot tsImport in a worker: take the ES module beside it (tsx's exports map: dist/esm/api/index.mjs)
    return pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href
  } catch {
    return undefined
  }
}

/** worker_threads, one per core the OS gives this process. */
export const nodeThreads: ThreadSpawner = {
  name: 'worker_threads',
  cores: () => availableParallelism(),
  canWaitForStart: true,
  spawn: (init, onError) => startNodeWorker(new URL(`./worker-node.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url), init, onError),
}
