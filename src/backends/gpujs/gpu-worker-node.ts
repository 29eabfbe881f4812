// The entry of gpu.js's bridge worker (gpu-node.ts starts it): gpu.js and its async modes run here.
import { workerData } from 'node:worker_threads'
import { gpujsWorker, type BridgeInit } from './gpu-node.js'

// it reports its own failures in the shared memory (no top-level await: it is bundled as CommonJS from the sources)
void gpujsWorker(workerData as BridgeInit)
