// Tokenizers by folder, for Node: a Hugging Face model folder's tokenizer files, each read size-capped by
// { maxBytes }, handed as bytes to tokenizer.ts.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { readFileCapped } from '../../src/formats/files-node.js'
import type { LoadOptions } from '../../src/formats/safetensors.js'
import { tokenizerFromFiles, TOKENIZER_FILES, type Tokenizer } from './tokenizer.js'

/** The tokenizer of the model folder `dir`: tokenizer.json, and tokenizer_config.json, chat_template.jinja if there. */
export function loadTokenizer(dir: string, options: LoadOptions = {}): Tokenizer {
  const files: Record<string, Uint8Array> = {}
  for (const name of TOKENIZER_FILES) {
    const path = join(dir, name)
    // tokenizer.json is read even when missing, so that the error names it
    if (name === 'tokenizer.json' || existsSync(path)) files[name] = readFileCapped('loadTokenizer', path, options)
  }
  return tokenizerFromFiles(files, { ...options, source: dir })
}
