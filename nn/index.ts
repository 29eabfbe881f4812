// nn: modules that own tensors and call ops. `import { nn } from 'tenny'` then `new nn.Linear(4, 2)`.
export { Module } from './module'
export { Linear } from './linear'
