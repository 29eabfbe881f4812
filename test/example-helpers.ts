// Shared by the tests that run examples/lora-finetune.ts as a child process.
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

/** Run the example to completion with these flags. */
export function example(...args: string[]): Run {
  return exampleWith({}, ...args)
}

/** Run the example with these flags and extra environment variables (e.g. TENNY_EXAMPLE_OUT). */
export function exampleWith(env: Record<string, string>, ...args: string[]): Run {
  const run = spawnSync(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...exampleEnv(), ...env },
  })
  return { status: run.status, stdout: run.stdout, stderr: run.stderr }
}

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
