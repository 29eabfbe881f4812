// `npm run loc`: code lines (not blank, not comment-only) per file and per folder, with the style
// guide's budgets: no file over 300, the engine (src + ops) under 1,500, the library under 4,000.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

const FILE_BUDGET = 300
const FOLDERS = ['src', 'ops', 'nn', 'examples', 'bench', 'test']

function codeLines(text: string): number {
  let n = 0
  let inBlock = false
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (inBlock) {
      if (line.includes('*/')) inBlock = false
      continue
    }
    if (line === '' || line.startsWith('//')) continue
    if (line.startsWith('/*')) {
      inBlock = !line.includes('*/')
      continue
    }
    n++
  }
  return n
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return name === 'node_modules' || name === 'out' ? [] : walk(path)
    return /\.(ts|mjs)$/.test(name) ? [path] : []
  })
}

const perFolder = new Map<string, number>()
const over: string[] = []
for (const folder of FOLDERS) {
  let total = 0
  for (const file of walk(folder).sort()) {
    const n = codeLines(readFileSync(file, 'utf8'))
    total += n
    if (n > FILE_BUDGET && ['src', 'ops', 'nn'].includes(folder)) over.push(`${file} (${n})`)
    console.log(`${String(n).padStart(6)}  ${file}`)
  }
  perFolder.set(folder, total)
}
console.log('')
for (const [folder, n] of perFolder) console.log(`${String(n).padStart(6)}  ${folder}/`)
const engine = perFolder.get('src')! + perFolder.get('ops')!
const library = engine + perFolder.get('nn')!
// The style guide's "engine proper" is tensor, autograd, CPU kernels and ops. src/ + ops/ also hold parts it
// counts with the library: the extra matmul backends, file formats, linear algebra and quantization kernels.
const EXTRAS: Record<string, string[]> = {
  'backends (src/backends: threads, gpu.js)': walk('src/backends'),
  'file formats (safetensors, npy/npz)': ['src/safetensors.ts', 'src/npy.ts'],
  'linear algebra': ['ops/linalg.ts'],
  'quantization kernels and op': ['src/kernels/quant.ts', 'ops/quant.ts'],
}
console.log(`${String(engine).padStart(6)}  src + ops`)
let extras = 0
for (const [what, files] of Object.entries(EXTRAS)) {
  const n = files.reduce((sum, f) => sum + codeLines(readFileSync(f, 'utf8')), 0)
  extras += n
  console.log(`${String(n).padStart(6)}    of which ${what}`)
}
console.log(`${String(engine - extras).padStart(6)}  engine proper (tensor, autograd, CPU kernels, ops), budget 1500`)
console.log(`${String(library).padStart(6)}  library (src + ops + nn), budget 4000`)
if (over.length) console.log(`over the ${FILE_BUDGET}-line file budget: ${over.join(', ')}`)
