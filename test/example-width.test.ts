// No line over 120 columns anywhere under examples/: the scripts, the playground's page, its style sheet and the
// READMEs. Prettier keeps code to 120 but cannot break a string, and it does not format the HTML, CSS or Markdown.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync, readdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import { root } from './example-helpers'

const SKIP = new Set(['node_modules', 'dist', 'out', 'data', 'base']) // built, generated or data files
const TEXT = /\.(ts|mjs|html|css|md)$/

/** Every text file under `dir`, by path. */
function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return SKIP.has(entry.name) ? [] : files(path)
    return TEXT.test(entry.name) ? [path] : []
  })
}

test('examples/: no line over 120 columns', () => {
  const long = files(join(root, 'examples')).flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .flatMap((line, i) => ([...line].length > 120 ? [`${relative(root, file)}:${i + 1} (${[...line].length})`] : [])),
  )
  assert.equal(long, [], `lines over 120 columns:\n${long.join('\n')}`)
})

test.run()
