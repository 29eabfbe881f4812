// Build the fine-tune data from Tenny's own API docs, as the seed tutorial built MLX's from its docstrings:
// every exported function and class in src/, ops/ and nn/ with a JSDoc becomes one line
// {"text": "Q: What is relu in tenny?\nA: <its docstring>"}: 80% train, 20% test (seeded, by name). valid asks every
// trained function in other words ("Q: In tenny, what is relu?\nA: …"): the task is to store these answers, and
// loss on answers never taught measures only their form, so validation checks the answers beyond their wording.
// first-click/ holds the same three splits for fewer functions (80 trained, 32 held out): the playground's first
// Train click, which must end in the time a person waits, trains on those.
//   npx tsx examples/make-dataset.ts [--out examples/data] [--seed 0] [--max-line 80] [--test 20]
//     [--first-click-train 80] [--first-click-test 32]
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs'
import { join, dirname, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createHash } from 'node:crypto'
import { CharTokenizer, normalize } from './lib/tokenizer'
import { question, rephrased } from './lib/data'
import * as tenny from '../src/node' // the API as Node users see it: the universal entry plus files by path

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const { values: flags } = parseArgs({
  options: {
    out: { type: 'string', default: join(root, 'examples', 'data') },
    seed: { type: 'string', default: '0' },
    'max-line': { type: 'string', default: '80' },
    test: { type: 'string', default: '20' },
    'first-click-train': { type: 'string', default: '80' },
    'first-click-test': { type: 'string', default: '32' },
  },
})

// Public API only: src/kernels/ is reached through the table K, not by users, and repeats op names.
const SOURCES = ['ops', 'nn', 'src']
const SKIP_DIRS = new Set(['kernels'])
// Always trained, never held out: the four answers the example shows (relu: the seed tutorial's question, asked of
// tenny; matmul, softmax, gelu: the README's) and the tutorial's subject (LoRALinear).
const PINNED = ['relu', 'matmul', 'softmax', 'gelu', 'LoRALinear']
const FIRST_CLICK = { train: Number(flags['first-click-train']), test: Number(flags['first-click-test']) }
// Answers are the docstring's first sentence(s), each whole line (question + answer) at most 80 characters:
// short enough for the tiny base to memorise in a two-minute fine-tune, long enough to say what a function does.
const MAX_LINE = Number(flags['max-line'])

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((e) =>
      e.isDirectory()
        ? SKIP_DIRS.has(e.name)
          ? []
          : tsFiles(join(dir, e.name))
        : e.name.endsWith('.ts')
          ? [join(dir, e.name)]
          : [],
    )
}

/** The JSDoc right above line `i` as one line of text ('' if none): tags and the comment markers dropped. */
function docAbove(lines: string[], i: number): string {
  let end = i - 1
  while (end >= 0 && /^\s*\/\/|^\s*@/.test(lines[end])) end-- // a // comment or a decorator between doc and code
  if (end < 0 || !lines[end].trim().endsWith('*/')) return ''
  let start = end
  while (start >= 0 && !lines[start].includes('/**')) start--
  if (start < 0) return ''
  return lines
    .slice(start, end + 1)
    .map((l) =>
      l
        .replace(/^\s*\/\*\*/, '')
        .replace(/\*\/\s*$/, '')
        .replace(/^\s*\*/, '')
        .trim(),
    )
    .filter((l) => !l.startsWith('@'))
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim()
}

/** A docstring cut to `max` characters: at its last sentence end that fits, else at a word boundary with '...'. */
function shorten(text: string, max: number): string {
  if (text.length <= max) return text
  const cut = text.slice(0, max + 1)
  const end = Math.max(cut.lastIndexOf('. '), cut.lastIndexOf('; '))
  return end > max / 3 ? cut.slice(0, end) + '.' : cut.slice(0, cut.lastIndexOf(' ', max - 4)) + ' ...'
}

// What users can reach: the entry's exports and those of its nn, optim and linalg namespaces. Helpers that other
// files import (sumTo, broadcastShapes, …) have docstrings too, but are not Tenny's API.
const PUBLIC = new Set([tenny, tenny.nn, tenny.optim, tenny.linalg].flatMap((ns) => Object.keys(ns)))

const tokenizer = new CharTokenizer()
const docs = new Map<string, string>() // name → answer; the first definition wins (ops before nn before src)
const skipped: string[] = []
for (const file of SOURCES.flatMap((d) => tsFiles(join(root, d)))) {
  const lines = readFileSync(file, 'utf8').split('\n')
  for (const [i, line] of lines.entries()) {
    const m = /^export (?:default )?(?:abstract )?(?:async )?(?:function\*?|class) ([A-Za-z_$][\w$]*)/.exec(line)
    if (!m || docs.has(m[1]) || !PUBLIC.has(m[1])) continue
    const doc = shorten(normalize(docAbove(lines, i)).replace(/ {2,}/g, ' '), MAX_LINE - question(m[1]).length)
    if (!doc) continue
    const unknown = tokenizer.findUnknown(doc)
    if (unknown)
      skipped.push(`${relative(root, file)}:${i + 1} ${m[1]}: no ASCII spelling for ${JSON.stringify(unknown.char)}`)
    else docs.set(m[1], doc)
  }
}

// Each function's split is decided by a seeded hash u of its name in [0, 1), not by shuffling the list, so a rerun
// after more functions get docstrings only adds lines: no function ever moves between train and test. A fifth
// (u ≥ 0.8) is held out for test, never a PINNED one. first-click/ takes the first by u of each: the PINNED ones and
// the others up to FIRST_CLICK.train trained, FIRST_CLICK.test held out.
const u = (name: string) => createHash('sha256').update(`${flags.seed}:${name}`).digest().readUInt32BE(0) / 2 ** 32
const names = [...docs.keys()].sort((a, b) => u(a) - u(b))
const missing = PINNED.filter((n) => !docs.has(n))
if (missing.length) throw new Error(`make-dataset: the pinned functions ${missing.join(', ')} have no docstring`)
const held = (name: string) => !PINNED.includes(name) && u(name) >= 1 - Number(flags.test) / 100
const others = names.filter((n) => !held(n) && !PINNED.includes(n))
const splitsOf = (trained: string[], tested: string[]): Record<string, string[]> => ({
  train: trained.map((n) => question(n) + docs.get(n)!),
  valid: trained.map((n) => rephrased(n) + docs.get(n)!),
  test: tested.map((n) => question(n) + docs.get(n)!),
})
const folders: [string, Record<string, string[]>][] = [
  [flags.out, splitsOf([...PINNED, ...others].sort(), names.filter(held).sort())],
  [
    join(flags.out, 'first-click'),
    splitsOf(
      [...PINNED, ...others.slice(0, FIRST_CLICK.train - PINNED.length)].sort(),
      names.filter(held).slice(0, FIRST_CLICK.test).sort(),
    ),
  ],
]

for (const [folder, splits] of folders) {
  mkdirSync(folder, { recursive: true })
  for (const [split, texts] of Object.entries(splits)) {
    writeFileSync(join(folder, `${split}.jsonl`), texts.map((text) => JSON.stringify({ text })).join('\n') + '\n')
    console.log(`${split}: ${texts.length} questions → ${relative(process.cwd(), join(folder, `${split}.jsonl`))}`)
  }
}
for (const s of skipped) console.log(`skipped ${s}`)
