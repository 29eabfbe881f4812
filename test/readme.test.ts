// The README's code blocks must run exactly as written and print what their comments say.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync, writeFileSync, rmSync } from 'node:fs'
import { execFileSync } from 'node:child_process'

/** Run the ts block under README heading `heading`; return its printed lines and the `console.log(…) // expected` comments. */
function runBlock(heading: string, edit = (code: string) => code): { printed: string[]; expected: string[] } {
  const readme = readFileSync('README.md', 'utf8')
  const block = new RegExp(`## ${heading}[\\s\\S]*?\`\`\`ts\\n([\\s\\S]*?)\`\`\``).exec(readme)
  assert.ok(block, `README has a "${heading}" section with a ts block`)
  const code = edit(block![1])
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
  assert.is(printed[1], "LoRA 'default': rank 8, alpha 16, scale 2 (alpha/rank), strength 1, active: 4 layers")
  // loraReport: its header, then one row per adapted layer, in model order: path, adapter, rank(ΔW) ≤ r, ‖ΔW‖/‖W‖,
  // amplification, σ(ΔW). Twenty steps moved every B off zero, so each ΔW has rank 1..8 and a positive norm.
  const header = printed.indexOf('layer adapter rank(ΔW) ≤ r ‖ΔW‖/‖W‖ amplification singular values of ΔW')
  assert.ok(header > 0, printed.join('\n'))
  const rows = printed.slice(header + 1, header + 5).map((l) => /^(\S+) default (\d) ≤ 8 (\S+) (\S+) /.exec(l))
  assert.equal(
    rows.map((r) => r?.[1]),
    ['blocks.0.attn.qProj', 'blocks.0.attn.vProj', 'blocks.1.attn.qProj', 'blocks.1.attn.vProj'],
    'a row per adapted layer',
  )
  for (const r of rows) assert.ok(Number(r![2]) >= 1 && Number(r![3]) > 0 && Number(r![4]) > 0, r![0])
  assert.is(printed.length, header + 6, 'nothing else printed between the report and the last line')
})

test('README: the Hugging Face example runs as written on a Llama-layout folder and its loss falls', () => {
  // The README names the folder the hub's download writes; here a small random-weight one in the same layout.
  const fixture = (code: string) => {
    assert.ok(code.includes("nn.loadPretrained('SmolLM2-135M')"), 'the block loads the downloaded folder')
    return code.replace("'SmolLM2-135M'", "'test/fixtures/hf/llama-tied-f32'")
  }
  const { printed, expected } = runBlock('Your own Hugging Face model', fixture)
  assert.equal(printed, expected)
})

test.run()
