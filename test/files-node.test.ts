// Atomic writes: what a killed save leaves behind is cleaned by the next one, and nothing of a live writer's is.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { writeFileAtomic, readFileCapped } from '../src/formats/files-node'
import { withDir } from './fixtures'

/** A PID that no process holds now: a child that has already exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
  return Number(child.stdout)
}

/** A file last modified `minutes` ago. */
function leftover(path: string, minutes: number): void {
  writeFileSync(path, 'half a save')
  const when = new Date(Date.now() - minutes * 60_000)
  utimesSync(path, when, when)
}

test("writeFileAtomic: removes temp files of killed saves of the same path, keeps live writers' and others'", () =>
  withDir((dir) => {
    const path = join(dir, 'adapters.safetensors')
    const dead = deadPid(),
      live = process.ppid
    leftover(`${path}.tmp-${dead}`, 1) // writer gone, untouched for a minute: a killed save
    leftover(`${path}.tmp-${live}`, 1) // writer alive: maybe saving right now
    leftover(`${path}.tmp-${2 ** 22 + live}`, 0.01) // above Linux's PID limit, yet written a second ago: a writer in another PID namespace
    leftover(`${path}.tmp-${process.ppid}0`, 120) // PID reused or not, no save sits two hours between write and rename
    leftover(join(dir, `other.safetensors.tmp-${dead}`), 1) // another file's: cleaned by that file's next save
    leftover(`${path}.tmp-notapid`, 120)
    writeFileAtomic(path, 'new')
    assert.equal(readFileSync(path, 'utf8'), 'new')
    assert.equal(
      readdirSync(dir).sort(),
      [
        'adapters.safetensors',
        `adapters.safetensors.tmp-${live}`,
        `adapters.safetensors.tmp-${2 ** 22 + live}`,
        'adapters.safetensors.tmp-notapid',
        `other.safetensors.tmp-${dead}`,
      ].sort(),
    )
  }))

test('writeFileAtomic: a failed rename leaves the old file and no temp file; the folder is created', () =>
  withDir((dir) => {
    const path = join(dir, 'sub', 'model.safetensors')
    writeFileAtomic(path, new Uint8Array([1, 2, 3]))
    assert.equal(new Uint8Array(readFileSync(path)), new Uint8Array([1, 2, 3]))
    const blocked = join(dir, 'blocked')
    mkdirSync(join(blocked, 'inside'), { recursive: true }) // a non-empty folder where the file should go: rename fails
    assert.throws(() => writeFileAtomic(blocked, 'data'), /EISDIR|ENOTEMPTY|EEXIST|EPERM/)
    assert.equal(readdirSync(dir).sort(), ['blocked', 'sub'])
    assert.equal(readdirSync(blocked), ['inside'])
  }))

test('readFileCapped: reads a file within the cap, names the loader when it is over, missing or a folder', () =>
  withDir((dir) => {
    const path = join(dir, 'a.bin')
    writeFileSync(path, new Uint8Array(100).fill(7))
    assert.equal(readFileCapped('op', path, { maxBytes: 100 }), new Uint8Array(100).fill(7))
    assert.throws(
      () => readFileCapped('op', path, { maxBytes: 99 }),
      /op: .*a\.bin: the file is 100 bytes, over the 99-byte cap/,
    )
    assert.throws(() => readFileCapped('op', join(dir, 'none.bin')), /op: .*none\.bin does not exist/)
    assert.throws(() => readFileCapped('op', dir), /op: .* is not a regular file/)
    assert.throws(
      () => readFileCapped('op', path, { maxBytes: 1.5 }),
      /op: maxBytes must be a non-negative integer, got 1\.5/,
    )
  }))

test.run()
