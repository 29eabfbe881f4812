// Run folders: each training run saves into a folder of its own (examples/out/<date-time> unless --adapter-path
// names one) and never into one that already holds a run; the other scripts read the newest one. run.json in the
// folder records the settings, the base checkpoint (by sha256) and the losses. A run cannot lose its adapters to
// its folder: the folder is checked before step 1, and a save that fails there goes to another folder instead.
import { existsSync, linkSync, readFileSync, readdirSync, rmdirSync, rmSync, statSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join, dirname, relative } from 'node:path'
import { checkWritable, writeFileAtomic, writeFilesAtomic } from '../../src/formats/files-node'
import { OUT_DIR, shown } from './paths'
import { modelHash } from './hf'

export const ADAPTERS = 'adapters.safetensors'
export const RUN_FILE = 'run.json'
/** Files that make a folder a run's: a new run never writes where one of them is. */
const RUN_OUTPUTS = [ADAPTERS, 'adapter_config.json', RUN_FILE, 'full-model.safetensors', 'fused.safetensors']
/** Where a run goes when neither its folder nor examples/out can be written. */
const RESCUE_DIR = join(tmpdir(), 'tenny-runs')

/** What run.json holds. */
export type RunRecord = {
  base: { file: string; sha256: string }
  training: Record<string, unknown>
  [key: string]: unknown
}

/**
 * The folder a new training run will save into, checked before it trains: `path` (refused if it holds a run, is a
 * file or cannot be written), else a new examples/out/<date-time> (in the temp folder if examples/out is read-only).
 */
export function runFolder(path: string | undefined): string {
  if (path !== undefined) {
    if (existsSync(path) && !statSync(path).isDirectory())
      throw new Error(`--adapter-path ${shown(path)} is a file, not a folder: give a folder`)
    const taken = RUN_OUTPUTS.filter((f) => existsSync(join(path, f)))
    if (taken.length)
      throw new Error(`--adapter-path ${shown(path)} already holds another run (${taken.join(', ')}): ${NEW}`)
    const problem = unwritable(path, '--adapter-path')
    if (problem) throw new Error(`${problem}; give another folder`)
    return path
  }
  const folder = freshFolder(OUT_DIR)
  const problem = unwritable(folder, 'the run folder')
  if (problem === null) return folder
  const rescue = freshFolder(RESCUE_DIR)
  if (unwritable(rescue, 'the run folder') !== null) throw new Error(`${problem}; give --adapter-path`)
  console.log(`Note: ${problem}: this run saves into ${rescue}`)
  return rescue
}
const NEW = 'give a new folder, or delete that one first'

/** `<dir>/<date-time>` (2026-12-01T09-30-00, so folders sort by age), with -2, -3, … if that exists. */
function freshFolder(dir: string): string {
  const stamp = new Date().toISOString().slice(0, 19).replace(/:/g, '-')
  let path = join(dir, stamp)
  for (let i = 2; existsSync(path); i++) path = join(dir, `${stamp}-${i}`)
  return path
}

/**
 * Why the run's files cannot be written into `folder` (a file in the way, no permission, a full disk), as one line
 * starting with `op`, or null. Leaves nothing behind: no probe file, and no folder it made.
 */
function unwritable(folder: string, op: string): string | null {
  let made = folder // the top of the folders this check makes, removed again when empty
  while (!existsSync(dirname(made)) && dirname(made) !== made) made = dirname(made)
  const existed = existsSync(folder)
  try {
    checkWritable(join(folder, ADAPTERS), op) // makes the folder, writes and removes a temp file beside the adapters
    return null
  } catch (err) {
    return reason(err)
  } finally {
    if (!existed) removeEmpty(folder, made)
  }
}

/** Remove `folder` and its parents up to `top` while they are empty (folders this process made and left unused). */
function removeEmpty(folder: string, top: string): void {
  for (let dir = folder; ; dir = dirname(dir)) {
    try {
      rmdirSync(dir)
    } catch {
      return // not empty, or not ours to remove
    }
    if (dir === top || dirname(dir) === dir) return
  }
}

/** An error in a few words: its message, which names the file for Node's file errors. */
const reason = (err: unknown) => (err instanceof Error ? err.message : String(err))

/**
 * Save a run: run.json, which claims the folder, then `files`. When `planned` was taken meanwhile (two runs in the
 * same second, or given the same --adapter-path) the run goes to `<planned>-2` (or -3, …). When it cannot be written
 * (a full disk, say), nothing of the run stays there and it goes to a new folder in examples/out or the temp folder,
 * with a message saying where, and exit code 1. Returns the folder.
 */
export function saveRun(
  planned: string,
  basePath: string,
  record: Omit<RunRecord, 'base'>,
  files: Record<string, Uint8Array | string>,
  log: (line: string) => void = console.log,
): string {
  const json = (folder: string) => {
    const base = { file: relative(folder, basePath), sha256: baseHash(basePath) }
    return JSON.stringify({ base, ...record }, null, 1) + '\n'
  }
  let failure: string | null = null // the first folder's error, naming the file that could not be written
  for (const root of [planned, freshFolder(OUT_DIR), freshFolder(RESCUE_DIR)]) {
    let folder: string | null = null
    try {
      folder = claim(root, json)
      writeFilesAtomic(
        Object.entries(files).map(([name, data]) => [join(folder!, name), data]),
        SAVING,
      )
    } catch (err) {
      if (folder) rmSync(join(folder, RUN_FILE), { force: true }) // our claim: a rerun may use the folder
      failure ??= reason(err)
      continue
    }
    if (failure !== null) {
      log(`\nCould not save the run into ${shown(planned)}: ${failure}\nSaved it into ${shown(folder)} instead`)
      process.exitCode = 1 // what was asked for did not happen, though nothing was lost
    } else if (folder !== planned)
      log(`${shown(planned)} was taken by another run meanwhile: saving into ${shown(folder)}`)
    return folder
  }
  throw new Error(`${failure}; nor could it be saved into ${shown(OUT_DIR)} or ${RESCUE_DIR}`)
}
const SAVING = 'saving the run'

/**
 * Claim `<root>` for this run by writing its run.json: the file is linked into place, which fails where one exists,
 * so of two runs saving into one folder the later takes `<root>-2` (or -3, …). Returns the folder claimed.
 */
function claim(root: string, json: (folder: string) => string): string {
  for (let folder = root, i = 2; ; folder = `${root}-${i++}`) {
    if (RUN_OUTPUTS.some((f) => existsSync(join(folder, f)))) continue // another run's files, run.json or not
    const tmp = join(folder, `${RUN_FILE}.tmp-${process.pid}`)
    writeFileAtomic(tmp, json(folder), SAVING) // makes the folder; a failure names the file
    try {
      linkSync(tmp, join(folder, RUN_FILE))
      return folder
    } catch (err) {
      if (!(err instanceof Error && 'code' in err && err.code === 'EEXIST')) throw err
    } finally {
      rmSync(tmp, { force: true })
    }
  }
}

/** The folder to read adapters from: `path`, or the run in examples/out whose adapters were saved last. */
export function findRun(path: string | undefined): string {
  if (path !== undefined) {
    if (existsSync(path) && statSync(path).isFile())
      throw new Error(`--adapter-path ${shown(path)} is a file: give the run folder that holds ${ADAPTERS}`)
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
 * Which base a run trained on: the tiny checkpoint's file hash, or for a Hugging Face folder (--model) the hash of
 * its config.json and its weights' names and shapes (lib/hf.ts).
 */
export const baseHash = (path: string): string => (statSync(path).isDirectory() ? modelHash(path) : fileHash(path))

/** The folder's run.json, or null for adapters saved some other way; one that is no run's record is refused. */
export function readRun(folder: string): RunRecord | null {
  const file = join(folder, RUN_FILE)
  if (!existsSync(file)) return null
  let run: unknown
  try {
    run = JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    throw new Error(`${shown(file)} is not valid JSON`)
  }
  const isObject = (x: unknown): x is Record<string, unknown> =>
    typeof x === 'object' && x !== null && !Array.isArray(x)
  if (!isObject(run) || !isObject(run.training))
    throw new Error(`${shown(file)} has no "training" object, so it is not the record of a run: mend or delete it`)
  return run as RunRecord
}

/** The base a run names: --model's folder as it was given, else the checkpoint's path relative to the run. */
const trainedOn = (run: RunRecord) =>
  typeof run.training.model === 'string' ? run.training.model : String(run.base.file)

/** A run trained on another base checkpoint (same shapes, other weights) is refused, naming both hashes. */
export function checkBase(folder: string, basePath: string): RunRecord | null {
  const run = readRun(folder)
  const want = typeof run?.base?.sha256 === 'string' ? run.base.sha256 : undefined,
    have = baseHash(basePath)
  if (want !== undefined && want !== have)
    throw new Error(
      `${shown(folder)} was trained on another base model (${trainedOn(run!)}, sha256 ${want}…); ` +
        `${shown(basePath)} is ${have}…`,
    )
  return run
}
