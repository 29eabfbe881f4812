// Every differentiable op, as free functions: `import * as F from '../ops/index.js'`.
export * from './elementwise.js'
export * from './reduce.js'
export * from './movement.js'
export * from './matmul.js'
export * from './nn.js'
export * from './attention.js'
export {
  quantizedLinear,
  quantizeWeights,
  dequantizeWeights,
  type QuantizedWeights,
  type QuantMode,
  type QuantizeOptions,
} from './quant.js'
export * from './rmsnorm.js'
export * from './rotary.js'
export * from './swiglu.js'
