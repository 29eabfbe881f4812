// Every loader of bytes against hostile inputs of at most 1 MB (issue 22): each is refused in one short line (or, when
// valid, loaded) without growing memory by more than a small multiple of its size. The inputs run in a child process
// (test/hostile-cases.ts) so that peak memory is theirs alone; a watchdog kills the child past 1.5 GB, where the
// kernel's OOM killer would otherwise end it (and whatever else runs here). Bounds are generous: this checks that
// nothing is sized by what a file claims, not how fast a loaded machine is; the times are printed for the record.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'

type Result = {
  name: string
  bytes: number
  ms: number
  baseMB: number
  peakBeforeMB: number
  peakMB: number
  error: { type: string; message: string } | null
  expect: string
}

const KILL_AT_MB = 1536 // the child's RSS at which the watchdog ends it
const GROWTH_MB = 64 // what one input of ≤ 1 MB may add to the child's peak memory
const SLOW_MS = 5000 // far above the ~0.5 s the slowest case takes on a loaded 2-core machine
const MB = 2 ** 20

/** Run a group of hostile-cases.ts in a child; the results, and the case the watchdog killed (if it did). */
async function runCases(group: string): Promise<{ results: Result[]; killed: string | null; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--expose-gc', 'test/hostile-cases.ts', group], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = '',
    stderr = '',
    killed: string | null = null
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const current = () => /case (.*)\n$/.exec(stderr)?.[1] ?? '(starting)'
  const status = `/proc/${child.pid}/status` // Linux: where the watchdog reads the child's RSS
  const watchdog = setInterval(() => {
    if (!existsSync(status)) return
    const rssMB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(status, 'utf8'))?.[1] ?? 0) / 1024
    if (rssMB <= KILL_AT_MB) return
    killed = `${current()} (RSS ${rssMB.toFixed(0)} MB)`
    child.kill('SIGKILL')
  }, 25)
  const timeout = setTimeout(() => {
    killed = `${current()} (still running after 120 s)`
    child.kill('SIGKILL')
  }, 120_000)
  await new Promise((resolve) => child.on('close', resolve))
  clearInterval(watchdog)
  clearTimeout(timeout)
  const results = stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Result)
  return { results, killed, stderr }
}

/** Each case: the input was ≤ 1 MB, the outcome what it must be, the peak memory and the time within bounds. */
function check(results: Result[]): void {
  const raised = (r: Result) => Math.max(0, r.peakMB - Math.max(r.peakBeforeMB, r.baseMB)).toFixed(1)
  const table = results.map((r) => `${String(r.ms).padStart(5)} ms  +${raised(r).padStart(5)} MB  ${r.name}`)
  console.log(`  hostile inputs (time, how far the case raised the peak RSS, case):\n  ${table.join('\n  ')}`)
  for (const r of results) {
    assert.ok(r.bytes <= MB, `${r.name}: the input is ${r.bytes} bytes, over 1 MB`)
    if (r.expect === 'loads') assert.is(r.error, null, `${r.name}: ${r.error?.message.slice(0, 300)}`)
    else {
      assert.ok(r.error, `${r.name}: loaded, expected an error matching /${r.expect}/`)
      const { type, message } = r.error!
      assert.is(type, 'Error', `${r.name}: a ${type}: ${message.slice(0, 300)}`)
      assert.ok(message.length <= 600 && !message.includes('\n'), `${r.name}: a ${message.length}-character message`)
      assert.match(message, new RegExp(r.expect), `${r.name}: ${message.slice(0, 300)}`)
    }
    // the peak only moves up: a case that allocated more than GROWTH_MB beyond its start pushed it past both
    const allowed = Math.max(r.peakBeforeMB, r.baseMB + GROWTH_MB)
    assert.ok(r.peakMB <= allowed, `${r.name}: peak RSS ${r.peakMB} MB, from ${r.baseMB} MB at its start`)
    assert.ok(r.ms <= SLOW_MS, `${r.name}: took ${r.ms} ms`)
  }
}

test("checkpointFromBytes: issue 22's attack files (wte and wpe of (1, E) for a block of width E) are refused at once", async () => {
  // before: E = 4,096 took 7.4 s and 880 MB (a Block of 12·E² random floats built to learn its parameter names)
  const { results, killed, stderr } = await runCases('checkpoint')
  assert.is(killed, null, `the child was killed in ${killed}`)
  assert.is(results.length, 3, stderr.slice(-2000))
  check(results)
})

test('every byte loader: hostile inputs of ≤ 1 MB are refused in one line, or load, with bounded memory', async () => {
  const { results, killed, stderr } = await runCases('all')
  assert.is(killed, null, `the child was killed in ${killed}`)
  assert.ok(results.length >= 35, `${results.length} cases ran: ${stderr.slice(-2000)}`)
  check(results)
})

test.run()
