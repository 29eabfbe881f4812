// Before/after for the kernel tables, in one process: every row times one call on this checkout's tables and, with
// --against=DIR, on another checkout's (e.g. `git archive main | tar -x -C DIR` and a node_modules link), the two
// alternating call by call so that load from other processes falls on both alike. Rows: the reductions (sum, mean's
// row sums, a bias's gradient, softmax, cross-entropy, layer norm) and matmul at the shapes a GPT step uses.
//   npx tsx bench/kernels-ab.ts [--against=DIR] [--only=sum,softmax,matmul] [--rounds=15]
import { loadavg } from 'node:os'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Kernels } from '../src/kernels/index'

type Table = Kernels
type Tree = { name: string; tables: Record<string, Table> }
type Row = { name: string; table: string; run: (T: Table) => unknown }

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1]
const only = arg('only')?.split(',')
const ROUNDS = Number(arg('rounds') ?? 15)

/** A checkout's tables: the CPU's, and the wasm backend's on one thread and on all (its usual size thresholds). */
async function load(dir: string, name: string): Promise<Tree> {
  const url = (path: string) => pathToFileURL(resolve(dir, path)).href
  await import(url('src/node.ts')) // installs Node's worker_threads for this checkout's pool
  const { cpu } = (await import(url('src/kernels/index.ts'))) as { cpu: Table }
  const wasm = (await import(url('src/backends/wasm/index.ts'))) as {
    wasmKernels(o: { threads: boolean }): Partial<Table>
  }
  const pool = (await import(url('src/backends/threads/pool.ts'))) as { startPool(): { failure: string } | undefined }
  const tables: Record<string, Table> = { cpu, wasm1: { ...cpu, ...wasm.wasmKernels({ threads: false }) } }
  if (pool.startPool()?.failure === '') tables.wasmN = { ...cpu, ...wasm.wasmKernels({ threads: true }) }
  return { name, tables }
}

const rnd = (n: number) => Float32Array.from({ length: n }, () => 2 * Math.random() - 1)

function rows(): Row[] {
  const long = rnd(1 << 24),
    bias = rnd(256 * 768),
    logits = rnd(256 * 8192).map((v) => 8 * v),
    ln = rnd(256 * 768),
    w = rnd(768),
    b = rnd(768),
    targets = Int32Array.from({ length: 256 }, (_, i) => (i * 31) % 8192)
  const stats = { mean: new Float32Array(256), rstd: new Float32Array(256).fill(1) }
  const out: Row[] = []
  for (const table of ['cpu', 'wasm1']) {
    out.push({ name: 'add: 2²²', table, run: (T) => T.add(long.subarray(0, 1 << 22), long.subarray(1 << 22, 2 << 22)) })
    out.push({ name: 'gelu: (256, 3072)', table, run: (T) => T.gelu(long.subarray(0, 256 * 3072)) })
    out.push({ name: 'sum: one row of 2²⁴', table, run: (T) => T.sumAxis(long, 1, long.length, 1) })
    out.push({ name: 'sum: (256, 768) over rows (a bias grad)', table, run: (T) => T.sumAxis(bias, 1, 256, 768) })
    out.push({ name: 'softmax: (256, 8192)', table, run: (T) => T.softmaxRows(logits, 256, 8192) })
    out.push({
      name: 'cross-entropy: (256, 8192)',
      table,
      run: (T) => T.crossEntropyRows(logits, targets, 256, 8192, -100),
    })
    out.push({ name: 'layer norm: (256, 768)', table, run: (T) => T.layerNormRows(ln, w, b, 256, 768, 1e-5) })
    out.push({
      name: 'layer norm backward: (256, 768)',
      table,
      run: (T) => T.layerNormRowsBackward(bias, ln, w, stats.mean, stats.rstd, 256, 768),
    })
  }
  const products: [string, number, number, number, object][] = [
    ['matmul: x·Wᵀ (256, 768, 2304)', 256, 768, 2304, { transB: true }],
    ['matmul: dy·W (256, 2304, 768)', 256, 2304, 768, {}],
    ['matmul: dyᵀ·x (2304, 256, 768)', 2304, 256, 768, { transA: true }],
    ['matmul: x·Wᵀ one row (1, 768, 2304)', 1, 768, 2304, { transB: true }],
    ['matmul: 512³ A·B', 512, 512, 512, {}],
  ]
  for (const table of ['wasm1', 'wasmN'])
    for (const [name, m, k, n, flags] of products) {
      const a = rnd(m * k),
        bm = rnd(k * n)
      out.push({ name, table, run: (T) => T.matmul(a, bm, m, k, n, flags) })
    }
  return out.filter((r) => !only || only.some((o) => r.name.startsWith(o)))
}

/** Median and fastest ms per call of each run: each warmed ≥ 100 ms, then ROUNDS rounds calling them in turn. */
function timings(runs: (() => unknown)[]): { median: number; min: number }[] {
  for (const run of runs) for (let t0 = performance.now(), i = 0; i < 3 || performance.now() - t0 < 100; i++) run()
  const times = runs.map(() => [] as number[])
  for (let round = 0; round < ROUNDS; round++)
    runs.forEach((run, i) => {
      const t0 = performance.now()
      run()
      times[i].push(performance.now() - t0)
    })
  return times.map((ts) => ts.sort((x, y) => x - y)).map((ts) => ({ median: ts[ts.length >> 1], min: ts[0] }))
}

const trees = [await load('.', 'this')]
const against = arg('against')
if (against) trees.push(await load(against, 'against'))
console.log(
  `load average before: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
)
const header = trees.map((t) => `${t.name} ms (median, fastest)`).join(' | ')
console.log(`| kernel | table | ${header} |${against ? ' this / against (median, fastest) |' : ''}`)
console.log(`|---|---|${trees.map(() => '---:').join('|')}|${against ? '---:|' : ''}`)
for (const row of rows()) {
  const present = trees.filter((t) => t.tables[row.table])
  if (present.length < trees.length) continue
  const ms = timings(present.map((t) => () => row.run(t.tables[row.table])))
  const cells = ms.map(({ median, min }) => `${median.toFixed(3)}, ${min.toFixed(3)}`).join(' | ')
  const ratio = against ? ` ${(ms[0].median / ms[1].median).toFixed(2)}, ${(ms[0].min / ms[1].min).toFixed(2)} |` : ''
  console.log(`| ${row.name} | ${row.table} | ${cells} |${ratio}`)
}
console.log(
  `load average after: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
)
