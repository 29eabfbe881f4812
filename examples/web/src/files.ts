// Files in and out of the page: adapters download as one .zip per layout (fflate, which Tenny reads .npz
// files with), and files dropped on the page are read as bytes, a .zip unpacked into the files it holds.
import { zipSync, unzipSync } from 'fflate'
import type { Layout } from './messages'

/** Save `files` as tenny-adapters-<layout>.zip through a temporary link. */
export function download(layout: Layout, files: Record<string, Uint8Array>): void {
  const zip = zipSync(files, { level: 0 }) // float weights hardly compress; storing keeps it instant
  const url = URL.createObjectURL(new Blob([zip], { type: 'application/zip' }))
  const link = document.createElement('a')
  link.href = url
  link.download = `tenny-adapters-${layout}.zip`
  link.click()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}

/** The dropped (or chosen) files by name, as bytes; a .zip contributes the files inside it. */
export async function readDropped(list: FileList): Promise<Record<string, Uint8Array>> {
  const files: Record<string, Uint8Array> = {}
  for (const file of list) {
    const bytes = new Uint8Array(await file.arrayBuffer())
    if (file.name.endsWith('.zip')) {
      for (const [name, inner] of Object.entries(unzipSync(bytes))) files[name.split('/').pop() ?? name] = inner
    } else {
      files[file.name] = bytes
    }
  }
  return files
}
