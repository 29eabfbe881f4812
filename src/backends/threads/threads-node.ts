// Node's threads for the backends: worker_threads running worker-node.ts. The one backend file that imports
// node:worker_threads and node:os; src/node.ts installs it (useThreadSpawner(nodeThreads)).
import { Worker } from 'node:worker_threads'
import { availableParallelism } from 'node:os'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { STATES, FAILED, MESSAGE, MESSAGE_BYTES } from './pool.js'
import type { ThreadSpawner, WorkerInit } from './threads.js'

/**
 * Start the module `bootstrap` in a worker thread, given `workerData` (a WorkerInit and more). Compiled (.js) it
 * loads as is; from the repository's .ts sources it runs as one script that esbuild bundles here (bundle()).
 * NOTE: no inherited execArgv: the caller's flags can include `-e <script>`, which the worker would run again.
 */
export function startNodeWorker(bootstrap: URL, workerData: WorkerInit, onError: (why: string) => void): Worker {
  const worker = new Worker(loader(bootstrap), { eval: true, workerData, execArgv: [] })
  worker.on('error', (err) => onError(err.message))
  worker.unref() // a pool never keeps the process alive
  return worker
}

/**
 * The worker's JavaScript: run the bootstrap, and if that fails say why in the shared memory (as WorkerEnd.fail
 * does), since the caller may be blocked on Atomics.wait, where no 'error' event reaches it.
 */
function loader(bootstrap: URL): string {
  const url = JSON.stringify(bootstrap.href)
  // the bundle's packages resolve from the bootstrap's folder
  const bundled = () => `new Promise(() => {\nconst require = createRequire(${url})\n${bundle(bootstrap)}\n})`
  const load = bootstrap.pathname.endsWith('.ts') ? bundled() : `import(${url})`
  return `const { workerData } = require('node:worker_threads'), { createRequire } = require('node:module')
${load}.catch((err) => {
  const buffer = workerData.memory.buffer, ctl = new Int32Array(buffer, 0, 1024), slot = ${STATES} + workerData.index
  const text = 'worker ' + workerData.index + ' could not load ' + ${url} + ': ' + String(err && err.stack || err)
  const why = new TextEncoder().encode(text).subarray(0, ${MESSAGE_BYTES})
  new Uint8Array(buffer, ${4 * MESSAGE + 4}, why.length).set(why)
  Atomics.store(ctl, ${MESSAGE}, why.length)
  Atomics.store(ctl, slot, ${FAILED})
  Atomics.notify(ctl, slot)
})`
}

type Esbuild = { buildSync(options: object): { outputFiles: { text: string }[] }; stop(): void }
const bundles = new Map<string, string>()

/**
 * The .ts bootstrap and what it imports as one CommonJS script, by esbuild (tsx, which runs the sources, brings
 * it). Loading the sources through tsx instead would start tsx's loader thread in every worker: a third V8
 * instance, ~20 MB more per worker (measured: wasm on 2 threads from the sources, 93 → 125–133 MB with tsx in the
 * worker; compiled, 60 → 74). import.meta.url becomes the bootstrap's URL, as the bundle has no file of its own.
 */
function bundle(bootstrap: URL): string {
  let code = bundles.get(bootstrap.href)
  if (code === undefined) {
    const esbuild = createRequire(import.meta.url)('esbuild') as Esbuild
    const options = {
      entryPoints: [fileURLToPath(bootstrap)],
      bundle: true,
      packages: 'external',
      platform: 'node',
      format: 'cjs',
      write: false,
      logLevel: 'silent',
    }
    code = esbuild.buildSync({ ...options, define: { 'import.meta.url': JSON.stringify(bootstrap.href) } })
      .outputFiles[0].text
    esbuild.stop() // its service thread and process: the bundle is all this process needs from it
    bundles.set(bootstrap.href, code)
  }
  return code
}

/** worker_threads, one per core the OS gives this process. */
export const nodeThreads: ThreadSpawner = {
  name: 'worker_threads',
  cores: () => availableParallelism(),
  canWaitForStart: true,
  spawn: (init, onError) =>
    startNodeWorker(
      new URL(`./worker-node.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url),
      init,
      onError,
    ),
}
