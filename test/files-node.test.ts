// Atomic writes: what a killed save leaves behind is cleaned by the next one, and nothing of a live writer's is.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { writeFileAtomic, writeFilesAtomic, readFileCapped, checkWritable, disk } from '../src/formats/files-node'
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

/** An error as Node's fs gives it: `code` and `syscall` set. */
function fsError(code: string, syscall: string): Error {
  return Object.assign(new Error(`${code}: simulated, ${syscall}`), { code, syscall })
}

/** Run `fn` with the disk's writeSync failing with ENOSPC once `room` bytes have been written (a full disk). */
function withDiskRoom(room: number, fn: () => void): void {
  const real = disk.writeSync
  let left = room
  disk.writeSync = (fd, bytes, offset, length) => {
    if (left <= 0) throw fsError('ENOSPC', 'write')
    const n = real(fd, bytes, offset, Math.min(length, left)) // a short write first, as a filling disk gives
    left -= n
    return n
  }
  try {
    fn()
  } finally {
    disk.writeSync = real
  }
}

/** Two files already saved in `dir`: what a failed batch must leave exactly as it was. */
function oldPair(dir: string): [string, string] {
  const a = join(dir, 'a.safetensors'),
    b = join(dir, 'adapter_config.json')
  writeFileAtomic(a, 'old a')
  writeFileAtomic(b, 'old b')
  return [a, b]
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

test('writeFilesAtomic: the folder is created; a rename failing on the second file says which file was replaced', () =>
  withDir((dir) => {
    const path = join(dir, 'sub', 'model.safetensors')
    writeFileAtomic(path, new Uint8Array([1, 2, 3]))
    assert.equal(new Uint8Array(readFileSync(path)), new Uint8Array([1, 2, 3]))
    const [a, b] = oldPair(dir)
    const real = disk.renameSync
    disk.renameSync = (from, to) => {
      if (String(to).endsWith('.json')) throw fsError('EXDEV', 'rename')
      real(from, to)
    }
    try {
      assert.throws(
        () =>
          writeFilesAtomic([
            [a, 'new a'],
            [b, 'new b'],
          ]),
        /^writeFilesAtomic: cannot write .*adapter_config\.json: EXDEV: simulated, rename; only a\.safetensors replaced$/,
      )
    } finally {
      disk.renameSync = real
    }
    assert.equal(readdirSync(dir).sort(), ['a.safetensors', 'adapter_config.json', 'sub'])
    assert.is(readFileSync(a, 'utf8'), 'new a')
    assert.is(readFileSync(b, 'utf8'), 'old b')
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

test('writeFilesAtomic: a disk filling mid-write (ENOSPC) names the op and the file, removes every temp file, keeps the old files', () =>
  withDir((dir) => {
    const [a, b] = oldPair(dir)
    const big = new Uint8Array(100_000).fill(1)
    for (const room of [10, 100_050]) {
      // full within the first file, then within the second (the first's temp is written and fsynced by then)
      let error: unknown
      withDiskRoom(room, () => {
        try {
          writeFilesAtomic(
            [
              [a, big],
              [b, big],
            ],
            'saveAdapters',
          )
        } catch (err) {
          error = err
        }
      })
      const which = room < big.length ? 'a\\.safetensors' : 'adapter_config\\.json'
      assert.instance(error, Error)
      assert.match(
        String((error as Error).message),
        new RegExp(`^saveAdapters: cannot write .*${which}: the disk is full \\(ENOSPC\\); no file was replaced$`),
      )
      assert.is((error as { code?: string }).code, 'ENOSPC', 'the code stays on the error for callers that fall back')
      assert.equal(
        readdirSync(dir).sort(),
        ['a.safetensors', 'adapter_config.json'],
        `room ${room}: a temp file stayed`,
      )
      assert.is(readFileSync(a, 'utf8'), 'old a')
      assert.is(readFileSync(b, 'utf8'), 'old b')
    }
  }))

test('writeFilesAtomic: EACCES, EROFS and EIO from open, fsync or close are one line naming the file; no temp file stays', () =>
  withDir((dir) => {
    const [a, b] = oldPair(dir)
    const cases: [keyof typeof disk, string, RegExp][] = [
      ['openSync', 'EACCES', /permission denied \(EACCES\)/],
      ['openSync', 'EROFS', /the file system is read-only \(EROFS\)/],
      ['fsyncSync', 'EIO', /EIO: simulated, fsync/],
      ['closeSync', 'EDQUOT', /the disk quota is used up \(EDQUOT\)/],
    ]
    for (const [call, code, reason] of cases) {
      const real = disk[call]
      let calls = 0
      // the second file's call fails, after the first file's temp was written
      Object.assign(disk, {
        [call]: (...args: never[]) => {
          if (++calls === 2) throw fsError(code, call)
          return (real as (...a: never[]) => unknown)(...args)
        },
      })
      try {
        assert.throws(
          () =>
            writeFilesAtomic([
              [a, 'new a'],
              [b, 'new b'],
            ]),
          (err: Error) =>
            /^writeFilesAtomic: cannot write .*adapter_config\.json: /.test(err.message) && reason.test(err.message),
        )
      } finally {
        Object.assign(disk, { [call]: real })
      }
      assert.equal(readdirSync(dir).sort(), ['a.safetensors', 'adapter_config.json'], `${call} ${code}: a temp stayed`)
      assert.is(readFileSync(a, 'utf8'), 'old a')
    }
  }))

test('writeFileAtomic: an empty path, a folder, or a path under a file is refused in one line before anything is written', () =>
  withDir((dir) => {
    writeFileSync(join(dir, 'file.txt'), 'a file')
    assert.throws(() => writeFileAtomic('', 'x', 'saveAdapters'), /^saveAdapters: the file path is empty$/)
    assert.throws(
      () => writeFileAtomic(dir, 'x', 'saveAdapters'),
      /^saveAdapters: cannot write .*: it is a folder, not a file$/,
    )
    assert.throws(
      () => writeFileAtomic(join(dir, 'file.txt', 'sub', 'x.bin'), 'x', 'saveAdapters'),
      /^saveAdapters: cannot write .*file\.txt\/sub\/x\.bin: .*\((ENOTDIR|EEXIST)\)/,
    )
    assert.equal(readdirSync(dir), ['file.txt'])
  }))

test('checkWritable: says before a run whether a save could go there, in the words a save would use, and leaves nothing', () =>
  withDir((dir) => {
    writeFileSync(join(dir, 'file.txt'), 'a file')
    checkWritable(join(dir, 'run', 'adapters.safetensors'), 'lora-finetune') // creates the folder, as a save would
    assert.equal(readdirSync(dir).sort(), ['file.txt', 'run'])
    assert.equal(readdirSync(join(dir, 'run')), [])
    assert.throws(() => checkWritable('', 'lora-finetune'), /^lora-finetune: the file path is empty$/)
    assert.throws(() => checkWritable(join(dir, 'run'), 'lora-finetune'), /it is a folder, not a file$/)
    assert.throws(
      () => checkWritable(join(dir, 'file.txt', 'adapters.safetensors'), 'lora-finetune'),
      /^lora-finetune: cannot write .*: a part of the path is a file, not a folder \((ENOTDIR|EEXIST)\); nothing was written$/,
    )
    const real = disk.openSync
    disk.openSync = () => {
      throw fsError('EROFS', 'open')
    }
    try {
      assert.throws(
        () => checkWritable(join(dir, 'run', 'adapters.safetensors'), 'lora-finetune'),
        (err: Error & { code?: string }) =>
          /the file system is read-only \(EROFS\)/.test(err.message) && err.code === 'EROFS',
      )
    } finally {
      disk.openSync = real
    }
    assert.equal(readdirSync(join(dir, 'run')), [])
  }))

test('writeFileAtomic: a real ENOSPC from the kernel (/dev/full behind the temp name) is named and cleaned up', () =>
  withDir((dir) => {
    if (!existsSync('/dev/full')) return // Linux only; the simulated disk above covers the rest
    const path = join(dir, 'model.safetensors')
    symlinkSync('/dev/full', `${path}.tmp-${process.pid}`) // the temp file opens onto a device that is always full
    assert.throws(
      () => writeFileAtomic(path, new Uint8Array(1000), 'saveCheckpoint'),
      /^saveCheckpoint: cannot write .*model\.safetensors: the disk is full \(ENOSPC\); no file was replaced$/,
    )
    assert.equal(readdirSync(dir), [])
  }))

test.run()
