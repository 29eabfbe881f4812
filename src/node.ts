// The `node` entry, what `import … from 'tenny'` gives Node: everything in the universal entry, plus the parts
// that need Node (files by path). Each Node-only module is re-exported on its own line.
export * from './index.js'
export { saveSafetensors, loadSafetensors } from './safetensors-node.js'
export { saveNpz, loadNpz } from './npy-node.js'
export { writeFileAtomic } from './files-node.js'
