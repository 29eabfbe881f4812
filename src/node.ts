// The `node` entry: everything in the universal entry, plus what needs Node (files by path).
export * from './index.js'
export * as nn from '../nn/index-node.js'
