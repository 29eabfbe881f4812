// The README's code blocks must run exactly as written and print what their comments say.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync, writeFileSync, rmSync } from 'node:fs'
import { execFileSync } from 'node:child_process'

/** Run the ts block under README heading `heading`; return its printed lines and the `console.log(…) // expected` comments. */
function runBlock(heading: string): { printed: string[]; expected: string[] } {
  const readme = readFileSync('README.md', 'utf8')
  const block = new RegExp(`## ${heading}[\\s\\S]*?\`\`\`ts\\n([\\s\\S]*?)\`\`\``).exec(readme)
  assert.ok(block, `README has a "${heading}" section with a ts block`)
  const code = block![1]
  const expected = [...code.matchAll(/^console\.log\(.*\)\s*\/\/ (.*)$/gm)].map((m) => m[1].replace(/\s+/g, ' ').trim())
  assert.ok(expected.length >= 1, `the "${heading}" block prints and states its results`)
  const file = 'test/.readme-example.ts' // inside the package, so `from 'tenny'` resolves to this checkout's sources (tenny-source)
  writeFileSync(file, code)
  try {
    const out = execFileSync(process.execPath, ['--conditions=tenny-source', '--import', 'tsx', file], {
      encoding: 'utf8',
      env: { ...process.env, FORCE_COLOR: undefined, NO_COLOR: '1' },
    })
    return {
      printed: out
        .trim()
        .split('\n')
        .map((l) => l.replace(/\s+/g, ' ').trim()),
      expected,
    }
  } finally {
    rmSync(file, { force: true })
  }
}

test('README: the autograd example runs as written and prints exactly what its comments claim', () => {
  const { printed, expected } = runBlock('Autograd in ten lines')
  assert.equal(printed, expected)
})

test('README: the LoRA example runs as written; its last line and its parameter count are as stated', () => {
  const { printed, expected } = runBlock('LoRA in a few lines')
  assert.is(printed[printed.length - 1], expected[expected.length - 1])
  assert.ok(printed[0].startsWith('trainable params: 4,096 || all params: '), printed[0]) // r·(in + out) · 2 targets · 2 layers
  assert.ok(
    printed.some((l) => l.startsWith('transformer.blocks.0.attn.qProj') || /qProj/.test(l)),
    'loraReport printed a row per layer',
  )
})

test.run()
