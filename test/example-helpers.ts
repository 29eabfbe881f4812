// Shared by the tests that run the example scripts (lora-finetune.ts, generate.ts, fuse.ts) as child processes.
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const root = join(import.meta.dirname, '..')
export const script = join(root, 'examples', 'lora-finetune.ts')
export const base = join(root, 'examples', 'base', 'base.safetensors')

export type Run = { status: number | null; stdout: string; stderr: string }

/** Where runs without --adapter-path go during the tests (TENNY_EXAMPLE_OUT), never the repository's examples/out. */
export const outDir = mkdtempSync(join(tmpdir(), 'tenny-example-out-'))
process.on('exit', () => rmSync(outDir, { recursive: true, force: true }))

/** The child's environment: no colours, no TENNY_DEBUG (errors print one line, not a stack), runs under outDir. */
export function exampleEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', TENNY_EXAMPLE_OUT: outDir }
  delete env.TENNY_DEBUG
  delete env.FORCE_COLOR // it overrides NO_COLOR, with a warning on stderr
  return env
}

/** The script each command runs: `npm run example` trains, `generate` answers, `fuse` fuses; and recall.ts. */
export const SCRIPT_FILES = {
  example: script,
  generate: join(root, 'examples', 'generate.ts'),
  fuse: join(root, 'examples', 'fuse.ts'),
  recall: join(root, 'examples', 'recall.ts'),
}

/** Run one of the scripts to completion with these flags and extra environment variables (and node's `preload`). */
export function runScript(
  name: keyof typeof SCRIPT_FILES,
  args: string[],
  { env = {}, preload = [] }: { env?: Record<string, string>; preload?: string[] } = {},
): Run {
  const imports = ['tsx', ...preload].flatMap((module) => ['--import', module])
  const run = spawnSync(process.execPath, [...imports, SCRIPT_FILES[name], ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...exampleEnv(), ...env },
  })
  return { status: run.status, stdout: run.stdout, stderr: run.stderr }
}

/** Run the fine-tune (`npm run example`) to completion with these flags. */
export const example = (...args: string[]): Run => runScript('example', args)
/** … with extra environment variables (e.g. TENNY_EXAMPLE_OUT). */
export const exampleWith = (env: Record<string, string>, ...args: string[]): Run => runScript('example', args, { env })
/** Answer with a run (`npm run generate`). */
export const generate = (...args: string[]): Run => runScript('generate', args)
/** Fuse a run (`npm run fuse`). */
export const fuse = (...args: string[]): Run => runScript('fuse', args)

/** Exit code 1 and exactly one line on stderr, containing `message`, with no stack trace. */
export function failsClearly(run: Run, message: RegExp): void {
  assert.is(run.status, 1, `exit code (stderr: ${run.stderr})`)
  const lines = run.stderr.trim().split('\n')
  assert.is(lines.length, 1, `one line on stderr, got:\n${run.stderr}`)
  assert.match(lines[0], /^error: /)
  assert.match(lines[0], message)
  assert.not.match(run.stderr, /\n\s+at /)
}

/** A small copy of the Q&A data in `out`: the first lines of each split. */
export function smallData(out: string, lines: { train: number; valid: number; test: number }): string {
  mkdirSync(out, { recursive: true })
  for (const [split, n] of Object.entries(lines)) {
    const rows = readFileSync(join(root, 'examples', 'data', `${split}.jsonl`), 'utf8')
      .split('\n')
      .filter(Boolean)
    writeFileSync(join(out, `${split}.jsonl`), rows.slice(0, n).join('\n') + '\n')
  }
  return out
}
