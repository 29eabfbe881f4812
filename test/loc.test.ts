// `npm run loc` enforces the style guide's budgets: it passes on this tree and exits 1, naming the offender,
// when a budget is lower than what the tree holds.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'

function loc(...args: string[]): { status: number | null; out: string } {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'bench/loc.ts', ...args], { encoding: 'utf8' })
  return { status: run.status, out: run.stdout + run.stderr }
}

test('npm run loc: the tree is within its budgets (engine, library, file and function)', () => {
  const { status, out } = loc()
  assert.is(status, 0, out.slice(-2000))
  assert.match(out, /within budget$/m)
  assert.match(out, /^\s+\d+\s+library \(src \+ ops \+ nn, without src\/backends\/\), budget \d+$/m)
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

test.run()
