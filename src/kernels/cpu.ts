// The CPU kernel table: plain TypeScript loops over Float32Array. Kernels take typed arrays and
// integer dims and return fresh arrays (*InPlace kernels say so); they never see a Tensor.
export { matmul, matmulBatched } from './matmul'
export * from './elementwise'
export * from './rows'
export * from './movement'
export * from './attention'
export { quantize, dequantize, dequantizeRowsInto, qmatmul, qmatmulT } from './quant'
