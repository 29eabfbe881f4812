// The base model's checkpoint: GPT weights and config plus the tokenizer's alphabet, in one .safetensors file.
import { existsSync } from 'node:fs'
import { basename, resolve } from 'node:path'
import { GPT } from '../../nn/gpt'
import { loadCheckpoint } from '../../nn/files/checkpoint-node'
import { serializeSafetensors } from '../../src/formats/safetensors'
import { loadSafetensors } from '../../src/formats/safetensors-node'
import { writeFileAtomic } from '../../src/formats/files-node'
import { CharTokenizer } from './tokenizer'
import { BASE_PATH } from './paths'

/** The checkpoint's bytes: weights, config, alphabet and free-form notes (how it was trained). */
export function baseBytes(model: GPT, tokenizer: CharTokenizer, notes: Record<string, string> = {}): Uint8Array {
  const tensors = model.stateDict()
  if (model.config.tieWeights) delete tensors['lmHead.weight'] // the same Tensor as wte.weight
  const config = JSON.stringify(model.config)
  return serializeSafetensors(tensors, { ...notes, format: 'tenny-gpt', config, alphabet: tokenizer.alphabet })
}

/** Save weights, config, alphabet and notes atomically. */
export function saveBase(path: string, model: GPT, tokenizer: CharTokenizer, notes: Record<string, string> = {}): void {
  writeFileAtomic(path, baseBytes(model, tokenizer, notes), 'saveBase')
}

/** The model and its tokenizer; a missing file, a damaged one or one without an alphabet → a clear error. */
export function loadBase(path: string): { model: GPT; tokenizer: CharTokenizer; metadata: Record<string, string> } {
  if (!existsSync(path)) throw new Error(`base checkpoint ${path} not found${whoWrites(path)}`)
  const model = loadCheckpoint(path) // validates the file, the config and every tensor
  const { metadata } = loadSafetensors(path)
  if (typeof metadata.alphabet !== 'string')
    throw new Error(`${path}: no tokenizer alphabet in the metadata (was it written by examples/pretrain.ts?)`)
  const tokenizer = new CharTokenizer(metadata.alphabet)
  if (tokenizer.vocabSize !== model.config.vocabSize)
    throw new Error(
      `${path}: the alphabet has ${tokenizer.vocabSize} characters but the model's vocabSize is ` +
        model.config.vocabSize,
    )
  return { model, tokenizer, metadata }
}

/** Which command writes a checkpoint at `path`, for the error that says it is missing. */
function whoWrites(path: string): string {
  if (/<[^>]*>/.test(path)) return `: replace ${/<[^>]*>/.exec(path)![0]} with a real folder, e.g. one in examples/out`
  if (resolve(path) === BASE_PATH) return ' (npm run pretrain writes it)'
  const name = basename(path)
  if (name === 'fused.safetensors') return ' (npm run fuse writes it into a run folder)'
  if (name === 'full-model.safetensors') return ' (npm run example -- --train --full writes it into a run folder)'
  return ''
}
