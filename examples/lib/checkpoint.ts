// The base model's checkpoint: GPT weights and config plus the tokenizer's alphabet, in one .safetensors file.
import { existsSync } from 'node:fs'
import { GPT } from '../../nn/gpt'
import { loadCheckpoint } from '../../nn/files/checkpoint-node'
import { saveSafetensors, loadSafetensors } from '../../src/formats/safetensors-node'
import { CharTokenizer } from './tokenizer'

/** Save weights, config, alphabet and free-form notes (how it was trained) atomically. */
export function saveBase(path: string, model: GPT, tokenizer: CharTokenizer, notes: Record<string, string> = {}): void {
  const tensors = model.stateDict()
  if (model.config.tieWeights) delete tensors['lmHead.weight'] // the same Tensor as wte.weight
  saveSafetensors(path, tensors, {
    ...notes,
    format: 'tenny-gpt',
    config: JSON.stringify(model.config),
    alphabet: tokenizer.alphabet,
  })
}

/** The model and its tokenizer; a missing file, a damaged one or one without an alphabet → a clear error. */
export function loadBase(path: string): { model: GPT; tokenizer: CharTokenizer; metadata: Record<string, string> } {
  if (!existsSync(path)) throw new Error(`base checkpoint ${path} not found (npm run pretrain writes it)`)
  const model = loadCheckpoint(path) // validates the file, the config and every tensor
  const { metadata } = loadSafetensors(path)
  if (typeof metadata.alphabet !== 'string')
    throw new Error(`${path}: no tokenizer alphabet in the metadata (was it written by examples/pretrain.ts?)`)
  const tokenizer = new CharTokenizer(metadata.alphabet)
  if (tokenizer.vocabSize !== model.config.vocabSize)
    throw new Error(
      `${path}: the alphabet has ${tokenizer.vocabSize} characters but the model's vocabSize is ${model.config.vocabSize}`,
    )
  return { model, tokenizer, metadata }
}
