// Checkpoints by path, for Node: a GPT and an optimizer's state written (atomically) and read as the bytes
// checkpoint.ts makes and checks.
import { existsSync, readFileSync } from 'node:fs'
import { writeFileAtomic } from '../src/safetensors.js'
import { GPT } from './gpt.js'
import type { Optimizer } from './optim.js'
import { checkpointToBytes, checkpointFromBytes, optimizerToBytes, loadOptimizerBytes } from './checkpoint.js'

function read(op: string, path: string): Uint8Array {
  if (!existsSync(path)) throw new Error(`${op}: ${path} does not exist`)
  return readFileSync(path)
}

/** Save a GPT (weights, quantized codes, config, and `metadata` notes) as one .safetensors file. */
export function saveCheckpoint(path: string, model: GPT, metadata: Record<string, string> = {}): void {
  writeFileAtomic(path, checkpointToBytes(model, metadata))
}

/** Rebuild the GPT that saveCheckpoint wrote, after checking the config and every tensor. */
export function loadCheckpoint(path: string): GPT {
  return checkpointFromBytes(read('loadCheckpoint', path), path)
}

/** Save an optimizer's state (buffers, lr, steps) as one .safetensors file. */
export function saveOptimizer(path: string, opt: Optimizer): void {
  writeFileAtomic(path, optimizerToBytes(opt))
}

/** Restore what saveOptimizer wrote into `opt` (same class and parameters), after checking all of it. */
export function loadOptimizer(opt: Optimizer, path: string): void {
  loadOptimizerBytes(opt, read(`${opt.constructor.name}.load`, path), path)
}
