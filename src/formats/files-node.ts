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
import { fail } from '../errors.js'

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

/** The calls a write makes, in one object: a test swaps one to fail as a full disk does (ENOSPC midway). */
export const disk = {
  mkdirSync,
  openSync,
  writeSync: (fd: number, bytes: Uint8Array, offset: number, length: number): number =>
    writeSync(fd, bytes, offset, length),
  fsyncSync,
  closeSync,
  renameSync,
}

// What the usual errors of a write mean, in words; any other keeps Node's own message.
const REASONS: Record<string, string> = {
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is used up',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EEXIST: 'a part of the path is a file, not a folder', // mkdir -p over a file
  EISDIR: 'it is a folder, not a file',
  ENAMETOOLONG: 'the name is too long',
}

const codeOf = (err: unknown): string | undefined =>
  err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined

/** A failed write as one line naming the op and the file; `code` and `path` stay on it for callers that fall back. */
function writeError(op: string, path: string, err: unknown, outcome: string): Error {
  const message = `${op}: cannot write ${path}: ${reasonOf(err)}; ${outcome}`
  return Object.assign(new Error(message, { cause: err }), { code: codeOf(err), path })
}

/** Why a call failed, in words with its code (`the disk is full (ENOSPC)`), or Node's message for a rarer error. */
function reasonOf(err: unknown): string {
  const code = codeOf(err)
  if (code && Object.hasOwn(REASONS, code)) return `${REASONS[code]} (${code})`
  return err instanceof Error ? err.message : String(err)
}

/** Write `tmp` and fsync it; every call goes through `disk`. */
function writeTemp(tmp: string, data: Uint8Array | string): void {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data
  const fd = disk.openSync(tmp, 'w')
  try {
    for (let at = 0; at < bytes.length;) at += disk.writeSync(fd, bytes, at, bytes.length - at)
    disk.fsyncSync(fd) // the data is on disk before the rename makes it the file
  } finally {
    disk.closeSync(fd)
  }
}

/** Refuse a path that cannot be a file before anything is written: empty, or an existing folder. */
function checkPath(op: string, path: string): void {
  if (typeof path !== 'string' || path === '') fail(op, `the file path is empty`)
  let isFolder = false
  try {
    isFolder = statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false
  } catch {
    // a path under a file (ENOTDIR) or in a folder we cannot search: the write says which, naming the file
  }
  if (isFolder) fail(op, `cannot write ${path}: it is a folder, not a file`)
}

/**
 * Write files that belong together (weights and their config) atomically, as one batch: every temp file
 * `<path>.tmp-<pid>` is written and fsynced before any is renamed into place, so a crash or a failure leaves the old
 * files or the new ones, and only the microseconds between two renames, not a whole write, could split a pair.
 * A failure (a full disk, a read-only folder) throws one line naming `op` and the file, with Node's `code` kept on
 * the error, and removes every temp file it made: a failed save neither replaces a file nor fills the disk.
 */
export function writeFilesAtomic(files: [path: string, data: Uint8Array | string][], op = 'writeFilesAtomic'): void {
  for (const [path] of files) checkPath(op, path)
  const temps: string[] = []
  let current = '',
    renamed = 0
  try {
    for (const [path, data] of files) {
      current = path
      disk.mkdirSync(dirname(path), { recursive: true })
      removeStaleTemps(path)
      temps.push(`${path}.tmp-${process.pid}`) // listed before it exists: a write failing halfway leaves a part
      writeTemp(temps[temps.length - 1], data)
    }
    for (const [i, [path]] of files.entries()) {
      current = path
      disk.renameSync(temps[i], path)
      renamed++
    }
  } catch (err) {
    for (const tmp of temps.slice(renamed)) removeQuietly(tmp)
    const done = files.slice(0, renamed).map(([p]) => basename(p))
    throw writeError(op, current, err, renamed ? `only ${done.join(', ')} replaced` : 'no file was replaced')
  }
}

/** Remove a file if it is there; a failure to remove must not hide the error that made the removal necessary. */
function removeQuietly(path: string): void {
  try {
    rmSync(path, { force: true })
  } catch {
    // the folder itself refuses changes: nothing more can be done from here
  }
}

/** Write a file atomically: a temp file `<path>.tmp-<pid>`, fsync, then a rename: a crash leaves the old or the new. */
export function writeFileAtomic(path: string, data: Uint8Array | string, op = 'writeFileAtomic'): void {
  writeFilesAtomic([[path, data]], op)
}

/**
 * Check now, before a long run, that `path` can be written: its folder exists or can be made, it is not a folder,
 * and a temp file beside it can be written and removed. Throws the one-line errors a write would; writes nothing.
 */
export function checkWritable(path: string, op = 'checkWritable'): void {
  checkPath(op, path)
  const tmp = `${path}.tmp-${process.pid}`
  try {
    disk.mkdirSync(dirname(path), { recursive: true })
    writeTemp(tmp, new Uint8Array(0))
  } catch (err) {
    throw writeError(op, path, err, 'nothing was written')
  } finally {
    removeQuietly(tmp)
  }
}

/** A file's bytes, after checking that it is a regular file of at most `maxBytes` (nothing is read otherwise). */
export function readFileCapped(op: string, path: string, options: LoadOptions = {}): Uint8Array {
  const maxBytes = byteCap(op, options)
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    if (codeOf(err) === 'ENOENT') fail(op, `${path} does not exist`)
    throw Object.assign(new Error(`${op}: cannot read ${path}: ${reasonOf(err)}`, { cause: err }), {
      code: codeOf(err),
    })
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
