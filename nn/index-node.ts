// nn for Node: everything in index.ts, plus adapters and checkpoints by file path (the `nn` of src/node.ts).
export * from './index.js'
export { saveAdapters, loadAdapters, exportPEFT, importPEFT, exportMLX, importMLX } from './files/adapters-node.js'
export { saveCheckpoint, loadCheckpoint, saveOptimizer, loadOptimizer } from './files/checkpoint-node.js'
export { loadPretrained } from './files/pretrained-node.js'
export { loadTokenizer } from './files/tokenizer-node.js'
