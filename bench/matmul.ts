// GFLOP/s of the matmul kernel table's NN / NT / TN paths against the matmulRef triple loop, on square sizes.
// Run: npx tsx bench/matmul.ts [runs]. Median of `runs` timed calls after one warm-up; 2·n³ flops per product.
import { K } from '../src/kernels'
import { matmulRef } from '../src/kernels/matmul'
import { manualSeed, random } from '../src/random'

const SIZES = [128, 256, 512]
const runs = Number(process.argv[2] ?? 5)

type Variant = [name: string, run: (a: Float32Array, b: Float32Array, n: number) => Float32Array]
const variants: Variant[] = [
  ['NN  A·B', (a, b, n) => K.matmul(a, b, n, n, n)],
  ['NT  A·Bᵀ', (a, b, n) => K.matmul(a, b, n, n, n, { transB: true })],
  ['TN  Aᵀ·B', (a, b, n) => K.matmul(a, b, n, n, n, { transA: true })],
  ['TT  Aᵀ·Bᵀ', (a, b, n) => K.matmul(a, b, n, n, n, { transA: true, transB: true })],
  ['matmulRef', (a, b, n) => matmulRef(a, b, n, n, n)],
]

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q)
  return s[Math.floor(s.length / 2)]
}

manualSeed(0)
const rows: string[][] = []
for (const [name, run] of variants) {
  const row = [name]
  for (const n of SIZES) {
    const a = Float32Array.from({ length: n * n }, () => 2 * random() - 1)
    const b = Float32Array.from({ length: n * n }, () => 2 * random() - 1)
    run(a, b, n) // warm-up: lets V8 optimise the loops before timing
    const times: number[] = []
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now()
      run(a, b, n)
      times.push(performance.now() - t0)
    }
    row.push(((2 * n ** 3) / (median(times) * 1e6)).toFixed(2))
  }
  rows.push(row)
}

const header = ['GFLOP/s (median of ' + runs + ')', ...SIZES.map(String)]
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
const line = (cells: string[]) =>
  '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ') + ' |'
console.log(line(header))
console.log('|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|')
for (const r of rows) console.log(line(r))
