// Disk faults for the example tests, loaded with `node --import` before a script: writes to the files whose path
// matches $TENNY_FAULT_PATH (a regular expression) fail as a full disk fails (ENOSPC: the file is made, a few bytes
// are written, then the write fails) or as a read-only folder does ($TENNY_FAULT=EACCES: the file cannot be made).
// The only portable way to test these: the tests run as root here, where chmod does not stop a write.
import fs from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'

const pattern = new RegExp(process.env.TENNY_FAULT_PATH ?? '(?!)')
const code = process.env.TENNY_FAULT ?? 'ENOSPC'
const { openSync, writeSync, closeSync } = fs
const full = new Set<number>() // descriptors of files on the "full disk"

/** An error as Node's fs gives it: a message starting with the code, and the code on the error. */
const fault = (call: string, path?: string) =>
  Object.assign(new Error(`${code}: simulated by test/example-faults.ts, ${call}${path ? ` '${path}'` : ''}`), {
    code,
    syscall: call,
  })

fs.openSync = ((path: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) => {
  const writing = flags !== undefined && flags !== 'r' && flags !== fs.constants.O_RDONLY
  if (writing && pattern.test(String(path)) && code !== 'ENOSPC') throw fault('open', String(path))
  const fd = openSync(path, flags ?? 'r', mode)
  if (writing && pattern.test(String(path))) full.add(fd)
  return fd
}) as typeof fs.openSync

fs.writeSync = ((fd: number, buffer: Uint8Array, offset?: number, length?: number, position?: number) => {
  if (!full.has(fd)) return writeSync(fd, buffer, offset, length, position)
  writeSync(fd, buffer, offset, Math.min(length ?? buffer.length, 16), position) // a part, then the disk is full
  throw fault('write')
}) as typeof fs.writeSync

fs.closeSync = (fd: number) => {
  full.delete(fd)
  closeSync(fd)
}

syncBuiltinESMExports() // `import { writeSync } from 'node:fs'` elsewhere now sees these too
