// The playground's first-click data (examples/data/first-click/): what make-dataset.ts writes, a part of the Node
// example's data with the same answers, the four questions the first click is judged by among them.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const lines = (path: string) => readFileSync(path, 'utf8').split('\n').filter(Boolean)
const SPLITS = ['train', 'valid', 'test']

test('examples/data/first-click is what make-dataset.ts writes from the current docstrings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tenny-first-click-'))
  try {
    execFileSync(process.execPath, ['--import', 'tsx', 'examples/make-dataset.ts', '--out', dir], { encoding: 'utf8' })
    for (const split of SPLITS)
      assert.is(
        readFileSync(join(dir, 'first-click', `${split}.jsonl`), 'utf8'),
        readFileSync(join('examples/data/first-click', `${split}.jsonl`), 'utf8'),
        `first-click/${split}.jsonl is stale: run npx tsx examples/make-dataset.ts`,
      )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("first-click's questions are the Node example's, 80 trained and 32 held out, relu, matmul, softmax and gelu trained", () => {
  for (const split of SPLITS) {
    const all = new Set(lines(join('examples/data', `${split}.jsonl`)))
    const part = lines(join('examples/data/first-click', `${split}.jsonl`))
    assert.ok(part.length > 0 && part.every((line) => all.has(line)), `every first-click ${split} line is in ${split}`)
  }
  assert.is(lines('examples/data/first-click/train.jsonl').length, 80)
  assert.is(lines('examples/data/first-click/test.jsonl').length, 32)
  const trained = lines('examples/data/first-click/train.jsonl').join('\n')
  for (const name of ['relu', 'matmul', 'softmax', 'gelu']) assert.match(trained, `What is ${name} in tenny?`)
})

test.run()
