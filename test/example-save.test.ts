// Runs that cannot lose their adapters: the run's folder is checked before step 1 (a file, a path under a file,
// an empty path, a read-only folder), a save that still fails at the end (the disk filled up while training) goes
// to another folder and says where, giving back the folder it could not fill, and a run.json without its training
// settings is one line. Disk faults come from test/example-faults.ts, loaded before the script.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { nn } from '../src/node'
import { loadBase } from '../examples/lib/checkpoint'
import { root, base, example, runScript, failsClearly, smallData, type Run } from './example-helpers'

const dir = mkdtempSync(join(tmpdir(), 'tenny-save-'))
const data = smallData(join(dir, 'data'), { train: 6, valid: 3, test: 3 })
const tiny = ['--train', '--iters', '3', '--batch-size', '2', '--max-tokens', '5', '--data', data]
const faults = join(root, 'test', 'example-faults.ts')

/** The example with disk faults: writes to files whose path matches `path` fail with `code`. */
function withFault(code: 'ENOSPC' | 'EACCES', path: string, args: string[], env: Record<string, string> = {}): Run {
  return runScript('example', args, { env: { ...env, TENNY_FAULT: code, TENNY_FAULT_PATH: path }, preload: [faults] })
}
/** A regular expression matching exactly `text`. */
const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
const trained = (run: Run) => /Fine-tuning for/.test(run.stdout)

test('an --adapter-path that is a file, lies under a file, or is empty is refused before the first step', () => {
  const file = join(dir, 'a-file')
  writeFileSync(file, 'not a folder')
  const asFile = example(...tiny, '--adapter-path', file)
  failsClearly(asFile, /--adapter-path \S*a-file is a file, not a folder: give a folder/)
  const under = example(...tiny, '--adapter-path', join(file, 'run'))
  failsClearly(
    under,
    /--adapter-path: cannot write \S*a-file\/run\/adapters\.safetensors: a part of the path is a file/,
  )
  const empty = example(...tiny, '--adapter-path', '')
  failsClearly(empty, /--adapter-path is empty: give a folder/)
  for (const run of [asFile, under, empty]) assert.not.ok(trained(run), 'refused before training')
  assert.is(readFileSync(file, 'utf8'), 'not a folder', 'the file is left as it was')
})

test('a read-only --adapter-path is refused before the first step; a read-only examples/out sends the run elsewhere', () => {
  const readOnly = join(dir, 'read-only')
  mkdirSync(readOnly)
  const refused = withFault('EACCES', `^${literal(readOnly)}/`, [...tiny, '--adapter-path', readOnly])
  const denied = /--adapter-path: cannot write \S*read-only\/adapters\.safetensors: permission denied \(EACCES\)/
  failsClearly(refused, new RegExp(`${denied.source}.*; give another folder$`))
  assert.not.ok(trained(refused), 'refused before training')
  assert.equal(readdirSync(readOnly), [], 'nothing left in it')
  // without --adapter-path the run needs examples/out (here $TENNY_EXAMPLE_OUT): read-only, the temp folder serves
  const out = join(dir, 'out-read-only')
  mkdirSync(out)
  const moved = withFault('EACCES', `^${literal(out)}/`, tiny, { TENNY_EXAMPLE_OUT: out })
  assert.is(moved.status, 0, moved.stderr)
  const m = /Note: the run folder: cannot write .*\(EACCES\).*: this run saves into (\S+)/.exec(moved.stdout)
  assert.ok(m, moved.stdout.slice(0, 2000))
  try {
    assert.match(moved.stdout, new RegExp(`Run folder: \\S*${literal(relative(root, m![1]))} `))
    assert.ok(existsSync(join(m![1], 'adapters.safetensors')) && existsSync(join(m![1], 'run.json')))
    assert.equal(readdirSync(out), [])
  } finally {
    rmSync(m![1], { recursive: true, force: true })
  }
})

test('the disk fills up while training: the run is saved into another folder, named with the file that failed, and its folder is free again', () => {
  const planned = join(dir, 'full-disk'),
    out = join(dir, 'out-full')
  mkdirSync(out)
  const run = withFault('ENOSPC', `^${literal(planned)}/adapters\\.safetensors`, [...tiny, '--adapter-path', planned], {
    TENNY_EXAMPLE_OUT: out,
  })
  assert.is(run.status, 1, `exit code 1: what was asked did not happen (stderr: ${run.stderr})`)
  assert.ok(trained(run), 'it trained')
  const m = /Could not save the run into (\S+): (.*)\nSaved it into (\S+) instead/.exec(run.stdout)
  assert.ok(m, run.stdout.slice(-2500))
  assert.is(resolve(root, m![1]), planned)
  const file = literal(join(planned, 'adapters.safetensors'))
  assert.match(m![2], new RegExp(`^saving the run: cannot write \\S*${file}: the disk is full \\(ENOSPC\\)`))
  const saved = join(root, m![3])
  assert.is(relative(out, saved).startsWith('..'), false, `saved into examples/out ($TENNY_EXAMPLE_OUT): ${saved}`)
  assert.match(run.stdout, new RegExp(`Saved the adapters of step \\d+ to \\S*${literal(relative(root, saved))}/`))
  for (const file of ['run.json', 'adapters.safetensors', 'adapter_config.json', 'loss.svg'])
    assert.ok(existsSync(join(saved, file)), file)
  nn.loadAdapters(loadBase(base).model, join(saved, 'adapters.safetensors')) // they load
  // nothing of the run stays where it could not be saved: no run.json claiming the folder, no partial temp file
  assert.equal(readdirSync(planned), [], `left in ${planned}`)
  const again = example(...tiny, '--adapter-path', planned) // the disk has room again
  assert.is(again.status, 0, again.stderr)
  assert.ok(existsSync(join(planned, 'adapters.safetensors')))
})

test('a run.json without its training settings is one line, not a TypeError', () => {
  const run = join(dir, 'damaged')
  const first = example(...tiny, '--adapter-path', run)
  assert.is(first.status, 0, first.stderr)
  const record = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8'))
  delete record.training
  writeFileSync(join(run, 'run.json'), JSON.stringify(record))
  const message = /run\.json has no "training" object, so it is not the record of a run: mend or delete it/
  failsClearly(runScript('generate', ['--adapter-path', run, '--max-tokens', '5']), message)
  failsClearly(example('--test', '--data', data, '--adapter-path', run), message)
  failsClearly(runScript('fuse', ['--adapter-path', run]), message)
  writeFileSync(join(run, 'run.json'), '[]')
  failsClearly(runScript('generate', ['--adapter-path', run, '--max-tokens', '5']), message)
})

test.after(() => rmSync(dir, { recursive: true, force: true }))

test.run()
