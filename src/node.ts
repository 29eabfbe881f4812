// The `node` entry, what `import … from 'tenny'` gives Node: everything in the universal entry, plus the parts
// that need Node. Each Node-only module is re-exported or installed on its own line.
import { useThreadSpawner } from './backends/threads/threads.js'
import { nodeThreads } from './backends/threads/threads-node.js'
import { useGpujsBridge } from './backends/gpujs/gpu.js'
import { nodeGpujs } from './backends/gpujs/gpu-node.js'

export * from './index.js'
export { saveSafetensors, loadSafetensors } from './formats/safetensors-node.js'
export { saveNpz, loadNpz } from './formats/npy-node.js'
export { writeFileAtomic } from './formats/files-node.js'
export * as nn from '../nn/index-node.js' // nn plus adapters and checkpoints by file path

// Threads for the parallel backend (worker_threads), and gpu.js's webgpu and threaded webasm modes, which
// answer only with Promises and so run in a worker the caller blocks on.
useThreadSpawner(nodeThreads)
useGpujsBridge(nodeGpujs)
