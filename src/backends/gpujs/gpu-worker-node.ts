// The entry of gpu.js's bridge worker (gpu-node.ts starts it): gpu.js and its async modes run here.
import { workerData } from 'node:worker_threads'
import { gpujsWorker, type BridgeInit } from './gpu-node.js'

void gpujsWorker(workerData as BridgeInit) // it reports its own failures in the shared memory (no top-level await: bundled as CommonJS from the sources)
