// Run folders: each training run writes into a folder of its own (examples/out/<date-time> unless --adapter-path
// names one) and never into one that already holds a run; a run that only answers reads the newest one.
// run.json in the folder records the settings, the base checkpoint (by sha256) and the losses.
import { existsSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join, dirname, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { writeFileAtomic } from '../../src/formats/files-node'

/** Where run folders go: examples/out, or $TENNY_EXAMPLE_OUT (the tests run the README's commands there). */
export const OUT_DIR = process.env.TENNY_EXAMPLE_OUT || join(dirname(fileURLToPath(import.meta.url)), '..', 'out')
export const ADAPTERS = 'adapters.safetensors'
export const RUN_FILE = 'run.json'
/** Files that make a folder a run's: a new run never writes where one of them is. */
const RUN_OUTPUTS = [ADAPTERS, 'adapter_config.json', RUN_FILE, 'full-model.safetensors', 'fused.safetensors']

/** What run.json holds. */
export type RunRecord = {
  base: { file: string; sha256: string }
  training: Record<string, unknown>
  [key: string]: unknown
}

/** The path as the user would type it from the current directory. */
export const shown = (path: string): string => relative(process.cwd(), path) || '.'

/** The folder a new training run writes to: `path`, or examples/out/<date-time>; an existing run's is refused. */
export function newRunFolder(path: string | undefined): string {
  if (path === undefined) {
    const stamp = new Date().toISOString().slice(0, 19).replace(/:/g, '-') // 2026-12-01T09-30-00, sorts by time
    path = join(OUT_DIR, stamp)
    for (let i = 2; existsSync(path); i++) path = join(OUT_DIR, `${stamp}-${i}`)
  }
  const taken = RUN_OUTPUTS.filter((f) => existsSync(join(path, f)))
  if (taken.length)
    throw new Error(
      `--adapter-path ${shown(path)} already holds another run (${taken.join(', ')}): give a new folder, or delete that one first`,
    )
  return path
}

/** The folder to read adapters from: `path`, or the run in examples/out whose adapters were saved last. */
export function findRun(path: string | undefined): string {
  if (path !== undefined) {
    if (!existsSync(join(path, ADAPTERS)))
      throw new Error(`--adapter-path ${shown(path)}: no ${ADAPTERS} there (train with --train, or give a run folder)`)
    return path
  }
  const runs = existsSync(OUT_DIR)
    ? readdirSync(OUT_DIR)
        .map((d) => join(OUT_DIR, d))
        .filter((d) => existsSync(join(d, ADAPTERS)))
    : []
  if (runs.length === 0)
    throw new Error(
      `no trained adapters in ${shown(OUT_DIR)} yet: run \`npm run example\` first, or give --adapter-path DIR`,
    )
  const saved = (d: string) => statSync(join(d, ADAPTERS)).mtimeMs
  return runs.reduce((a, b) => (saved(b) > saved(a) ? b : a))
}

/** First 16 hex digits of the sha256 of a file: which base checkpoint a run was trained on. */
export function fileHash(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16)
}

/**
 * Write run.json, naming the base checkpoint by path and hash, and so claim the folder: the file is linked into
 * place, which fails where one exists, so of two runs saving into one folder (started in the same second, or
 * given the same --adapter-path) the later takes `<folder>-2` (or -3, …) instead of overwriting. Returns the folder.
 */
export function writeRun(folder: string, basePath: string, record: Omit<RunRecord, 'base'>): string {
  for (let path = folder, i = 2; ; path = `${folder}-${i++}`) {
    if (RUN_OUTPUTS.some((f) => existsSync(join(path, f)))) continue // another run's files, run.json or not
    mkdirSync(path, { recursive: true })
    const tmp = join(path, `${RUN_FILE}.tmp-${process.pid}`)
    writeFileAtomic(
      tmp,
      JSON.stringify({ base: { file: relative(path, basePath), sha256: fileHash(basePath) }, ...record }, null, 1) +
        '\n',
    )
    try {
      linkSync(tmp, join(path, RUN_FILE))
      return path
    } catch (err) {
      if (!(err instanceof Error && 'code' in err && err.code === 'EEXIST')) throw err
    } finally {
      rmSync(tmp, { force: true })
    }
  }
}

/** The folder's run.json, or null for adapters saved some other way. */
export function readRun(folder: string): RunRecord | null {
  const file = join(folder, RUN_FILE)
  if (!existsSync(file)) return null
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as RunRecord
  } catch {
    throw new Error(`${shown(file)} is not valid JSON`)
  }
}

/** A run trained on another base checkpoint (same shapes, other weights) is refused, naming both hashes. */
export function checkBase(folder: string, basePath: string): RunRecord | null {
  const run = readRun(folder)
  const want = run?.base?.sha256,
    have = fileHash(basePath)
  if (want !== undefined && want !== have) {
    throw new Error(
      `${shown(folder)} was trained on another base model (${run?.base.file}, sha256 ${want}…); ${shown(basePath)} is ${have}…`,
    )
  }
  return run
}
