// Does `auto` hold at real sizes? Ten fresh processes each do what a user's training does: run GPT-2-small-shaped
// products (a layer's forward and backward at 256 tokens, 768 channels) through the kernel table, where auto probes
// on the first and confirms its pick on the first large ones. Each then times every backend on the same products in
// alternating rounds. Passes when every process ends on the same path, on every core, within 10% of its fastest.
//   npx tsx bench/auto-stability.ts [--runs=10] [--steps=5]
import { spawnSync } from 'node:child_process'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1]
const runs = Number(arg('runs') ?? 10),
  steps = Number(arg('steps') ?? 5)
type Report = {
  probed: string
  picked: string
  threads: number
  cores: number
  msPerStep: Record<string, number>
  reason: string
  load: number
}

/** GPT-2 small, one layer at 256 tokens: (m, k, n, flags) of x·Wᵀ for qkv, proj, fc, fc2, and two backward products. */
const SHAPES: [number, number, number, { transA?: boolean; transB?: boolean }][] = [
  [256, 768, 2304, { transB: true }],
  [256, 768, 768, { transB: true }],
  [256, 768, 3072, { transB: true }],
  [256, 3072, 768, { transB: true }],
  [256, 3072, 768, {}], // dx = dy·W
  [768, 256, 3072, { transA: true }], // dW = dyᵀ·x
]

/** One fresh process: the products as a user's step runs them, then every backend timed on them. */
async function child(): Promise<void> {
  const tenny = await import('../src/node')
  const load = loadavg()[0]
  const operands = SHAPES.map(([m, k, n]) => [tenny.randn([m * k]).data, tenny.randn([k * n]).data])
  const step = () =>
    SHAPES.forEach(([m, k, n, flags], i) => tenny.K.matmul(operands[i][0], operands[i][1], m, k, n, flags))
  step() // auto probes on the first product, then confirms on the first 24 large ones
  const probed = / → ([^;]+); to be confirmed/.exec(tenny.backendInfo().reason)?.[1] ?? 'not confirmed'
  for (let s = 1; s < steps; s++) step()
  const info = tenny.backendInfo()
  const picked = `${info.backend} (${info.threads} thread${info.threads > 1 ? 's' : ''})`
  const choices: [string, () => unknown, number][] = [
    ['cpu (1 thread)', () => tenny.setBackend('cpu'), 3],
    ['wasm (1 thread)', () => tenny.setBackend('wasm', { threads: 1 }), 9],
  ]
  if (info.parallel.failure === '') {
    choices.push([`parallel (${info.parallel.threads} threads)`, () => tenny.setBackend('parallel'), 3])
    choices.push([`wasm (${info.parallel.threads} threads)`, () => tenny.setBackend('wasm'), 9])
  }
  const times = new Map<string, number[]>(choices.map(([name]) => [name, []]))
  for (const [, use] of choices) {
    use() // and warm it
    step()
  }
  for (let round = 0; round < 9; round++)
    for (const [name, use, rounds] of choices) {
      if (round >= rounds) continue
      use()
      const t0 = performance.now()
      step()
      times.get(name)?.push(performance.now() - t0)
    }
  const msPerStep: Record<string, number> = {}
  for (const [name, ts] of times) msPerStep[name] = ts.sort((x, y) => x - y)[ts.length >> 1]
  const cores = info.parallel.failure === '' ? info.parallel.threads : 1
  const report: Report = { probed, picked, threads: info.threads, cores, msPerStep, reason: info.reason, load }
  console.log(JSON.stringify(report))
}

function parent(): void {
  const reports: Report[] = []
  for (let r = 0; r < runs; r++) {
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', `--steps=${steps}`],
      {
        encoding: 'utf8',
      },
    )
    if (run.status !== 0) throw new Error(`run ${r + 1} failed: ${run.stderr}`)
    reports.push(JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}') as Report)
  }
  const names = Object.keys(reports[0].msPerStep)
  const gflop = SHAPES.reduce((s, [m, k, n]) => s + 2 * m * k * n, 0) / 1e9
  console.log(
    `# auto on ${runs} fresh processes, GPT-2-shaped products (ms per step of ${SHAPES.length}: ${gflop.toFixed(1)} GFLOP)\n`,
  )
  console.log(`| run | load | probe picked | kept | ${names.join(' | ')} | kept / best |`)
  console.log(`|---|---:|---|---|${names.map(() => '---:').join('|')}|---:|`)
  let worst = 1
  reports.forEach((rep, i) => {
    const best = Math.min(...Object.values(rep.msPerStep)),
      mine = rep.msPerStep[rep.picked] ?? Infinity
    worst = Math.min(worst, best / mine)
    const ms = names.map((n) => rep.msPerStep[n]?.toFixed(1) ?? '–').join(' | ')
    console.log(
      `| ${i + 1} | ${rep.load.toFixed(2)} | ${rep.probed} | ${rep.picked} | ${ms} | ${(best / mine).toFixed(2)} |`,
    )
  })
  const picks = new Set(reports.map((r) => r.picked))
  const allCores = reports.filter((r) => r.threads === r.cores).length
  const same = picks.size === 1,
    close = worst >= 0.9
  console.log(
    `\n${same ? 'all runs kept' : 'runs kept differently:'} ${[...picks].join(', ')}; on every core: ${allCores} of ${runs}`,
  )
  console.log(`the worst pick reached ${(100 * worst).toFixed(0)}% of its process's fastest backend`)
  console.log(same && close ? 'STABLE: one path everywhere, each within 10% of the best' : 'NOT STABLE')
  console.log(`\nfirst run's reason: ${reports[0].reason}`)
  process.exitCode = same && close ? 0 : 1
}

if (process.argv.includes('--child')) await child()
else parent()
