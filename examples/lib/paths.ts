// Where the examples' files are: the base checkpoint, the data, and the run folders. Shared by every script.
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

export const EXAMPLES = join(dirname(fileURLToPath(import.meta.url)), '..')
/** The base model `npm run pretrain` writes and the other scripts start from (--base picks another). */
export const BASE_PATH = join(EXAMPLES, 'base', 'base.safetensors')
/** train/valid/test.jsonl, written by examples/make-dataset.ts (--data picks another folder). */
export const DATA_DIR = join(EXAMPLES, 'data')
/** Where run folders go: examples/out, or $TENNY_EXAMPLE_OUT (the tests run the README's commands there). */
export const OUT_DIR = process.env.TENNY_EXAMPLE_OUT || join(EXAMPLES, 'out')

/** The path as the user would type it from the current directory. */
export const shown = (path: string): string => relative(process.cwd(), path) || '.'
