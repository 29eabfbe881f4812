// The entry of a Node worker thread (threads-node.ts starts it): plain JavaScript once compiled, so it runs
// from dist/ with no TypeScript loader; from the repository's sources tsx loads it.
import { workerData } from 'node:worker_threads'
import { runWorker } from './worker.js'
import type { WorkerInit } from './threads.js'

runWorker(workerData as WorkerInit)
