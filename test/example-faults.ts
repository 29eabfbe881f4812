// Disk faults for the example tests, loaded with `node --import` before a script. Through files-node's `disk` seam,
// writes to files whose path matches $TENNY_FAULT_PATH (a regular expression) fail as a full disk fails
// (ENOSPC: the file is made, a part of it written, then the write fails) or as a read-only folder does
// ($TENNY_FAULT=EACCES: the file cannot be made). The tests run as root here, where chmod does not stop a write.
import { disk } from '../src/formats/files-node'

const pattern = new RegExp(process.env.TENNY_FAULT_PATH ?? '(?!)')
const code = process.env.TENNY_FAULT ?? 'ENOSPC'
const { openSync, writeSync, closeSync } = disk
const full = new Set<number>() // descriptors of files on the "full disk"

/** An error as Node's fs gives it: the code in the message and on the error. */
const fault = (call: string) =>
  Object.assign(new Error(`${code}: simulated by test/example-faults.ts, ${call}`), { code, syscall: call })

disk.openSync = (path, flags, mode) => {
  if (!pattern.test(String(path))) return openSync(path, flags, mode)
  if (code !== 'ENOSPC') throw fault('open')
  const fd = openSync(path, flags, mode)
  full.add(fd)
  return fd
}
disk.writeSync = (fd, bytes, offset, length) => {
  if (!full.has(fd)) return writeSync(fd, bytes, offset, length)
  writeSync(fd, bytes, offset, Math.min(length, 16)) // a part, then the disk is full
  throw fault('write')
}
disk.closeSync = (fd) => {
  full.delete(fd)
  closeSync(fd)
}
