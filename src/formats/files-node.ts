// Files on disk, for Node only: atomic writes (temp file, fsync, rename) and reads that check a file's size
// against a cap before reading it. Every file-path function of the `node` entry writes and reads through here.
import {
  closeSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { byteCap, tooBig, type LoadOptions } from './safetensors.js'

// A temp file whose writer is gone is removed once it has sat unmodified this long: long enough that a writer
// in another PID namespace (a container sharing the folder), whose PID means nothing here, has finished.
const DEAD_WRITER_GRACE_MS = 10_000
// Whatever its PID says (PIDs are reused), no save sits this long between its last write and its rename.
const STALE_AFTER_MS = 60 * 60_000

/** Is process `pid` alive on this machine? EPERM means it exists but belongs to someone else. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err instanceof Error && 'code' in err && err.code === 'EPERM'
  }
}

/** Remove `<name>.tmp-<pid>` siblings of `path` left by saves that were killed between write and rename. */
function removeStaleTemps(path: string): void {
  const dir = dirname(path),
    prefix = `${basename(path)}.tmp-`
  for (const name of readdirSync(dir)) {
    const pid = Number(name.slice(prefix.length))
    if (!name.startsWith(prefix) || !Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) continue
    const file = join(dir, name)
    try {
      const age = Date.now() - statSync(file).mtimeMs
      if (age > STALE_AFTER_MS || (age > DEAD_WRITER_GRACE_MS && !isAlive(pid))) rmSync(file, { force: true })
    } catch {
      // gone already (another writer cleaned it) or unreadable: not ours to insist on
    }
  }
}

/** Write `<path>.tmp-<pid>` and fsync it (creating the folder, removing temp files that killed saves of `path` left). */
function writeTemp(path: string, data: Uint8Array | string): string {
  mkdirSync(dirname(path), { recursive: true })
  removeStaleTemps(path)
  const tmp = `${path}.tmp-${process.pid}`
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data
  const fd = openSync(tmp, 'w')
  try {
    for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at, bytes.length - at)
    fsyncSync(fd) // the data is on disk before the rename makes it the file
  } finally {
    closeSync(fd)
  }
  return tmp
}

/**
 * Write files that belong together (weights and their config) atomically, as one batch: every temp file is written
 * and fsynced before any is renamed into place, so a crash or a failure leaves the old files or the new ones, and
 * only the microseconds between two renames, not a whole write, could split a pair. Removes its temp files when it fails.
 */
export function writeFilesAtomic(files: [path: string, data: Uint8Array | string][]): void {
  const temps: string[] = []
  try {
    for (const [path, data] of files) temps.push(writeTemp(path, data))
    for (const [i, [path]] of files.entries()) renameSync(temps[i], path)
  } catch (err) {
    for (const tmp of temps) rmSync(tmp, { force: true })
    throw err
  }
}

/** Write a file atomically: a temp file `<path>.tmp-<pid>`, fsync, then a rename, so a crash leaves the old file or the new one. */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  writeFilesAtomic([[path, data]])
}

/** A file's bytes, after checking that it is a regular file of at most `maxBytes` (nothing is read otherwise). */
export function readFileCapped(op: string, path: string, options: LoadOptions = {}): Uint8Array {
  const maxBytes = byteCap(op, options)
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    if (err instanceof Error && 'code' in err && err.code === 'ENOENT') throw new Error(`${op}: ${path} does not exist`)
    throw err
  }
  try {
    const stat = fstatSync(fd)
    if (!stat.isFile()) throw new Error(`${op}: ${path} is not a regular file`)
    if (stat.size > maxBytes) throw new Error(`${op}: ${path}: ${tooBig('the file', stat.size, maxBytes)}`)
    // exactly the size checked: a file that grows while we read cannot push us past the cap
    const bytes = new Uint8Array(stat.size)
    let at = 0
    for (let got = 1; at < bytes.length && got > 0; at += got) got = readSync(fd, bytes, at, bytes.length - at, at)
    if (at !== bytes.length) throw new Error(`${op}: ${path} shrank from ${stat.size} to ${at} bytes while being read`)
    return bytes
  } finally {
    closeSync(fd)
  }
}
