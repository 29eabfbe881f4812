// Is `auto` stable? Ten fresh processes each let auto pick a backend on eight (512, 512, 512) products, then time
// every backend's steady speed at 512 in alternating rounds. Passes when all ten pick the same path and each
// pick is within 10% of that process's fastest backend.
//   npx tsx bench/auto-stability.ts [--runs=10] [--size=512]
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1]
const runs = Number(arg('runs') ?? 10),
  size = Number(arg('size') ?? 512)
type Report = { picked: string; speeds: Record<string, number>; reason: string }

/** One fresh process: auto picks on the first products, then every backend is timed (GFLOP/s, median). */
async function child(n: number): Promise<void> {
  const tenny = await import('../src/node')
  const a = tenny.randn([n, n]),
    b = tenny.randn([n, n])
  for (let i = 0; i < 8; i++) tenny.matmul(a, b) // what a user does: auto probes on the first
  const info = tenny.backendInfo()
  const picked = `${info.backend} (${info.threads} thread${info.threads > 1 ? 's' : ''})`
  const choices: [string, () => unknown][] = [
    ['cpu (1 thread)', () => tenny.setBackend('cpu')],
    ['wasm (1 thread)', () => tenny.setBackend('wasm', { threads: 1 })],
  ]
  if (info.parallel.failure === '') {
    choices.push([`parallel (${info.parallel.threads} threads)`, () => tenny.setBackend('parallel')])
    choices.push([`wasm (${info.parallel.threads} threads)`, () => tenny.setBackend('wasm')])
  }
  const times = new Map<string, number[]>(choices.map(([name]) => [name, []]))
  for (const [, use] of choices) {
    // warm each: V8's wasm tiers up, workers leave their cold start
    use()
    for (let i = 0, t0 = performance.now(); i < 5 || performance.now() - t0 < 200; i++) tenny.matmul(a, b)
  }
  for (let round = 0; round < 9; round++) {
    for (const [name, use] of choices) {
      use()
      const t0 = performance.now()
      tenny.matmul(a, b)
      times.get(name)?.push(performance.now() - t0)
    }
  }
  const speeds: Record<string, number> = {}
  for (const [name, ts] of times) speeds[name] = (2 * n ** 3) / ts.sort((x, y) => x - y)[ts.length >> 1] / 1e6
  const report: Report = { picked, speeds, reason: info.reason }
  console.log(JSON.stringify(report))
}

function parent(): void {
  const reports: Report[] = []
  for (let r = 0; r < runs; r++) {
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', `--size=${size}`],
      { encoding: 'utf8' },
    )
    if (run.status !== 0) throw new Error(`run ${r + 1} failed: ${run.stderr}`)
    reports.push(JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}') as Report)
  }
  const names = Object.keys(reports[0].speeds)
  console.log(`# auto on ${runs} fresh processes, ${size}² A·B (GFLOP/s, steady medians measured after the pick)\n`)
  console.log(`| run | picked | ${names.join(' | ')} | picked / best |`)
  console.log(`|---|---|${names.map(() => '---:').join('|')}|---:|`)
  let worst = 1
  reports.forEach((rep, i) => {
    const best = Math.max(...Object.values(rep.speeds)),
      mine = rep.speeds[rep.picked] ?? 0
    worst = Math.min(worst, mine / best)
    console.log(
      `| ${i + 1} | ${rep.picked} | ${names.map((n) => rep.speeds[n]?.toFixed(1) ?? '–').join(' | ')} | ${(mine / best).toFixed(2)} |`,
    )
  })
  const picks = new Set(reports.map((r) => r.picked))
  const same = picks.size === 1,
    close = worst >= 0.9
  console.log(
    `\n${same ? 'all runs picked' : 'runs picked differently:'} ${[...picks].join(', ')}; the worst pick reached ${(100 * worst).toFixed(0)}% of its process's fastest backend`,
  )
  console.log(same && close ? 'STABLE: one path everywhere, each within 10% of the best' : 'NOT STABLE')
  console.log(`\nfirst run's reason: ${reports[0].reason}`)
  process.exitCode = same && close ? 0 : 1
}

if (process.argv.includes('--child')) await child(size)
else parent()
