// The example's data helpers: batches padded with IGNORE, and the loss masks (--mask name|prompt|none).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { padBatch, maskTargets, question, rephrased, IGNORE } from '../examples/lib/data'
import { CharTokenizer } from '../examples/lib/tokenizer'

const tok = new CharTokenizer()
const encode = (text: string) => tok.encode(text)
const lines = [
  question('relu') + 'max(x, 0).\n',
  question('svdvals') + 'The singular values.\n',
  'Plain text, not a question.\n',
  rephrased('relu') + 'max(x, 0).\n',
]

/** The characters whose prediction still counts, per row, as strings. */
function counted(mode: 'name' | 'prompt' | 'none'): { rows: string[]; tokens: number } {
  const batch = padBatch(lines.map(encode), 128)
  maskTargets(batch, mode, encode)
  const [B, T] = batch.targets.shape
  const rows = Array.from({ length: B }, (_, b) =>
    Array.from(batch.targets.data.subarray(b * T, (b + 1) * T))
      .map((id) => (id === IGNORE ? '_' : tok.decode([id])))
      .join('')
      .replace(/_+$/, ''),
  )
  const kept = Array.from(batch.targets.data).filter((id) => id !== IGNORE).length
  assert.is(batch.tokens, kept, 'tokens counts the targets that are not IGNORE')
  return { rows, tokens: batch.tokens }
}

test("maskTargets 'name': only the function name is skipped; the template and the answer count", () => {
  const { rows } = counted('name')
  assert.is(rows[0], ': What is ____ in tenny?\nA: max(x, 0).\n')
  assert.is(rows[1], ': What is _______ in tenny?\nA: The singular values.\n')
  assert.is(rows[2], 'lain text, not a question.\n', 'a row of another form stays whole')
  assert.is(
    rows[3],
    '_'.repeat(rephrased('relu').length - 1) + 'max(x, 0).\n',
    'all of a rephrased question: only its answer counts',
  )
})

test("maskTargets 'prompt' skips the whole question; 'none' nothing", () => {
  assert.is(counted('prompt').rows[0], '_'.repeat(question('relu').length - 1) + 'max(x, 0).\n')
  assert.is(counted('none').rows[0], (question('relu') + 'max(x, 0).\n').slice(1))
  assert.ok(counted('prompt').tokens < counted('name').tokens && counted('name').tokens < counted('none').tokens)
})

test('valid asks every trained function in other words, with its trained answer; test holds functions never trained', () => {
  const read = (split: string) =>
    readFileSync(join('examples', 'data', `${split}.jsonl`), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l).text as string)
  const parse = (text: string) => /^Q: (?:What is (\S+) in tenny\?|In tenny, what is (\S+)\?)\nA: (.*)$/s.exec(text)!
  const train = read('train').map(parse),
    valid = read('valid').map(parse),
    test = read('test').map(parse)
  assert.ok(
    train.every((m) => m && m[1]) && valid.every((m) => m && m[2]) && test.every((m) => m && m[1]),
    'each split in its form',
  )
  assert.equal(
    valid.map((m) => [m[2], m[3]]),
    train.map((m) => [m[1], m[3]]),
  )
  const trainedNames = new Set(train.map((m) => m[1]))
  assert.ok(test.length >= 10 && test.every((m) => !trainedNames.has(m[1])), 'test functions are never trained')
})

test('examples/data is what make-dataset.ts writes from the current docstrings (regenerate it after editing a doc)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tenny-data-'))
  try {
    execFileSync(process.execPath, ['--import', 'tsx', 'examples/make-dataset.ts', '--out', dir], { encoding: 'utf8' })
    for (const split of ['train', 'valid', 'test']) {
      const committed = readFileSync(join('examples', 'data', `${split}.jsonl`), 'utf8')
      assert.is(
        readFileSync(join(dir, `${split}.jsonl`), 'utf8'),
        committed,
        `${split}.jsonl is stale: run npx tsx examples/make-dataset.ts`,
      )
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
