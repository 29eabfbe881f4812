// Does `auto` hold at real sizes? Ten fresh processes each do what a user's training does: run GPT-2-small-shaped
// products (a layer's forward and backward at 256 tokens, 768 channels) through the kernel table, where auto probes
// on the first and confirms its pick on the first large ones. Each then times every backend on the same products in
// alternating rounds. Passes when every process ends on the same path, on every core, within 10% of its fastest.
//   npx tsx bench/auto-stability.ts [--runs=10] [--steps=5] [--wasm-only] [--quiet=0.5]
// --wasm-only times only wasm on 1 thread and on all; --quiet=L starts each process only once the 1-minute load
// average is below L (waiting up to 10 minutes). Each row says how busy the machine was: the load average at the
// start, and the cores other processes kept busy while it ran (from /proc/stat, less this process's own time).
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1]
const runs = Number(arg('runs') ?? 10),
  steps = Number(arg('steps') ?? 5),
  wasmOnly = process.argv.includes('--wasm-only'),
  quiet = Number(arg('quiet') ?? Infinity)
type Report = {
  probed: string
  picked: string
  threads: number
  cores: number
  msPerStep: Record<string, number>
  reason: string
  load: number
  /** cores other processes kept busy while this one ran */
  others: number
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

/** Busy and total clock ticks of all cores so far (/proc/stat's first line), or zeros where there is none. */
function cpuTicks(): { busy: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number)
    const busy = user + nice + system + irq + softirq + steal
    return { busy, total: busy + idle + iowait }
  } catch {
    return { busy: 0, total: 0 }
  }
}

/** The backends timed after the pick: name, how to install it, rounds. */
function choicesOf(tenny: typeof import('../src/node'), parallel: { failure: string; threads: number }) {
  const choices: [string, () => unknown, number][] = []
  if (!wasmOnly) choices.push(['cpu (1 thread)', () => tenny.setBackend('cpu'), 3])
  choices.push(['wasm (1 thread)', () => tenny.setBackend('wasm', { threads: 1 }), 9])
  if (parallel.failure !== '') return choices
  if (!wasmOnly) choices.push([`parallel (${parallel.threads} threads)`, () => tenny.setBackend('parallel'), 3])
  choices.push([`wasm (${parallel.threads} threads)`, () => tenny.setBackend('wasm'), 9])
  return choices
}

/** One fresh process: the products as a user's step runs them, then every backend timed on them. */
async function child(): Promise<void> {
  const tenny = await import('../src/node')
  const [load, ticks0, own0, t0] = [loadavg()[0], cpuTicks(), process.cpuUsage(), performance.now()]
  const operands = SHAPES.map(([m, k, n]) => [tenny.randn([m * k]).data, tenny.randn([k * n]).data])
  const step = () =>
    SHAPES.forEach(([m, k, n, flags], i) => tenny.K.matmul(operands[i][0], operands[i][1], m, k, n, flags))
  step() // auto probes on the first product, then confirms on the first 24 large ones
  const probed = / → ([^;]+); to be confirmed/.exec(tenny.backendInfo().reason)?.[1] ?? 'not confirmed'
  for (let s = 1; s < steps; s++) step()
  const info = tenny.backendInfo()
  const picked = `${info.backend} (${info.threads} thread${info.threads > 1 ? 's' : ''})`
  const choices = choicesOf(tenny, info.parallel)
  const times = new Map<string, number[]>(choices.map(([name]) => [name, []]))
  for (const [, use] of choices) {
    use() // and warm it
    step()
  }
  for (let round = 0; round < 9; round++)
    for (const [name, use, rounds] of choices) {
      if (round >= rounds) continue
      use()
      const t1 = performance.now()
      step()
      times.get(name)?.push(performance.now() - t1)
    }
  const msPerStep: Record<string, number> = {}
  for (const [name, ts] of times) msPerStep[name] = ts.sort((x, y) => x - y)[ts.length >> 1]
  const cores = info.parallel.failure === '' ? info.parallel.threads : 1
  const [ticks1, own, seconds] = [cpuTicks(), process.cpuUsage(own0), (performance.now() - t0) / 1000]
  const perCoreSecond = (ticks1.total - ticks0.total) / seconds / cores // clock ticks a core gives in a second
  const others = (ticks1.busy - ticks0.busy) / perCoreSecond / seconds - (own.user + own.system) / 1e6 / seconds
  const { reason } = info
  const report: Report = { probed, picked, threads: info.threads, cores, msPerStep, reason, load, others }
  console.log(JSON.stringify(report))
}

/** Fresh processes, one after another (each once the load is below --quiet, if given). */
function measure(): Report[] {
  const reports: Report[] = []
  const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', `--steps=${steps}`]
  if (wasmOnly) args.push('--wasm-only')
  for (let r = 0; r < runs; r++) {
    for (const t0 = Date.now(); loadavg()[0] >= quiet && Date.now() - t0 < 600_000;) spawnSync('sleep', ['5'])
    const run = spawnSync(process.execPath, args, { encoding: 'utf8' })
    if (run.status !== 0) throw new Error(`run ${r + 1} failed: ${run.stderr}`)
    reports.push(JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}') as Report)
  }
  return reports
}

function parent(): void {
  const reports = measure()
  const names = Object.keys(reports[0].msPerStep)
  const gflop = SHAPES.reduce((s, [m, k, n]) => s + 2 * m * k * n, 0) / 1e9
  console.log(
    `# auto on ${runs} fresh processes, GPT-2-shaped products (ms a step of ${SHAPES.length}: ${gflop} GFLOP)\n`,
  )
  console.log(`| run | load | others' cores | probe picked | kept | ${names.join(' | ')} | kept / best |`)
  console.log(`|---|---:|---:|---|---|${names.map(() => '---:').join('|')}|---:|`)
  let worst = 1
  reports.forEach((rep, i) => {
    const best = Math.min(...Object.values(rep.msPerStep)),
      mine = rep.msPerStep[rep.picked] ?? Infinity
    worst = Math.min(worst, best / mine)
    const ms = names.map((n) => rep.msPerStep[n]?.toFixed(1) ?? '–').join(' | ')
    const busy = `${rep.load.toFixed(2)} | ${rep.others.toFixed(2)}`
    console.log(`| ${i + 1} | ${busy} | ${rep.probed} | ${rep.picked} | ${ms} | ${(best / mine).toFixed(2)} |`)
  })
  const picks = new Set(reports.map((r) => r.picked))
  const allCores = reports.filter((r) => r.threads === r.cores).length
  const same = picks.size === 1,
    close = worst >= 0.9
  console.log(`\n${same ? 'all runs kept' : 'runs kept differently:'} ${[...picks].join(', ')}`)
  console.log(
    `on every core: ${allCores} of ${runs}; the worst pick reached ${(100 * worst).toFixed(0)}% of its fastest`,
  )
  console.log(same && close ? 'STABLE: one path everywhere, each within 10% of the best' : 'NOT STABLE')
  console.log(`\nfirst run's reason: ${reports[0].reason}`)
  process.exitCode = same && close ? 0 : 1
}

if (process.argv.includes('--child')) await child()
else parent()
