// The CPU kernel table: plain TypeScript loops over Float32Array. Kernels take typed arrays and
// integer dims and return fresh arrays (*InPlace kernels say so); they never see a Tensor.
export { matmul, matmulBatched } from './matmul.js'
export * from './elementwise.js'
export * from './rows.js'
export * from './movement.js'
export * from './attention.js'
export { quantize, dequantize, dequantizeRowsInto, qmatmul, qmatmulT } from './quant.js'
export { rmsNormRows, rmsNormRowsBackward } from './rmsnorm.js'
export { rotaryRows } from './rotary.js'
export { swiglu, swigluBackward } from './swiglu.js'
