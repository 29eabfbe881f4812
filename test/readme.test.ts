// The README's autograd example must run exactly as written and print what its comments say.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync, writeFileSync, rmSync } from 'node:fs'
import { execFileSync } from 'node:child_process'

test('README: the autograd example runs as written and prints what its comments claim', () => {
  const readme = readFileSync('README.md', 'utf8')
  const block = /## Autograd in ten lines[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)
  assert.ok(block, 'README has an "Autograd in ten lines" section with a ts block')
  const code = block![1]
  const expected = [...code.matchAll(/console\.log\(.*\)\s*\/\/ (.*)$/gm)].map((m) => m[1].trim())
  assert.ok(expected.length >= 2, 'the example prints and states its results')
  const file = 'test/.readme-example.ts' // inside the package, so `from 'tenny'` resolves to this checkout
  writeFileSync(file, code)
  try {
    const out = execFileSync(process.execPath, ['--import', 'tsx', file], { encoding: 'utf8', env: { ...process.env, FORCE_COLOR: undefined, NO_COLOR: '1' } })
    const printed = out.trim().split('\n').map((l) => l.replace(/\s+/g, ' ').trim())
    assert.equal(printed, expected.map((l) => l.replace(/\s+/g, ' ')))
  } finally {
    rmSync(file, { force: true })
  }
})

test.run()
