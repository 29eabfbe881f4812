// The example fine-tune end to end, as a child process with tiny settings: it writes adapters that load back
// onto the base, validation loss falls, and bad input ends in one clear line and exit code 1.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, readFileSync, writeFileSync, existsSync, copyFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { nn } from '../src/node'
import { loadBase } from '../examples/lib/checkpoint'
import { base, example, generate, failsClearly, smallData as smallCopy } from './example-helpers'

const dir = mkdtempSync(join(tmpdir(), 'tenny-example-'))
const out = join(dir, 'out'),
  adapters = join(out, 'adapters.safetensors')
const smallData = (name: string, lines: { train: number; valid: number; test: number }) =>
  smallCopy(join(dir, name), lines)

test('a few steps of fine-tuning write adapters that load onto the base, and validation loss falls', () => {
  const data = smallData('data', { train: 16, valid: 4, test: 4 })
  const run = example(
    '--train',
    '--iters',
    '6',
    '--batch-size',
    '4',
    '--steps-per-eval',
    '3',
    '--lr',
    '1e-2',
    '--max-tokens',
    '8',
    '--data',
    data,
    '--adapter-path',
    out,
  )
  assert.is(run.status, 0, run.stderr)
  assert.match(run.stdout, /trainable params: [\d,]+ \|\| all params: [\d,]+ \|\| trainable%/)
  const help = example('--help')
  for (const line of [...run.stdout.split('\n'), ...help.stdout.split('\n')])
    assert.ok([...line].length < 100, `under 100 columns: ${line}`)
  for (const file of ['adapters.safetensors', 'adapter_config.json', 'loss.svg', 'run.json'])
    assert.ok(existsSync(join(out, file)), file)
  const log = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'))
  const valid: [number, number][] = log.valid
  assert.equal(
    valid.map(([step]) => step),
    [0, 3, 6],
  )
  assert.ok(valid[2][1] < valid[0][1], `validation loss ${valid[0][1]} → ${valid[2][1]}`)

  const { model } = loadBase(base)
  const { paths } = nn.loadAdapters(model, adapters)
  assert.is(paths.length, 6 * model.config.nLayer + 1) // q, k, v, out, fc, proj of every block, and the LM head
  assert.ok(
    nn.loraAdapters(model).some(([, l]) => l.loraB.data.some((x) => x !== 0)),
    'trained B is not all zeros',
  )
})

test('a non-numeric flag is one clear error with exit code 1', () => {
  failsClearly(example('--iters', 'lots'), /--iters must be an integer >= 1, got "lots"/)
})

test('a malformed jsonl line is reported as file:line', () => {
  const data = smallData('bad-data', { train: 3, valid: 2, test: 2 })
  writeFileSync(join(data, 'valid.jsonl'), '{"text": "Q: fine\\nA: yes"}\n{"text": oops}\n')
  failsClearly(
    example('--train', '--iters', '1', '--data', data, '--adapter-path', join(dir, 'bad')),
    /valid\.jsonl:2: not valid JSON/,
  )
})

test('a missing data dir, an unknown prompt character and an adapter from another base are clear errors', () => {
  failsClearly(example('--train', '--data', join(dir, 'nowhere')), /data directory .*nowhere does not exist/)
  failsClearly(
    generate('--prompt', 'Q: What is ∂ in tenny?'),
    /--prompt has the character "∂" \(U\+2202\) at position 11/,
  )
  const other = join(dir, 'other-base.safetensors') // same shapes, one weight changed: another base
  copyFileSync(base, other)
  const bytes = readFileSync(other)
  bytes[bytes.length - 1] ^= 0x40
  writeFileSync(other, bytes)
  failsClearly(
    generate('--prompt', 'Q: x', '--base', other, '--adapter-path', out),
    /was trained on another base model/,
  )
})

test('a missing or damaged base checkpoint is one clear error, with a hint that fits the file missing', () => {
  failsClearly(
    generate('--prompt', 'Q: x', '--base', join(dir, 'none.safetensors')),
    /base checkpoint .*none\.safetensors not found$/,
  )
  // the README's placeholder copied as it is, a run's fused model not written yet, a --full run's model
  const hints: [string, RegExp][] = [
    ['examples/out/<run>/fused.safetensors', /not found: replace <run> with a real folder, e.g. one in examples\/out$/],
    [join(dir, 'run', 'fused.safetensors'), /not found \(npm run fuse writes it into a run folder\)$/],
    [join(dir, 'run', 'full-model.safetensors'), /not found \(npm run example -- --train --full writes it/],
  ]
  for (const [file, hint] of hints) failsClearly(generate('--base', file, '--no-adapter'), hint)
  const broken = join(dir, 'broken.safetensors')
  writeFileSync(broken, readFileSync(base).subarray(0, 1000))
  failsClearly(generate('--prompt', 'Q: x', '--base', broken), /broken\.safetensors/)
})

test.after(() => rmSync(dir, { recursive: true, force: true }))

test.run()
