// Checkpoints by path, for Node: a GPT and an optimizer's state written atomically and read (size-capped by
// { maxBytes }) as the bytes that checkpoint.ts makes and checks.
import { writeFileAtomic, readFileCapped } from '../../src/formats/files-node.js'
import type { LoadOptions } from '../../src/formats/safetensors.js'
import { GPT } from '../gpt.js'
import type { Optimizer } from '../optim.js'
import { checkpointToBytes, checkpointFromBytes, optimizerToBytes, loadOptimizerBytes } from './checkpoint.js'

/** Save a GPT (weights, quantized codes, config, and `metadata` notes) as one .safetensors file. */
export function saveCheckpoint(path: string, model: GPT, metadata: Record<string, string> = {}): void {
  writeFileAtomic(path, checkpointToBytes(model, metadata), 'saveCheckpoint')
}

/** Rebuild the GPT that saveCheckpoint wrote, after checking the config and every tensor. */
export function loadCheckpoint(path: string, options: LoadOptions = {}): GPT {
  return checkpointFromBytes(readFileCapped('loadCheckpoint', path, options), path, options)
}

/** Save an optimizer's state (buffers, lr, steps) as one .safetensors file. */
export function saveOptimizer(path: string, opt: Optimizer): void {
  writeFileAtomic(path, optimizerToBytes(opt), 'saveOptimizer')
}

/** Restore what saveOptimizer wrote into `opt` (same class and parameters), after checking all of it. */
export function loadOptimizer(opt: Optimizer, path: string, options: LoadOptions = {}): void {
  loadOptimizerBytes(opt, readFileCapped(`${opt.constructor.name}.load`, path, options), path, options)
}
