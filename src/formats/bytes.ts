// What every loader of bytes shares: the inputs it takes (a Uint8Array, what fetch().arrayBuffer() gives, any
// typed-array view), its options, the cap on what it may read or allocate, and short texts for what a file claims.
import { fail, quote } from '../errors.js'

/** What a load may read or allocate unless told otherwise (`{ maxBytes }`): far above Tenny's models, below a bomb. */
export const DEFAULT_MAX_BYTES = 256 * 2 ** 20
/** Options of every loader of bytes: refuse inputs that would read or allocate more than `maxBytes`. */
export type LoadOptions = { maxBytes?: number }
/** A file's bytes as a loader takes them: a Uint8Array (a Node Buffer is one), an ArrayBuffer, or any other view. */
export type Bytes = ArrayBuffer | ArrayBufferView

/** A value's kind in a few words, for "expected …, got …": `null`, `a string`, `an Array`, `a Map`. */
export function kindOf(value: unknown): string {
  if (value === null || value === undefined) return String(value)
  if (typeof value !== 'object') return `a ${typeof value}`
  const name = Object.getPrototypeOf(value)?.constructor?.name ?? 'Object'
  return /^[AEIOU]/.test(name) ? `an ${name}` : `a ${name}`
}

/** `value` as a Uint8Array over the same memory (nothing copied), or one line saying what it got instead. */
export function asBytes(op: string, value: unknown, what = "the file's bytes"): Uint8Array {
  if (value instanceof Uint8Array) return value
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
  const shared = typeof SharedArrayBuffer !== 'undefined' && value instanceof SharedArrayBuffer
  if (value instanceof ArrayBuffer || shared) return new Uint8Array(value)
  return fail(op, `expected ${what} as a Uint8Array, an ArrayBuffer or another typed array, got ${kindOf(value)}`)
}

/** A loader's `source` (the name its errors give the input), checked: options passed in its place are named. */
export function sourceName(op: string, source: unknown): string {
  if (typeof source !== 'string')
    fail(op, `source must be a string naming the input (options come after it), got ${quote(source, 60)}`)
  return source
}

/** A loader's cap: `maxBytes` if it is a count of bytes, else a clear error naming the loader. */
export function byteCap(op: string, options: unknown): number {
  if (options === undefined) return DEFAULT_MAX_BYTES
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    fail(op, `options must be an object like { maxBytes }, got ${quote(options, 60)}`)
  const { maxBytes = DEFAULT_MAX_BYTES } = options as LoadOptions
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0)
    fail(op, `maxBytes must be a non-negative integer, got ${quote(maxBytes, 60)}`)
  return maxBytes
}

/** The refusal every loader gives for input over its cap, saying how to allow it. */
export function tooBig(what: string, bytes: number, maxBytes: number): string {
  return `${what} is ${bytes} bytes, over the ${maxBytes}-byte cap (pass { maxBytes } to allow more)`
}

/** A shape as (2,3); past 32 dims cut with their count, since a file may declare millions. */
export function dims(shape: readonly unknown[]): string {
  if (shape.length <= 32) return `(${shape.join(',')})`
  return `(${shape.slice(0, 32).join(',')},… ${shape.length} dims)`
}

/** How deep JSON from a file may nest: a header or a config nests 3 or 4 levels; a 1 MB file of '[' nests 500,000. */
export const MAX_JSON_DEPTH = 64

/**
 * JSON.parse, after checking in one pass that the text nests at most MAX_JSON_DEPTH levels: JSON.parse itself does
 * not recurse, but spends a third of a second turning a megabyte of '[' into half a million arrays no config has.
 */
export function parseJson(text: string): unknown {
  let depth = 0,
    inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c)
        i++ // a backslash escapes the next character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_JSON_DEPTH) throw new Error(`it nests deeper than ${MAX_JSON_DEPTH} levels`)
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return JSON.parse(text)
}
