// The folder map of the README's tour, enforced: each library folder imports only the folders listed for it, so a
// learner can read src/ without nn/, and nn/'s modules without a file format. The entries re-export everything.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'

const root = join(import.meta.dirname, '..')
const ENTRIES = new Set(['src/index.ts', 'src/node.ts', 'nn/index.ts', 'nn/index-node.ts'])
const MAY_IMPORT: Record<string, string[]> = {
  src: ['src', 'src/kernels'],
  'src/kernels': ['src'],
  'src/backends': ['src', 'src/kernels'],
  'src/formats': ['src', 'src/kernels'],
  ops: ['src', 'src/kernels'],
  nn: ['src', 'ops'],
  'nn/files': ['src', 'ops', 'nn', 'src/formats'],
}

/** The folder of the map a path belongs to: src/backends/wasm/emit.ts → src/backends. */
function folder(path: string): string {
  const parts = path.split('/')
  return parts.length > 2 && (parts[0] === 'src' || parts[0] === 'nn') ? `${parts[0]}/${parts[1]}` : parts[0]
}

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`
    if (entry.isDirectory()) return sources(path)
    return path.endsWith('.ts') ? [path] : []
  })
}

test('src/, ops/ and nn/ import only the folders the README lists for them', () => {
  const wrong: string[] = []
  for (const file of ['src', 'ops', 'nn'].flatMap(sources)) {
    if (ENTRIES.has(file)) continue
    for (const [, spec] of readFileSync(join(root, file), 'utf8').matchAll(/(?:from|import\()\s*'(\.[^']+)'/g)) {
      const target = relative(root, normalize(join(root, dirname(file), spec)))
      const from = folder(file)
      const to = folder(target)
      if (to !== from && !MAY_IMPORT[from].includes(to)) wrong.push(`${file} imports ${target} (${from} -> ${to})`)
    }
  }
  assert.equal(wrong, [], wrong.join('\n'))
})

test('the check sees a wrong import: an nn module reaching a file format', () => {
  assert.not.ok(MAY_IMPORT.nn.includes('src/formats'))
  assert.ok(sources('nn').includes('nn/lora.ts'), 'walks nn/')
  assert.is(folder('src/backends/wasm/emit.ts'), 'src/backends')
  assert.is(folder('nn/files/peft.ts'), 'nn/files')
})

test.run()
