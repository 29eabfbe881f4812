// Every differentiable op, as free functions: `import * as F from '../ops'`.
export * from './elementwise'
export * from './reduce'
export * from './movement'
export * from './matmul'
export * from './nn'
export * from './attention'
export * from './quant'
