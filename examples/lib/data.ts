// Data for the examples, from disk: the train/valid/test jsonl files (Node), as token ids ready to batch, and the
// model's loss on each split. Parsing, batching and masking are browser-safe and live in batches.ts, re-exported
// here so the examples import from one place.
import { readFileSync, existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { parseJsonl, maskedBatch, inBatches, type Example, type MaskMode } from './batches'
import { evaluate, type Batch } from './step'
import { shown } from './paths'
import type { CharTokenizer } from './tokenizer'

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

/**
 * The three splits as token ids, and how a list of them becomes one padded, masked batch; `measured`, when set,
 * is how many examples of a split a loss is measured on (the first ones: --val-batches batches).
 */
export type Data = {
  train: number[][]
  valid: number[][]
  test: number[][]
  batch: (examples: number[][]) => Batch
  measured?: number
  /** examples per batch when measuring a loss: 8, or with --model the training batch size (as mlx-lm) */
  evalBatch?: number
}
/** The batches a loss is measured on: the first data.measured examples of the split (or all), evalBatch at a time. */
export const measuredBatches = (data: Data, examples: number[][]) =>
  inBatches(examples.slice(0, data.measured ?? examples.length), data.evalBatch ?? 8, data.batch)
export type Losses = { train: number; valid: number; test: number }

/**
 * The splits of `dir`, each example ending in the newline that ends its answer; says how many, and which are cut.
 * A training batch must fit in the train split.
 */
export function loadData(
  dir: string,
  tokenizer: CharTokenizer,
  blockSize: number,
  mask: MaskMode,
  batchSize = 1,
): Data {
  const splits = loadSplits(dir)
  if (batchSize > splits.train.length)
    throw new Error(
      `--batch-size ${batchSize} is more than the ${splits.train.length} training examples in ${shown(dir)}`,
    )
  const encode = (examples: Example[]) => examples.map((e) => tokenizer.encode(e.text + '\n', `${e.file}:${e.line}`))
  const [train, valid, test] = [encode(splits.train), encode(splits.valid), encode(splits.test)]
  console.log(`Data: ${train.length} train, ${valid.length} valid, ${test.length} test examples from ${shown(dir)}`)
  // padBatch cuts an example to the context, as mlx-lm does: say so, since the cut part may be the answer
  const ids = [train, valid, test].flat(),
    cut = [splits.train, splits.valid, splits.test].flat().filter((_, i) => ids[i].length > blockSize + 1)
  if (cut.length) {
    const first = `${shown(cut[0].file)}:${cut[0].line}`
    console.log(
      `Note: ${cut.length} example(s) (first: ${first}) longer than the model's ${blockSize}-character context: ` +
        `only the first ${blockSize + 1} characters of each are used`,
    )
  }
  const batch = (examples: number[][]) => maskedBatch(examples, blockSize, mask, (text) => tokenizer.encode(text))
  return { train, valid, test, batch }
}

/** The model's mean loss per predicted token on each split (the measured part of it), in batches of 8. */
export function losses(model: Parameters<typeof evaluate>[0], data: Data): Losses {
  const on = (examples: number[][]) => evaluate(model, measuredBatches(data, examples))
  return { train: on(data.train), valid: on(data.valid), test: on(data.test) }
}
