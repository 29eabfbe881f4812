// A Hugging Face model folder picked or dropped on the page, the page's side: which of its files the model needs,
// their size against the tab's limit (refused before a weight is read), then their bytes for the worker.

/**
 * The most a model's files may hold in this tab: 1 GiB. The bytes are read whole, then decoded to float32 (twice
 * their size for a bf16 or f16 checkpoint) and trained, all in one tab: a 1 GiB bf16 model already needs ~3 GiB.
 */
export const MODEL_LIMIT_BYTES = 2 ** 30
/** The small files read whole, when present: the config, the shard index, the tokenizer and its settings. */
const SMALL_FILES = ['config.json', 'model.safetensors.index.json', 'tokenizer.json', 'tokenizer_config.json']
const MAX_INDEX_BYTES = 64 * 2 ** 20 // far above a real index (a 70B model's is ~100 kB)

/** Sizes as the limit is stated: in MB (10^6 bytes), one decimal. */
export const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`

/**
 * The folder's files the model needs, by name: the small files, and model.safetensors or the shards its index
 * lists. Refused in one line, before any weight is read, when the weights are missing or over `limit` in all.
 */
export async function readModelFolder(files: File[], limit = MODEL_LIMIT_BYTES): Promise<Record<string, Uint8Array>> {
  // a folder's own files (webkitRelativePath "folder/name"), not those of folders inside it
  const top = files.filter((f) => f.webkitRelativePath.split('/').length <= 2)
  const byName = new Map(top.map((f) => [f.name, f]))
  if (!byName.has('config.json'))
    throw new Error(`no config.json among the ${top.length} files: open the model's folder (or pick its files)`)
  const shards = await shardNames(byName.get('model.safetensors.index.json'))
  const missing = shards.filter((name) => !byName.has(name))
  if (missing.length) throw new Error(`the folder lacks ${missing.join(', ')}, which the model's weights are in`)
  const needed = [...SMALL_FILES.filter((name) => byName.has(name)), ...shards].map((name) => byName.get(name)!)
  const total = needed.reduce((sum, f) => sum + f.size, 0)
  if (total > limit) throw new Error(`the model's files are ${mb(total)}, over this tab's limit of ${mb(limit)}`)
  const bytes: Record<string, Uint8Array> = {}
  for (const f of needed) bytes[f.name] = new Uint8Array(await f.arrayBuffer())
  return bytes
}

/** The weights files: the index's shards (each once, in order), or model.safetensors without an index. */
async function shardNames(index: File | undefined): Promise<string[]> {
  if (!index) return ['model.safetensors']
  if (index.size > MAX_INDEX_BYTES) throw new Error(`model.safetensors.index.json is ${mb(index.size)}, not an index`)
  let map: unknown
  try {
    map = JSON.parse(await index.text()).weight_map
  } catch {
    throw new Error('model.safetensors.index.json is not JSON')
  }
  const names = typeof map === 'object' && map !== null ? Object.values(map) : []
  if (names.length === 0 || !names.every((n) => typeof n === 'string' && /^[\w.-]+\.safetensors$/.test(n)))
    throw new Error('model.safetensors.index.json has no weight_map of tensor names to .safetensors files')
  return [...new Set(names as string[])]
}

/** The files of a dropped folder (its own, not its subfolders') or the dropped files themselves. */
export async function droppedFiles(transfer: DataTransfer): Promise<File[]> {
  const entries = [...transfer.items].map((item) => item.webkitGetAsEntry()).filter((e) => e !== null)
  const folder = entries.find((e): e is FileSystemDirectoryEntry => e.isDirectory)
  if (!folder) return [...transfer.files]
  const reader = folder.createReader()
  const all: FileSystemEntry[] = []
  // readEntries hands out a folder's entries in batches (100 in Chromium) until it gives an empty one
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject))
    if (batch.length === 0) break
    all.push(...batch)
  }
  const fileEntries = all.filter((e): e is FileSystemFileEntry => e.isFile)
  return Promise.all(fileEntries.map((e) => new Promise<File>((resolve, reject) => e.file(resolve, reject))))
}
