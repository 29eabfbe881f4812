// The example's training runs as child processes on a few examples: the best-validation adapters are kept (and
// --patience stops early), every run writes a folder of its own and the answering runs read the newest, a loss
// that turns NaN stops with one line and writes nothing, and the CLI's edge cases are one clear error each.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  example,
  exampleWith,
  exampleEnv,
  failsClearly,
  smallData,
  root,
  script,
  runScript,
  type Run,
} from './example-helpers'
import { saveRun } from '../examples/lib/runs'

const dir = mkdtempSync(join(tmpdir(), 'tenny-runs-'))
const data = smallData(join(dir, 'data'), { train: 16, valid: 4, test: 4 })
// validation on functions never trained (the first 4 of test.jsonl), whose loss rises as the 16 are memorised
writeFileSync(join(data, 'valid.jsonl'), readFileSync(join(data, 'test.jsonl')))
/** 60 steps at a high learning rate: validation loss bottoms early and then rises as the 16 examples are memorised. */
const overfit = [
  '--train',
  '--iters',
  '60',
  '--batch-size',
  '4',
  '--steps-per-eval',
  '5',
  '--lr',
  '2e-2',
  '--max-tokens',
  '5',
  '--data',
  data,
]
const tiny = ['--train', '--iters', '3', '--batch-size', '2', '--max-tokens', '5', '--data', data]

function succeeds(run: Run): void {
  assert.is(run.status, 0, `exit code ${run.status}\nstderr: ${run.stderr}\nstdout tail: ${run.stdout.slice(-2000)}`)
}

const record = (folder: string) => JSON.parse(readFileSync(join(folder, 'run.json'), 'utf8'))
/** sha256 of every file in a folder, by name: equal maps mean nothing there was rewritten. */
const digest = (folder: string) =>
  Object.fromEntries(
    readdirSync(folder)
      .sort()
      .map((f) => [
        f,
        createHash('sha256')
          .update(readFileSync(join(folder, f)))
          .digest('hex'),
      ]),
  )
/** The number in the row `name` of the loss table, in column `col` (0 = base). */
const tableValue = (stdout: string, name: string, col: number) =>
  Number(new RegExp(`^${name}\\s+(.*)$`, 'm').exec(stdout)![1].trim().split(/\s+/)[col])

test('the adapters kept are those of the lowest validation loss, not the last step; the summary shows both', () => {
  const folder = join(dir, 'best')
  const run = example(...overfit, '--adapter-path', folder)
  succeeds(run)
  const { valid, training, kept, final } = record(folder)
  const [bestStep, bestLoss] = valid.reduce((a: [number, number], b: [number, number]) => (b[1] < a[1] ? b : a))
  assert.ok(
    bestStep > 0 && bestStep < 60,
    `validation loss bottoms inside the run, at step ${bestStep}: ${JSON.stringify(valid)}`,
  )
  assert.ok(valid[valid.length - 1][1] > bestLoss + 0.05, 'and is clearly higher at the end')
  assert.is(training.keptStep, bestStep)
  assert.is(kept.valid, bestLoss)
  assert.ok(final.train < kept.train, 'training went on past the kept step')
  assert.match(
    run.stdout,
    new RegExp(
      `Kept the adapters of step ${bestStep}: validation loss ${bestLoss.toFixed(3)}, the lowest \\(step 60: `,
    ),
  )
  assert.match(run.stdout, new RegExp(`^\\s+base\\s+end: 60\\s+kept: ${bestStep}\\s+change$`, 'm'))
  assert.is(tableValue(run.stdout, 'valid loss', 1), Number(final.valid.toFixed(3)))
  assert.is(tableValue(run.stdout, 'valid loss', 2), Number(bestLoss.toFixed(3)))
  // the saved file holds the kept step's adapters: measured again from the file, its validation loss is the best one
  const again = example('--test', '--data', data, '--adapter-path', folder)
  succeeds(again)
  assert.is(tableValue(again.stdout, 'valid loss', 1), Number(bestLoss.toFixed(3)))
})

test('--patience N stops after N evaluations without a new best', () => {
  const folder = join(dir, 'patience')
  const run = example(...overfit, '--patience', '2', '--adapter-path', folder)
  succeeds(run)
  const { valid, training } = record(folder)
  assert.ok(training.steps < 60, `stopped at step ${training.steps}`)
  assert.match(run.stdout, new RegExp(`Stopped early \\(--patience 2\\) after ${training.steps} steps`))
  const after = valid.filter(([step]: [number, number]) => step > training.keptStep)
  assert.is(after.length, 2, `evaluations after the kept step ${training.keptStep}: ${JSON.stringify(valid)}`)
  assert.ok(after.every(([, loss]: [number, number]) => loss >= record(folder).kept.valid))
})

test('each training run writes its own folder; answering runs read the newest; nothing overwrites another run', () => {
  const out = mkdtempSync(join(dir, 'out-'))
  const env = { TENNY_EXAMPLE_OUT: out }
  const first = exampleWith(env, ...tiny)
  succeeds(first)
  const [firstFolder] = readdirSync(out)
  assert.match(firstFolder, /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d(-\d+)?$/) // a date-time, so folders sort by age
  assert.match(first.stdout, new RegExp(`Run folder: \\S*${firstFolder} `))
  const before = digest(join(out, firstFolder))

  const qlora = exampleWith(env, ...tiny, '--quantize', '4')
  succeeds(qlora)
  succeeds(runScript('fuse', ['--data', data], { env })) // fuses the newest run: the QLoRA one
  const folders = readdirSync(out).sort()
  assert.is(folders.length, 2, `two run folders: ${folders}`)
  assert.equal(digest(join(out, firstFolder)), before, 'the first run is untouched by the --quantize --fuse run')
  const second = folders.find((f) => f !== firstFolder)!
  assert.ok(readdirSync(join(out, second)).includes('fused.safetensors'))

  const ask = runScript('generate', ['--prompt', 'Q: What is relu in tenny?\\nA: ', '--max-tokens', '5'], { env })
  succeeds(ask)
  assert.match(ask.stdout, new RegExp(`Adapters: \\S*${second} \\(the newest run; --adapter-path DIR picks another\\)`))
  assert.match(ask.stdout, /Quantized \d+ Linear layers to 4 bits/) // answered on the base its adapters were trained on

  // a folder that holds a run is refused before any training, and left as it was
  failsClearly(
    example(...tiny, '--adapter-path', join(out, firstFolder)),
    /--adapter-path \S+ already holds another run \(adapters\.safetensors, adapter_config\.json, run\.json\)/,
  )
  assert.equal(digest(join(out, firstFolder)), before)
  failsClearly(
    runScript('generate', ['--prompt', 'Q: x'], { env: { TENNY_EXAMPLE_OUT: join(dir, 'empty') } }),
    /no trained adapters in \S+ yet: run `npm run example` first, or give --adapter-path DIR/,
  )
})

test('two runs saving into one folder (started in the same second, or given the same --adapter-path): the later one takes <folder>-2, nothing is overwritten', () => {
  const base = join(dir, 'claimed'),
    basePath = join(dir, 'base.bin')
  writeFileSync(basePath, 'a base')
  const rec = (seed: number) => ({ training: { seed } })
  const quiet = () => {}
  assert.is(saveRun(base, basePath, rec(1), {}, quiet), base)
  assert.is(saveRun(base, basePath, rec(2), {}, quiet), `${base}-2`, 'run.json is claimed, not replaced')
  assert.is(record(base).training.seed, 1)
  assert.is(record(`${base}-2`).training.seed, 2)
  const leftovers = join(dir, 'leftovers') // adapters of a run killed before its run.json: still another run's folder
  mkdirSync(leftovers)
  writeFileSync(join(leftovers, 'adapters.safetensors'), 'x')
  assert.is(saveRun(leftovers, basePath, rec(3), {}, quiet), `${leftovers}-2`)
  assert.equal(readdirSync(leftovers), ['adapters.safetensors'])
  // two processes given one folder: whichever saves second saves beside it, and says so
  const folder = join(dir, 'shared')
  const runs = [1, 2].map((seed) =>
    spawn(process.execPath, ['--import', 'tsx', script, ...tiny, '--seed', String(seed), '--adapter-path', folder], {
      cwd: root,
      env: exampleEnv(),
    }),
  )
  const outputs = runs.map(
    (child) =>
      new Promise<string>((done) => {
        let out = ''
        child.stdout.on('data', (d) => {
          out += d
        })
        child.stderr.on('data', (d) => {
          out += d
        })
        child.on('close', (code) => done(`${out}\nexit ${code}`))
      }),
  )
  return Promise.all(outputs).then((logs) => {
    const refused = logs.filter((l) => /already holds another run/.test(l)) // the later one may start after the first saved
    assert.ok(
      logs.every((l) => /exit 0$/.test(l) || /already holds another run/.test(l)),
      logs.join('\n----\n'),
    )
    const seeds = [folder, `${folder}-2`]
      .filter((f) => existsSync(join(f, 'run.json')))
      .map((f) => record(f).training.seed)
      .sort()
    assert.equal(seeds, refused.length ? [seeds[0]] : [1, 2], `each run in its own folder: ${logs.join('\n----\n')}`)
    if (!refused.length) assert.ok(logs.some((l) => l.includes(`was taken by another run meanwhile: saving into`)))
    for (const f of [folder, `${folder}-2`].filter((f) => existsSync(f)))
      assert.ok(existsSync(join(f, 'adapters.safetensors')), f)
  })
})

test('a loss that turns NaN stops training in one line naming the step and what to try; nothing is written', () => {
  const out = mkdtempSync(join(dir, 'nan-'))
  const env = { TENNY_EXAMPLE_OUT: out }
  succeeds(exampleWith(env, ...tiny))
  const [earlier] = readdirSync(out)
  const before = digest(join(out, earlier))
  const lr = exampleWith(env, ...tiny, '--iters', '20', '--lr', '1e9')
  failsClearly(
    lr,
    /^error: step \d+: the training loss is NaN, so training diverged and nothing was saved; try a lower --lr \(now 1e\+9\) or --alpha \(now 64\)$/,
  )
  const alpha = exampleWith(env, ...tiny, '--iters', '20', '--alpha', '1e30')
  failsClearly(alpha, /^error: step \d+: the (training|validation) loss is (NaN|Infinity), .*--alpha \(now 1e\+30\)$/)
  assert.equal(readdirSync(out), [earlier], 'no folder for the runs that diverged')
  assert.equal(digest(join(out, earlier)), before, 'the earlier run is untouched')
})

test('CLI edge cases are one clear error each: a huge batch, an empty prompt, a resumed run given another rank, TENNY_BACKEND=bogus', () => {
  failsClearly(
    example(...tiny, '--batch-size', '200000', '--adapter-path', join(dir, 'huge')),
    /--batch-size 200000 is more than the 16 training examples in \S+/,
  )
  failsClearly(example('--prompt', ''), /--prompt is empty: give the text to continue/)
  failsClearly(example('--adapter-file', 'x.safetensors'), /--adapter-file is now --adapter-path DIR/)
  const help = exampleWith({ TENNY_BACKEND: 'bogus' }, '--help') // the backend is chosen at the first product, not at import
  assert.is(help.status, 0, help.stderr)
  assert.match(help.stdout, /^npm run example -- \[options\]/)
  failsClearly(
    runScript('generate', ['--prompt', 'Q: x', '--no-adapter'], { env: { TENNY_BACKEND: 'bogus' } }),
    /TENNY_BACKEND=bogus: not a backend \(expected one of cpu, /,
  )
  const from = join(dir, 'rank32')
  succeeds(example(...tiny, '--adapter-path', from))
  const file = join(from, 'adapters.safetensors')
  failsClearly(
    example(...tiny, '--resume-adapter-file', file, '--rank', '8', '--adapter-path', join(dir, 'r8')),
    /--rank 8 differs from \S+rank32\/adapters\.safetensors, which has rank 32: drop --rank to resume with the file's/,
  )
  failsClearly(
    example(...tiny, '--resume-adapter-file', file, '--alpha', '16', '--adapter-path', join(dir, 'a16')),
    /--alpha 16 gives scale 0\.5, but \S+ has scale 2/,
  )
  const resumed = join(dir, 'resumed')
  succeeds(example(...tiny, '--resume-adapter-file', file, '--adapter-path', resumed))
  assert.is(record(resumed).training.rank, 32, 'the run records the rank it trained')
  // an example longer than the context is cut to it (as mlx-lm does), and the run says so rather than train on half of it
  const long = smallData(join(dir, 'long'), { train: 4, valid: 2, test: 2 })
  writeFileSync(
    join(long, 'train.jsonl'),
    readFileSync(join(long, 'train.jsonl'), 'utf8') + JSON.stringify({ text: `Q: ${'x'.repeat(200)}?\nA: y` }) + '\n',
  )
  const cut = example(
    '--train',
    '--iters',
    '2',
    '--batch-size',
    '2',
    '--max-tokens',
    '5',
    '--data',
    long,
    '--adapter-path',
    join(dir, 'cut'),
  )
  succeeds(cut)
  assert.match(
    cut.stdout,
    /Note: 1 example\(s\) \(first: \S+train\.jsonl:5\) longer than the model's 128-character context: only the first 129 characters of each are used/,
  )
  // --lora-dropout applies to a resumed run (it was ignored while run.json recorded it); without it, the file's
  const dropped = join(dir, 'dropout')
  succeeds(example(...tiny, '--resume-adapter-file', file, '--lora-dropout', '0.5', '--adapter-path', dropped))
  assert.is(record(dropped).training.loraDropout, 0.5)
  assert.is(
    JSON.parse(readFileSync(join(dropped, 'adapter_config.json'), 'utf8')).dropout,
    0.5,
    'the adapters trained with the dropout the run records',
  )
  const again = join(dir, 'again')
  succeeds(example(...tiny, '--resume-adapter-file', join(dropped, 'adapters.safetensors'), '--adapter-path', again))
  assert.is(
    record(again).training.loraDropout,
    0.5,
    "a resumed run without --lora-dropout keeps, and records, the file's",
  )
})

test.after(() => rmSync(dir, { recursive: true, force: true }))

test.run()
