// Reading what a file says, one checked value at a time: JSON settings, tensors, the files themselves. Every refusal
// is one line naming the op, the file and the key, with the value quoted short (a file may hold a 50 MB string).
import { fail, quote } from '../../src/errors.js'
import { asBytes, dims, kindOf, parseJson, type Bytes } from '../../src/formats/bytes.js'
import type { StoredTensor } from '../../src/formats/safetensors.js'

/** Files by name, as bytes: what a browser downloads or a drop gives, and what the -node functions write and read. */
export type AdapterFiles = Record<string, Uint8Array>
/** Files as a loader takes them: any kind of bytes by name, as fetch().arrayBuffer() or a Node Buffer gives them. */
export type FileBytes = Record<string, Bytes>

export const CONFIG = 'adapter_config.json' // the name PEFT and mlx-lm both read; Tenny's own config uses it too
export const text = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value, null, 2) + '\n')

export function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)]
}

/** A name from a file as text: a plain dotted name as it is, anything else quoted, short and on one line. */
export function shown(name: string): string {
  return /^[\w.-]{1,120}$/.test(name) ? name : quote(name, 120)
}

/** A name from a file mentioned once: a plain name in single quotes, 'blocks.0.qProj'; anything else quoted. */
export function named(name: string): string {
  return /^[\w.-]{1,120}$/.test(name) ? `'${name}'` : quote(name, 120)
}

/** The first few of a list of names, shown, and how many there are. */
export function listed(names: string[]): string {
  const head = names.slice(0, 6).map(shown).join(', ')
  return names.length > 6 ? `${head}, … (${names.length} in all)` : head
}

/** The names of `files`, after checking that it is an object of files (a loader is called from plain JS too). */
export function fileNames(op: string, files: unknown): string[] {
  if (typeof files !== 'object' || files === null || Array.isArray(files))
    fail(op, `expected the files as { name: bytes }, got ${kindOf(files)}`)
  return Object.keys(files)
}

/** The file `key` of `files` as a Uint8Array (from any kind of bytes), or one line saying which files there are. */
export function need(op: string, files: FileBytes, key: string): Uint8Array {
  const names = fileNames(op, files)
  if (!Object.hasOwn(files, key)) fail(op, `no ${key} among the files (${listed(names) || 'none'})`)
  return asBytes(op, files[key], key)
}

/** A JSON object from `bytes` (UTF-8, nesting at most 64 levels), or one line naming `source`. */
export function readJson(op: string, source: string, bytes: Bytes): Record<string, unknown> {
  let value: unknown
  try {
    value = parseJson(new TextDecoder('utf-8', { fatal: true }).decode(asBytes(op, bytes, source)))
  } catch (err) {
    fail(op, `${source} is not valid JSON (${err instanceof Error ? err.message : String(err)})`)
  }
  if (!isObject(value)) fail(op, `${source} is not a JSON object, got ${quote(value, 80)}`)
  return value
}

export const isRank = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1
export const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)
export const isDropout = (v: unknown): v is number => typeof v === 'number' && v >= 0 && v < 1
export const isBoolean = (v: unknown): v is boolean => typeof v === 'boolean'
export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/** A setting that must pass `ok` (or be absent, when it has a fallback), or a clear error naming it. */
export function setting<T>(
  op: string,
  where: string,
  value: unknown,
  ok: (v: unknown) => v is T,
  expected: string,
  fallback?: T,
): T {
  if (value === undefined && fallback !== undefined) return fallback
  if (!ok(value)) fail(op, `${where} must be ${expected}, got ${quote(value)}`)
  return value
}

/** The tensor under `key`, required to be float with `ndim` dims (F16/BF16 arrive decoded as F32). */
export function f32(
  op: string,
  source: string,
  key: string,
  t: StoredTensor | undefined,
  ndim = 2,
): StoredTensor & { data: Float32Array } {
  if (!t) fail(op, `${source}: missing tensor ${named(key)}`)
  if (!(t.data instanceof Float32Array) || t.shape.length !== ndim)
    fail(op, `${source}: ${named(key)} must be a ${ndim}-D float tensor, got ${t.dtype} ${dims(t.shape)}`)
  return { ...t, data: t.data }
}

/**
 * PEFT's and mlx-lm's layouts are two files, renamed one after the other: a crash between the renames, or a second
 * save (or a read) in between, pairs one save's weights with another's config, with the same ranks but another
 * scale. Each writer records in one file what the other holds; a pair whose record disagrees is refused.
 */
export function samePair(op: string, source: string, recorded: unknown, found: string): void {
  if (recorded !== undefined && recorded !== found)
    fail(
      op,
      `${source} and ${CONFIG} come from different saves (one records ${quote(recorded, 80)}, the other has ` +
        `${quote(found, 80)}): a save interrupted or overwritten between its two files, or a config edited by hand; ` +
        `export again`,
    )
}
