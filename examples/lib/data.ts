// Data for the examples, from disk: the train/valid/test jsonl files (Node). Parsing, batching and masking are
// browser-safe and live in batches.ts, re-exported here so the examples import from one place.
import { readFileSync, existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { parseJsonl, type Example } from './batches'

export * from './batches'

/** Every non-blank line of a jsonl file; a line that is not {"text": string} → error naming file:line. */
export function readJsonl(file: string): Example[] {
  if (!existsSync(file)) throw new Error(`${file}: no such file`)
  return parseJsonl(readFileSync(file, 'utf8'), file)
}

/** train.jsonl, valid.jsonl and test.jsonl from `dir` (MLX lora.py's layout). */
export function loadSplits(dir: string): { train: Example[]; valid: Example[]; test: Example[] } {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new Error(`data directory ${dir} does not exist (expected train.jsonl, valid.jsonl, test.jsonl in it)`)
  return {
    train: readJsonl(join(dir, 'train.jsonl')),
    valid: readJsonl(join(dir, 'valid.jsonl')),
    test: readJsonl(join(dir, 'test.jsonl')),
  }
}
