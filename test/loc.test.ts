// `npm run loc` enforces the style guide's budgets: it passes on this tree and exits 1, naming the offender,
// when a budget is lower than what the tree holds. It counts tokens beside lines, and lines over 120 columns.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { withDir } from './fixtures'

function loc(...args: string[]): { status: number | null; out: string } {
  const run = spawnSync(process.execPath, ['--import', 'tsx', resolve('bench/loc.ts'), ...args], { encoding: 'utf8' })
  return { status: run.status, out: run.stdout + run.stderr }
}

test('npm run loc: the tree is within its budgets (engine, library, file and function) and 120 columns', () => {
  const { status, out } = loc('--width-check')
  assert.is(status, 0, out.slice(-2000))
  assert.match(out, /within budget$/m)
  assert.match(out, /^\s+\d+\s+\d+\s+[\d.]+\s+library \(src \+ ops \+ nn, without src\/backends\/\), budget \d+$/m)
})

test('npm run loc: over a budget it exits 1 and names what is over (library, a file, a function)', () => {
  const library = loc('--library', '1000')
  assert.is(library.status, 1)
  assert.match(library.out, /library is \d+ code lines, over 1000/)
  const file = loc('--file', '150')
  assert.is(file.status, 1)
  assert.match(file.out, /nn\/files\/adapters\.ts is \d+ code lines, over 150/)
  const fn = loc('--fn', '30')
  assert.is(fn.status, 1)
  assert.match(fn.out, /src\/kernels\/matmul\.ts:\d+ matmulNT\(\) is \d+ code lines, over 30/)
})

test("npm run loc: tokens per line beside lines, counted by TypeScript's scanner (comments not counted)", () =>
  withDir((dir) => {
    mkdirSync(join(dir, 'src'))
    const code = [
      '// a comment: no tokens',
      'const a = `x ${b + 1} y ${`in ${c}`}` / 2', // 3 + template (head, b, +, 1, middle, head, c, tail, tail) + 2
      "const r = /ab+c/g.test('s') /* a regular expression, not a division */", // const r = re . test ( 's' )
    ]
    writeFileSync(join(dir, 'src', 'tokens.ts'), code.join('\n') + '\n')
    const { status, out } = loc('--root', dir)
    assert.is(status, 0, out)
    assert.match(out, /^\s+2\s+23\s+11\.5\s+src\/tokens\.ts$/m) // 2 code lines; 14 + 9 tokens
    assert.match(out, /^\s+code\s+tokens\s+tok\/l$/m)
  }))

test('npm run loc --width lists lines over 120 columns in src/ ops/ nn/ examples/; --width-check exits 1 naming them', () =>
  withDir((dir) => {
    for (const folder of ['src', 'bench']) mkdirSync(join(dir, folder))
    const wide = `export const s = '${'x'.repeat(120)}'\n`
    writeFileSync(join(dir, 'src', 'wide.ts'), `export const ok = 1\n${wide}`)
    writeFileSync(join(dir, 'bench', 'wide.ts'), wide) // bench/ is not held to the width
    const plain = loc('--root', dir)
    assert.is(plain.status, 0, plain.out)
    assert.match(plain.out, /^1 lines over 120 columns in src\/ ops\/ nn\/ examples\/ \(--width lists them\)$/m)
    assert.match(loc('--root', dir, '--width').out, /^ {2}src\/wide\.ts:2 \(139 columns\)$/m)
    const check = loc('--root', dir, '--width-check')
    assert.is(check.status, 1, check.out)
    assert.match(check.out, /over budget:\n {2}1 lines over 120 columns: src\/wide\.ts:2 \(139 columns\)$/m)
  }))

test.run()
