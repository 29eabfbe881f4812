// Every example command the README shows, run as written (the script through node, as `npm run example` runs it).
// Commands that train run with tiny settings on a few examples (their full-size results are the README's measured
// table). Commands that answer read test/example-default-run/: the run folder of a real default `npm run example`
// (its adapters.safetensors, adapter_config.json and run.json, copied as they were written), and each answer must
// be docstring text: the trained answer's first words, and no word the data never uses. The README's printed
// output must be that run's. After changing the defaults or the base, train once and copy the folder again.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { parseFlags, DEFAULT_PROMPT } from '../examples/lib/flags'
import { fileHash } from '../examples/lib/runs'
import { root, base, exampleEnv, smallData, type Run } from './example-helpers'

const reference = join(root, 'test', 'example-default-run')
const dir = mkdtempSync(join(tmpdir(), 'tenny-readme-'))
const readme = readFileSync(join(root, 'README.md'), 'utf8')
const data = ['train', 'valid', 'test'].flatMap((s) =>
  readFileSync(join(root, 'examples', 'data', `${s}.jsonl`), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l).text as string),
)

/** Every `npm run example …` and `npx tsx examples/….ts …` line in the README's bash blocks, comments cut off. */
function readmeCommands(): string[] {
  const lines = [...readme.matchAll(/```bash\n([\s\S]*?)```/g)].flatMap((m) => m[1].split('\n'))
  return lines
    .map((l) =>
      l
        .replace(/\s+#.*$/, '')
        .replace(/^npm install && /, '')
        .trim(),
    )
    .filter((l) => /^(npm run example\b|npx tsx examples\/)/.test(l))
}

/** A command line's words, "double-quoted" ones whole (the README's quotes hold no other quote). */
const words = (line: string) => [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2])

/** Run an example script with these arguments; runs without --adapter-path live in `out`. */
function run(script: string, args: string[], out: string): Run {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'examples', script), ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...exampleEnv(), TENNY_EXAMPLE_OUT: out },
  })
  assert.is(r.status, 0, `${script} ${args.join(' ')}: exit ${r.status}\n${r.stderr}\n${r.stdout.slice(-1500)}`)
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** The answer printed under `header` for `prompt`: the text after the prompt, up to the newline. */
function answerUnder(stdout: string, header: RegExp, prompt: string): string {
  const at = stdout.search(header)
  assert.ok(at >= 0, `${header} in:\n${stdout}`)
  const rest = stdout.slice(at)
  const start = rest.indexOf(prompt)
  assert.ok(start >= 0, `the prompt under ${header}`)
  return rest.slice(start + prompt.length).split('\n')[0]
}

const vocabulary = new Set(data.flatMap((t) => t.toLowerCase().match(/[a-z0-9]+/g) ?? []))

/** Docstring text, not character soup: every word is one the data uses, and it starts as the trained answer does. */
function sensible(answer: string, prompt: string): void {
  const trained = data.find((t) => t.startsWith(prompt))
  assert.ok(trained, `the README asks about a trained function: ${JSON.stringify(prompt)}`)
  const unknown = (answer.toLowerCase().match(/[a-z0-9]+/g) ?? []).filter((w) => !vocabulary.has(w))
  assert.equal(unknown, [], `words the data never uses in ${JSON.stringify(answer)}`)
  const first = (s: string) => s.split(' ').slice(0, 3).join(' ')
  assert.is(
    first(answer),
    first(trained!.slice(prompt.length)),
    `the answer starts as the trained one: ${JSON.stringify(answer)}`,
  )
}

test('test/example-default-run is a default run on the committed base', () => {
  const record = JSON.parse(readFileSync(join(reference, 'run.json'), 'utf8'))
  assert.is(record.base.sha256, fileHash(base), 'trained on examples/base/base.safetensors')
  const defaults = parseFlags([])
  assert.ok(defaults !== 'help')
  const t = record.training
  assert.equal(
    [
      t.iters,
      t.batchSize,
      t.lr,
      t.rank,
      t.alpha,
      t.targets,
      t.useDora,
      t.loraDropout,
      t.labelSmoothing,
      t.mask,
      t.stepsPerEval,
      t.patience,
      t.quantize,
      t.full,
      t.seed,
    ],
    [
      defaults.iters,
      defaults.batchSize,
      defaults.lr,
      defaults.rank,
      defaults.alpha,
      defaults.targets,
      false,
      defaults.loraDropout,
      defaults.smoothing,
      defaults.mask,
      defaults.stepsPerEval,
      null,
      null,
      false,
      defaults.seed,
    ],
  )
})

test("the README's output of `npm run example` is that run's: its kept step and its losses", () => {
  const record = JSON.parse(readFileSync(join(reference, 'run.json'), 'utf8'))
  const shown = /```text\n\$ npm install && npm run example\n([\s\S]*?)```/.exec(readme)
  assert.ok(shown, 'the README shows the output of npm run example')
  const out = shown![1]
  assert.match(
    out,
    new RegExp(
      `Kept the adapters of step ${record.training.keptStep}: validation loss ${record.kept.valid.toFixed(3)}, the lowest \\(step ${record.training.steps}: ${record.final.valid.toFixed(3)}\\)`,
    ),
  )
  for (const split of ['train', 'valid', 'test']) {
    const row = new RegExp(
      `^${split} loss\\s+${record.before[split].toFixed(3)}\\s+${record.final[split].toFixed(3)}\\s+${record.kept[split].toFixed(3)}\\s`,
      'm',
    )
    assert.match(out, row, `${split} loss row: base, end, kept`)
  }
  // and the answer it shows is what those adapters answer to the default prompt
  const shownAnswer = answerUnder(out, /\nAdapted model:\n/, DEFAULT_PROMPT)
  const r = run('lora-finetune.ts', ['--prompt', DEFAULT_PROMPT.replace('\n', '\\n'), '--adapter-path', reference], dir)
  assert.is(answerUnder(r.stdout, /\nAdapted model:\n/, DEFAULT_PROMPT), shownAnswer)
  sensible(shownAnswer, DEFAULT_PROMPT)
})

test('every README command that answers runs as written and answers with docstring text', () => {
  const out = join(dir, 'answers'),
    runName = '2026-01-01T00-00-00'
  mkdirSync(out, { recursive: true })
  cpSync(reference, join(out, runName), { recursive: true }) // the newest run, as after `npm run example`
  let checked = 0
  for (const line of readmeCommands()) {
    const args = words(line)
      .slice(line.startsWith('npm run example --') ? 4 : 3)
      .map((a) => a.replace('examples/out/<run>', join(out, runName)))
    if (line.startsWith('npx tsx examples/recall.ts')) {
      // the count the README states is this run's
      const m = /exactly right: (\d+)/.exec(run('recall.ts', args, out).stdout)
      assert.ok(m, 'recall.ts prints how many answers are exactly right')
      const trained = JSON.parse(readFileSync(join(reference, 'run.json'), 'utf8')).examples.train // the data may have grown since
      assert.ok(
        readme.includes(`${m![1]} of the ${trained} trained answers`),
        `the README says "${m![1]} of the ${trained} trained answers"`,
      )
      continue
    }
    const flags = parseFlags(args)
    if (flags === 'help' || flags.train) continue
    const r = run('lora-finetune.ts', args, out)
    if (flags.ask && !flags.noAdapter)
      sensible(answerUnder(r.stdout, /\nAdapted model( \(adapter strength [\d.]+\))?:\n/, flags.prompt), flags.prompt)
    if (flags.ask && flags.noAdapter)
      sensible(answerUnder(r.stdout, /\nBase model \(.*fused\.safetensors\):\n/, flags.prompt), flags.prompt)
    checked++
  }
  assert.ok(checked >= 4, `answering commands found in the README: ${checked}`)
})

test('every README command that trains runs with tiny settings and saves what it says', () => {
  const out = join(dir, 'trained'),
    small = smallData(join(dir, 'data'), { train: 6, valid: 3, test: 3 })
  mkdirSync(out, { recursive: true })
  const tiny = ['--iters', '3', '--batch-size', '2', '--steps-per-eval', '2', '--max-tokens', '10', '--data', small]
  let trained = 0
  for (const line of readmeCommands()) {
    if (!line.startsWith('npm run example')) continue
    const args = words(line)
      .slice(line.startsWith('npm run example --') ? 4 : 3)
      .map((a) => (a === 'my-data/' ? small : a))
    const flags = parseFlags(args)
    if (flags === 'help' || !flags.train) continue
    const before = new Set(readdirSync(out))
    const r = run('lora-finetune.ts', [...args, ...tiny], out)
    const folder = readdirSync(out).find((f) => !before.has(f))
    assert.ok(folder, `${line}: a new run folder`)
    const files = readdirSync(join(out, folder!))
    assert.ok(
      files.includes('run.json') && files.includes(flags.full ? 'full-model.safetensors' : 'adapters.safetensors'),
      `${line}: ${files}`,
    )
    if (flags.fuse) assert.ok(files.includes('fused.safetensors'), `${line}: fused.safetensors`)
    assert.match(r.stdout, /Kept the (adapters|weights) of step \d+/)
    trained++
  }
  assert.ok(trained >= 3, `training commands found in the README: ${trained}`)
})

test.after(() => rmSync(dir, { recursive: true, force: true }))

test.run()
