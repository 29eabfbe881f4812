// nn for Node: everything in index.ts, plus adapters and checkpoints by file path (the `nn` of src/node.ts).
export * from './index.js'
export { saveAdapters, loadAdapters, exportPEFT, importPEFT, exportMLX, importMLX } from './adapters-node.js'
export { saveCheckpoint, loadCheckpoint, saveOptimizer, loadOptimizer } from './checkpoint-node.js'
