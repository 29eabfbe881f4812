// Every example command examples/README.md shows, run as written (each script through node, as `npm run` runs it),
// block by block in the order shown. Commands that train run with tiny settings on a few examples (their
// full-size results are the README's measured table). Each block starts from test/example-default-run/: the run
// folder of a real default `npm run example` (its adapters.safetensors, adapter_config.json and run.json, copied as
// they were written), and each answer given with it must be docstring text: the trained answer's first words, and
// no word the data never uses. The README's printed output must be that run's. After changing the defaults or the
// base, train once and copy the folder again.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { exampleFlags, parseFlags, DEFAULT_PROMPT } from '../examples/lib/flags'
import { fileHash } from '../examples/lib/runs'
import { root, base, runScript, smallData, type Run } from './example-helpers'

const reference = join(root, 'test', 'example-default-run')
const dir = mkdtempSync(join(tmpdir(), 'tenny-readme-'))
const readme = readFileSync(join(root, 'examples', 'README.md'), 'utf8')
const data = ['train', 'valid', 'test'].flatMap((s) =>
  readFileSync(join(root, 'examples', 'data', `${s}.jsonl`), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l).text as string),
)

/** The example commands of each bash block of the README, comments cut off. */
function readmeBlocks(): string[][] {
  return [...readme.matchAll(/```bash\n([\s\S]*?)```/g)]
    .map((m) => m[1].split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()))
    .map((lines) => lines.filter((l) => /^(npm run (example|generate|fuse)\b|npx tsx examples\/)/.test(l)))
    .filter((lines) => lines.length > 0)
}

/** A command line's words, "double-quoted" ones whole (the README's quotes hold no other quote). */
const words = (line: string) => [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2])

/** The script a command line runs and its arguments: `npm run generate -- --prompt …` → ['generate', […]]. */
function command(line: string): ['example' | 'generate' | 'fuse' | 'recall', string[]] {
  const w = words(line)
  if (w[0] === 'npx') return ['recall', w.slice(3)]
  return [w[2] as 'example' | 'generate' | 'fuse', w.slice(w[3] === '--' ? 4 : 3)]
}

/** Run an example script with these arguments; runs without --adapter-path live in `out`. */
function run(script: 'example' | 'generate' | 'fuse' | 'recall', args: string[], out: string): Run {
  const r = runScript(script, args, { env: { TENNY_EXAMPLE_OUT: out } })
  assert.is(r.status, 0, `${script} ${args.join(' ')}: exit ${r.status}\n${r.stderr}\n${r.stdout.slice(-1500)}`)
  return r
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
  const defaults = exampleFlags([])
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
      defaults.labelSmoothing,
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
  const { keptStep, steps } = record.training
  const kept = `validation loss ${record.kept.valid.toFixed(3)}, the lowest \\(step ${steps}: ${record.final.valid.toFixed(3)}\\)`
  assert.match(out, new RegExp(`Kept the adapters of step ${keptStep}: ${kept}`))
  for (const split of ['train', 'valid', 'test']) {
    const losses = [record.before, record.final, record.kept].map((l) => l[split].toFixed(3)).join('\\s+')
    assert.match(out, new RegExp(`^${split} loss\\s+${losses}\\s`, 'm'), `${split} loss row: base, end, kept`)
  }
  // and the answer it shows is what those adapters answer to the default prompt
  const shownAnswer = answerUnder(out, /\nAdapted model:\n/, DEFAULT_PROMPT)
  const r = run('generate', ['--adapter-path', reference], dir)
  assert.is(answerUnder(r.stdout, /\nAdapted model:\n/, DEFAULT_PROMPT), shownAnswer)
  sensible(shownAnswer, DEFAULT_PROMPT)
})

test('every README command runs as written, block by block: answers are docstring text, trained runs are saved', () => {
  const small = smallData(join(dir, 'data'), { train: 6, valid: 3, test: 3 })
  const chat = chatData(join(dir, 'chat'))
  const tinyFlags = ['--iters', '3', '--batch-size', '2', '--steps-per-eval', '2', '--max-tokens', '10', '--data']
  const tiny = [...tinyFlags, small]
  const runName = '2026-01-01T00-00-00'
  const checked = { answers: 0, trained: 0, fused: 0 }
  for (const [b, lines] of readmeBlocks().entries()) {
    const out = join(dir, `block-${b}`)
    mkdirSync(out, { recursive: true })
    cpSync(reference, join(out, runName), { recursive: true }) // the newest run, as after `npm run example`
    let trainedHere = false // answers are checked only from the reference run's adapters
    for (const line of lines) {
      const [script, given] = command(line)
      // the README's Hugging Face folder is the random-weight Llama fixture here, its chat data three small files
      const args = given.map((a) =>
        a === 'my-data/'
          ? small
          : a === 'chats/'
            ? chat
            : a === HF_MODEL
              ? LLAMA
              : a.startsWith('adapters/')
                ? join(out, a.slice('adapters/'.length))
                : a.replace('examples/out/<run>', newest(out)),
      )
      const hf = args.includes('--model')
      if (script === 'recall') {
        const m = /exactly right: (\d+)/.exec(run('recall', args, out).stdout)
        assert.ok(m, 'recall.ts prints how many answers are exactly right')
        const trained = JSON.parse(readFileSync(join(reference, 'run.json'), 'utf8')).examples.train
        const claim = `${m![1]} of the ${trained} trained answers`
        assert.ok(readme.includes(claim), `the README says "${claim}" (the count of this run)`)
      } else if (script === 'fuse') {
        run('fuse', args, out)
        const fused = hf ? join('fused_model', 'model.safetensors') : 'fused.safetensors'
        assert.ok(existsSync(join(newest(out), fused)), `${line}: ${fused} in the newest run`)
        checked.fused++
      } else if (script === 'generate') {
        const flags = parseFlags('generate', args)
        assert.ok(flags !== 'help')
        const r = run('generate', args, out)
        const header = flags.noAdapter
          ? /\nBase model \(.*fused(\.safetensors|_model)\):\n/
          : /\nAdapted model( \(.*\))?:\n/
        if (hf) assert.match(r.stdout, header)
        if (!trainedHere) sensible(answerUnder(r.stdout, header, flags.prompt), flags.prompt)
        checked.answers++
      } else {
        const flags = exampleFlags(args)
        assert.ok(flags !== 'help')
        if (!flags.train) {
          assert.match(run('example', args, out).stdout, /^test loss\s/m, `${line}: the test loss`)
          continue
        }
        const before = new Set(readdirSync(out))
        const r = run('example', [...args, ...(hf ? [...tinyFlags, chat] : tiny)], out)
        const folder = readdirSync(out).find((f) => !before.has(f))
        assert.ok(folder, `${line}: a new run folder`)
        const files = readdirSync(join(out, folder!))
        const weights = flags.full ? 'full-model.safetensors' : 'adapters.safetensors'
        assert.ok(
          files.includes('run.json') && files.includes(weights) && files.includes('loss.svg'),
          `${line}: ${files}`,
        )
        assert.match(r.stdout, /Kept the (adapters|weights) of step \d+/)
        trainedHere = true
        checked.trained++
      }
    }
  }
  assert.ok(checked.answers >= 4, `answering commands found in the README: ${checked.answers}`)
  assert.ok(checked.trained >= 4, `training commands found in the README: ${checked.trained}`)
  assert.ok(checked.fused >= 2, `fuse commands found in the README: ${checked.fused}`)
})

/** The Hugging Face folder the README's commands name, and the fixture that stands for it here. */
const HF_MODEL = 'models/smollm2'
const LLAMA = join(root, 'test', 'fixtures', 'example-hf', 'llama')

/** Three small splits of chat lines, as mlx-lm reads them: what the README's chats/ stands for. */
function chatData(folder: string): string {
  mkdirSync(folder, { recursive: true })
  const turn = (i: number) => ({
    messages: [
      { role: 'user', content: `What is ${i} + ${i}?` },
      { role: 'assistant', content: `${i} + ${i} is ${2 * i}.` },
    ],
  })
  for (const [split, n] of [
    ['train', 6],
    ['valid', 3],
    ['test', 3],
  ] as const)
    writeFileSync(
      join(folder, `${split}.jsonl`),
      Array.from({ length: n }, (_, i) => JSON.stringify(turn(i))).join('\n'),
    )
  return folder
}

/** The run folder in `out` whose adapters were saved last (as the scripts pick it). */
function newest(out: string): string {
  const runs = readdirSync(out)
    .map((d) => join(out, d))
    .filter((d) => existsSync(join(d, 'adapters.safetensors')))
  const saved = (d: string) => statSync(join(d, 'adapters.safetensors')).mtimeMs
  return runs.reduce((a, b) => (saved(b) > saved(a) ? b : a))
}

test.after(() => rmSync(dir, { recursive: true, force: true }))

test.run()
