// `npm test`: typecheck, then every test/*.test.ts under uvu, then one closing line "N passed, N failed".
import { spawnSync } from 'node:child_process'

const FOLDERS = ['src', 'ops', 'nn', 'examples', 'bench', 'test']

/** Runs a command with the output shown; true when it exits 0. */
function ok(command, args) {
  return spawnSync(command, args, { stdio: 'inherit' }).status === 0
}

// the library, tests, bench and Node examples; the playground's page code under the DOM's types; then the
// formatter's check (Prettier at 120 columns, .prettierrc.json), since `npm run loc` counts formatted code
const checks = [
  ['typecheck', ['tsc', '--noEmit']],
  ['typecheck of examples/web', ['tsc', '--noEmit', '-p', 'examples/web']],
  ['formatting (npm run format fixes it)', ['prettier', '--check', '--log-level', 'warn', ...FOLDERS]],
]
for (const [what, args] of checks) {
  if (!ok('npx', args)) {
    console.log(`${what} failed`)
    console.log('0 passed, 1 failed')
    process.exit(1)
  }
}

/** uvu's and Node's colours off, so the totals can be read and child output compared as text. */
function withoutColor() {
  const env = { ...process.env, NO_COLOR: '1' }
  delete env.FORCE_COLOR
  return env
}

// --no-color: uvu otherwise sets FORCE_COLOR=1 in its own process, which every child a test spawns inherits beside
// NO_COLOR, and each such node child warns on stderr that NO_COLOR is ignored
const uvu = ['node_modules/uvu/bin.js', 'test', '\\.test\\.ts$', '--no-color']
const args = ['--import', 'tsx', ...uvu, ...process.argv.slice(2)]
const run = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 << 20, env: withoutColor() })
process.stdout.write(run.stdout)
process.stderr.write(run.stderr)
const total = Number(/Total:\s+(\d+)/.exec(run.stdout)?.[1] ?? 0)
const passed = Number(/Passed:\s+(\d+)/.exec(run.stdout)?.[1] ?? 0)
const skipped = Number(/Skipped:\s+(\d+)/.exec(run.stdout)?.[1] ?? 0)
const failed = run.status === 0 ? total - passed - skipped : Math.max(1, total - passed - skipped)
if (skipped) console.log(`${skipped} skipped`)
console.log(`${passed} passed, ${failed} failed`) // always the last line
process.exit(run.status === 0 && total > 0 ? 0 : 1)
