// `npm run loc`: code lines (not blank, not comment-only) per file and per folder, with tokens and tokens per line
// beside them as tinygrad's sz.py reports (a count that long lines cannot game), and the style guide's budgets,
// enforced as sz.py does: it exits 1, naming the offenders, when the engine proper, the library (src + ops + nn,
// src/backends/ counted apart), a library file or a function is over its budget. It also counts the lines over 120
// columns in src/ ops/ nn/ examples/ (--width lists them; --width-check exits 1 when there are any).
// Budgets, re-based 2026-12-08 on the formatted tree (Prettier, 120 columns, no line wider: --width-check in npm
// test), where long throws became fail(op, ...) calls: the old 1,500 / 4,000 counted 284-column lines as one. The
// engine proper (2,134 lines at 11.1 tokens a line) holds the core, the CPU kernels and every op, rmsNorm, rotary
// and swiglu for the Hugging Face models included: 2,250 leaves room for an op or two, not a subsystem. The library
// (7,175 lines) is the engine plus nn/ (modules, GPT-2 and Llama, LoRA, DoRA, PiSSA, quantization) and nn/files/
// (adapters, PEFT and mlx-lm layouts, checkpoints, Hugging Face folders, tokenizers): 7,400. A file stays under 300
// lines (the largest is under it), and a function under 65: one a learner reads on a screen; the longest are
// generators that emit a wasm kernel's instructions one group to a line (softmaxScores, 64).
//   npx tsx bench/loc.ts [--engine N] [--library N] [--file N] [--fn N]   (other budgets: to try them)
//                        [--width] [--width-check] [--root DIR]            (another tree, e.g. a test's)
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { parseArgs } from 'node:util'
// TypeScript's own scanner (the typescript devDependency; its JavaScript API is still marked unstable in 7.0)
import { createScanner } from 'typescript/unstable/ast/scanner'
import { SyntaxKind } from 'typescript/unstable/ast'

const { values: flags } = parseArgs({
  options: {
    engine: { type: 'string', default: '2250' },
    library: { type: 'string', default: '7400' },
    file: { type: 'string', default: '300' },
    fn: { type: 'string', default: '65' },
    width: { type: 'boolean', default: false },
    'width-check': { type: 'boolean', default: false },
    root: { type: 'string', default: '.' },
  },
})
const BUDGET = {
  engine: Number(flags.engine),
  library: Number(flags.library),
  file: Number(flags.file),
  fn: Number(flags.fn),
}
const FOLDERS = ['src', 'ops', 'nn', 'examples', 'bench', 'test']
const WIDTH = 120 // columns, as Prettier keeps them (.prettierrc.json); strings and comments it cannot break
const WIDE_FOLDERS = /^(src|ops|nn|examples)\//
const BACKENDS = 'src/backends/'
// What src/ + ops/ hold besides the engine proper (tensor, autograd, CPU kernels, ops): counted in the library only.
const NOT_ENGINE: [string, RegExp][] = [
  ['entries (re-exports only)', /^(src\/(index|node)|ops\/index)\.ts$/],
  ['file formats (safetensors, npy/npz, files)', /^src\/formats\//],
  ['linear algebra', /^ops\/linalg\.ts$/],
  ['quantization kernels and op', /^(src\/kernels|ops)\/quant\.ts$/],
]

/** Each line's kind: 'code', or null for blank and comment-only lines. */
function codeMask(text: string): boolean[] {
  let inBlock = false
  return text.split('\n').map((raw) => {
    const line = raw.trim()
    if (inBlock) {
      if (line.includes('*/')) inBlock = false
      return false
    }
    if (line === '' || line.startsWith('//')) return false
    if (line.startsWith('/*')) {
      inBlock = !line.includes('*/')
      return false
    }
    return true
  })
}

const codeLines = (text: string): number => codeMask(text).filter(Boolean).length

// Tokens whose end leaves an operand behind: a `/` after one divides, anywhere else it starts a regular expression.
const OPERAND_ENDS = new Set([
  SyntaxKind.Identifier,
  SyntaxKind.NumericLiteral,
  SyntaxKind.BigIntLiteral,
  SyntaxKind.StringLiteral,
  SyntaxKind.NoSubstitutionTemplateLiteral,
  SyntaxKind.TemplateTail,
  SyntaxKind.RegularExpressionLiteral,
  SyntaxKind.CloseParenToken,
  SyntaxKind.CloseBracketToken,
  SyntaxKind.CloseBraceToken,
  SyntaxKind.ThisKeyword,
  SyntaxKind.PlusPlusToken,
  SyntaxKind.MinusMinusToken,
])

/**
 * Tokens of a file as TypeScript's scanner splits it, comments and whitespace skipped. The scanner alone cannot
 * tell a regular expression from a division or where a template literal's `${…}` ends: the parser rescans those,
 * and so does this loop (a `}` closing a template's hole continues the template).
 */
function tokenCount(text: string): number {
  const scanner = createScanner(true, 0, text)
  const holes: number[] = [] // brace depth at each open template hole
  let depth = 0,
    previous = SyntaxKind.Unknown,
    count = 0
  for (let kind = scanner.scan(); kind !== SyntaxKind.EndOfFile; kind = scanner.scan()) {
    if ((kind === SyntaxKind.SlashToken || kind === SyntaxKind.SlashEqualsToken) && !OPERAND_ENDS.has(previous))
      kind = scanner.reScanSlashToken()
    if (kind === SyntaxKind.CloseBraceToken && holes.at(-1) === depth) {
      kind = scanner.reScanTemplateToken(false) // TemplateMiddle, or TemplateTail closing the template
      if (kind === SyntaxKind.TemplateTail) holes.pop()
    } else if (kind === SyntaxKind.CloseBraceToken) depth--
    if (kind === SyntaxKind.OpenBraceToken) depth++
    if (kind === SyntaxKind.TemplateHead) holes.push(depth)
    previous = kind
    count++
  }
  return count
}

/** Line numbers (1-based) and widths of the lines over WIDTH columns, counted in code points. */
function wideLines(text: string): { line: number; columns: number }[] {
  return text
    .split('\n')
    .map((line, i) => ({ line: i + 1, columns: [...line].length }))
    .filter((l) => l.columns > WIDTH)
}

/** A line with its strings, template literals and trailing comment blanked, so the braces left are code. */
function bracesOf(line: string): string {
  return line.replace(/\/\/.*$/, '').replace(/'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|`(?:\\.|[^`\\])*`/g, '""')
}

// A function's first line: `function f(`, a method `name(…) … {`, or `const f = (…) => {`; not if/for/while/…
const FN_START =
  /^\s*(?:export\s+)?(?:async\s+)?function\*?\s+([\w$]+)|^\s*(?:(?:static|async|get|set|private|protected|public|override|readonly)\s+)*\*?([\w$]+)\s*(?:<[^>]*>)?\s*\(.*\{\s*$|^\s*(?:export\s+)?(?:const|let)\s+([\w$]+)\s*=\s*(?:async\s+)?(?:\([^)]*\)|[\w$]+)(?:\s*:\s*[^=]+)?\s*=>\s*\{\s*$/
const NOT_FN = new Set(['if', 'for', 'while', 'switch', 'catch', 'return', 'constructor'])

/** Functions and methods of a file with their code-line counts, outermost only counted whole (nested ones too). */
function functionLengths(text: string): { name: string; line: number; lines: number }[] {
  const lines = text.split('\n'),
    mask = codeMask(text)
  const open: { name: string; line: number; depth: number }[] = []
  const found: { name: string; line: number; lines: number }[] = []
  let depth = 0
  for (const [i, raw] of lines.entries()) {
    if (!mask[i]) continue
    const m = FN_START.exec(raw)
    const name = m && (m[1] ?? m[2] ?? m[3])
    if (name && !NOT_FN.has(name) && raw.includes('{')) open.push({ name, line: i, depth })
    for (const ch of bracesOf(raw)) {
      if (ch === '{') depth++
      if (ch !== '}') continue
      depth--
      const top = open[open.length - 1]
      if (top && depth === top.depth) {
        open.pop()
        found.push({ name: top.name, line: top.line + 1, lines: mask.slice(top.line, i + 1).filter(Boolean).length })
      }
    }
  }
  return found
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory())
      return name === 'node_modules' || name === 'out' || name === 'dist' ? [] : walk(path)
    return /\.(ts|mjs)$/.test(name) ? [path] : []
  })
}

process.chdir(flags.root) // every path below is relative to the tree's root, as the budgets name them
type Count = { lines: number; tokens: number }
const counts = new Map<string, Count>()
const wide: string[] = [] // file:line (columns) of every line over WIDTH in src/ ops/ nn/ examples/
/** A row of the table: code lines, tokens, tokens per code line, and what was counted. */
const row = ({ lines, tokens }: Count, what: string) =>
  `${String(lines).padStart(6)}  ${String(tokens).padStart(7)}  ${(lines ? tokens / lines : 0).toFixed(1).padStart(5)}  ${what}`
const sum = (files: string[]): Count =>
  files.reduce((s, f) => ({ lines: s.lines + counts.get(f)!.lines, tokens: s.tokens + counts.get(f)!.tokens }), {
    lines: 0,
    tokens: 0,
  })

console.log(`${'code'.padStart(6)}  ${'tokens'.padStart(7)}  ${'tok/l'.padStart(5)}`)
const folders = FOLDERS.filter((f) => existsSync(f))
for (const folder of folders) {
  for (const file of walk(folder).sort()) {
    const text = readFileSync(file, 'utf8')
    counts.set(file, { lines: codeLines(text), tokens: tokenCount(text) })
    if (WIDE_FOLDERS.test(file)) for (const l of wideLines(text)) wide.push(`${file}:${l.line} (${l.columns} columns)`)
    console.log(row(counts.get(file)!, file))
  }
}
console.log('')
const all = [...counts.keys()]
for (const folder of folders) console.log(row(sum(all.filter((f) => f.startsWith(`${folder}/`))), `${folder}/`))

const library = all.filter((f) => /^(src|ops|nn)\//.test(f) && !f.startsWith(BACKENDS))
const engine = library.filter((f) => /^(src|ops)\//.test(f) && !NOT_ENGINE.some(([, re]) => re.test(f)))
const backends = all.filter((f) => f.startsWith(BACKENDS))
console.log(row(sum(backends), `backends (${BACKENDS}: threads, gpu.js, WebAssembly), outside the library's budget`))
for (const [what, re] of NOT_ENGINE) console.log(row(sum(library.filter((f) => re.test(f))), what))
console.log(row(sum(engine), `engine proper (tensor, autograd, CPU kernels, ops), budget ${BUDGET.engine}`))
console.log(row(sum(library), `library (src + ops + nn, without ${BACKENDS}), budget ${BUDGET.library}`))
console.log(
  `\n${wide.length} lines over ${WIDTH} columns in src/ ops/ nn/ examples/${flags.width ? ':' : ' (--width lists them)'}`,
)
if (flags.width) for (const w of wide) console.log(`  ${w}`)

const problems: string[] = []
const [engineLines, libraryLines] = [sum(engine).lines, sum(library).lines]
if (engineLines > BUDGET.engine) problems.push(`engine proper is ${engineLines} code lines, over ${BUDGET.engine}`)
if (libraryLines > BUDGET.library) problems.push(`library is ${libraryLines} code lines, over ${BUDGET.library}`)
for (const f of library) {
  const { lines } = counts.get(f)!
  if (lines > BUDGET.file) problems.push(`${f} is ${lines} code lines, over ${BUDGET.file}`)
}
if (flags['width-check'] && wide.length)
  problems.push(
    `${wide.length} lines over ${WIDTH} columns: ${wide.slice(0, 20).join(', ')}${wide.length > 20 ? ', …' : ''}`,
  )
const longFunctions = (files: string[]) =>
  files.flatMap((f) =>
    functionLengths(readFileSync(f, 'utf8'))
      .filter((fn) => fn.lines > BUDGET.fn)
      .map((fn) => `${f}:${fn.line} ${fn.name}() is ${fn.lines} code lines`),
  )
for (const p of longFunctions([...library, ...backends])) problems.push(`${p}, over ${BUDGET.fn}`)
const elsewhere = longFunctions(all.filter((f) => /^(examples|bench)\//.test(f)))
if (elsewhere.length)
  console.log(
    `\nfunctions over ${BUDGET.fn} lines outside the library (reported, not enforced): ${elsewhere.join('; ')}`,
  )
if (problems.length) {
  console.log(`\nover budget:\n  ${problems.join('\n  ')}`)
  process.exit(1)
}
console.log('\nwithin budget')
