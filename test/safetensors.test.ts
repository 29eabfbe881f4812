import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { tensor } from '../src/tensor'
import { manualSeed } from '../src/random'
import {
  serializeSafetensors,
  parseSafetensors,
  toTensor,
  DEFAULT_MAX_BYTES,
  type StoredTensor,
} from '../src/formats/safetensors'
import { saveSafetensors, loadSafetensors } from '../src/formats/safetensors-node'
import { normal } from './helpers'

/** A file from a header object and raw data bytes, unpadded: the way a corrupt or foreign writer might make one. */
function fileWith(header: unknown, data: number[] | Uint8Array = [], headerText = JSON.stringify(header)): Uint8Array {
  const json = new TextEncoder().encode(headerText)
  const out = new Uint8Array(8 + json.length + data.length)
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true)
  out.set(json, 8)
  out.set(data, 8 + json.length)
  return out
}

function throwsWith(fn: () => unknown, pattern: RegExp): void {
  try {
    fn()
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err)
    assert.match(msg, pattern)
    return
  }
  assert.unreachable(`expected an error matching ${pattern}`)
}

test('safetensors: tensors of every writable dtype round-trip bitwise, with metadata', () => {
  manualSeed(1)
  const w = normal([3, 5])
  const odd = tensor(new Float32Array([NaN, -0, Infinity, 1e-45]), [2, 2])
  const q: StoredTensor = { dtype: 'I8', shape: [4], data: new Int8Array([-128, -1, 0, 127]) }
  const u: StoredTensor = { dtype: 'U8', shape: [1, 3], data: new Uint8Array([0, 7, 255]) }
  const i: StoredTensor = { dtype: 'I32', shape: [2], data: new Int32Array([-2147483648, 5]) }
  const p: StoredTensor = { dtype: 'U32', shape: [2], data: new Uint32Array([4294967295, 1]) }
  const empty = tensor(new Float32Array(0), [0, 4])
  const bytes = serializeSafetensors({ w, odd, q, u, i, p, empty }, { config: '{"a":1}', note: 'ü' })
  assert.is((new DataView(bytes.buffer).getUint32(0, true) + 8) % 8, 0, 'data section is 8-byte aligned')
  const { tensors, metadata } = parseSafetensors(bytes)
  assert.equal(metadata, { config: '{"a":1}', note: 'ü' })
  assert.equal(tensors.w.shape, [3, 5])
  assert.equal(new Uint8Array(tensors.w.data.buffer), new Uint8Array(w.data.buffer))
  assert.equal(new Uint8Array(tensors.odd.data.buffer), new Uint8Array(odd.data.buffer))
  for (const [name, t] of Object.entries({ q, u, i, p })) {
    assert.is(tensors[name].dtype, t.dtype)
    assert.is(tensors[name].data.constructor, t.data.constructor)
    assert.equal(Array.from(tensors[name].data), Array.from(t.data))
  }
  assert.equal(tensors.empty.shape, [0, 4])
  assert.equal(Array.from(toTensor(tensors.w, 'w').data), Array.from(w.data))
})

test('safetensors: F16 and BF16 decode known bit patterns to float32', () => {
  const f16 = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x3555, 0x7c00, 0x8000, 0x0400]
  const bf16 = [0x3f80, 0xc049, 0x0000, 0xff80, 0x4780]
  const data = new Uint8Array(2 * (f16.length + bf16.length))
  const view = new DataView(data.buffer)
  ;[...f16, ...bf16].forEach((h, k) => view.setUint16(2 * k, h, true))
  const file = fileWith(
    {
      h: { dtype: 'F16', shape: [f16.length], data_offsets: [0, 2 * f16.length] },
      b: { dtype: 'BF16', shape: [bf16.length], data_offsets: [2 * f16.length, data.length] },
    },
    data,
  )
  const { tensors } = parseSafetensors(file)
  assert.is(tensors.h.dtype, 'F32')
  assert.equal(Array.from(tensors.h.data), [1, -2, 65504, 2 ** -24, 0.333251953125, Infinity, -0, 2 ** -14])
  assert.equal(Array.from(tensors.b.data), [1, -3.140625, 0, -Infinity, 65536])
})

test('safetensors: writing F16 and BF16 rounds to nearest and reads back within half precision', () => {
  const values = new Float32Array([1, -2, 0.1, 65504, 1e-7, 3.14159, -1e5])
  const bytes = serializeSafetensors({
    h: { dtype: 'F16', shape: [7], data: values },
    b: { dtype: 'BF16', shape: [7], data: values },
  })
  const { tensors } = parseSafetensors(bytes)
  assert.equal(Array.from(tensors.h.data), [1, -2, 0.0999755859375, 65504, 1.1920928955078125e-7, 3.140625, -Infinity])
  assert.equal(Array.from(tensors.b.data), [1, -2, 0.10009765625, 65536, 1.0011717677116394e-7, 3.140625, -99840])
})

test('safetensors: save writes atomically (no temp file left) and load reads it back', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tenny-st-'))
  try {
    const path = join(dir, 'model.safetensors')
    const w = tensor([
      [1, 2],
      [3, 4],
    ])
    saveSafetensors(path, { w }, { step: '3' })
    assert.equal(readdirSync(dir), ['model.safetensors'])
    const { tensors, metadata } = loadSafetensors(path)
    assert.equal(Array.from(tensors.w.data), [1, 2, 3, 4])
    assert.equal(metadata, { step: '3' })
    assert.equal(new Uint8Array(readFileSync(path)), serializeSafetensors({ w }, { step: '3' }))
    throwsWith(
      () => loadSafetensors(join(dir, 'missing.safetensors')),
      /loadSafetensors: .*missing\.safetensors does not exist/,
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

const good = () => serializeSafetensors({ a: tensor([1, 2, 3]), b: tensor([[4, 5]]) }, { k: 'v' })

test('safetensors: truncated files and impossible header lengths are named errors', () => {
  const bytes = good()
  throwsWith(() => parseSafetensors(bytes.subarray(0, 5), 'x.st'), /x\.st: file is 5 bytes/)
  throwsWith(
    () => parseSafetensors(bytes.subarray(0, bytes.length - 4), 'x.st'),
    /x\.st: tensors cover 20 bytes but the data section is 16/,
  )
  throwsWith(() => parseSafetensors(bytes.subarray(0, 20), 'x.st'), /header length \d+ runs past the end/)
  const flipped = bytes.slice()
  flipped[7] ^= 0x80 // the top byte of the u64 length
  throwsWith(() => parseSafetensors(flipped), /<buffer>: header length \d+ runs past the end/)
  const shorter = bytes.slice()
  shorter[0] -= 8 // the header now ends 8 bytes early, inside the JSON
  throwsWith(() => parseSafetensors(shorter), /header is not valid UTF-8 JSON/)
})

test('safetensors: malformed headers are named errors', () => {
  throwsWith(() => parseSafetensors(fileWith(null, [], '{"a": ')), /not valid UTF-8 JSON/)
  throwsWith(() => parseSafetensors(fileWith([1, 2])), /header is not a JSON object/)
  throwsWith(
    () => parseSafetensors(fileWith({ a: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, new Array(8).fill(0))),
    /"a" has unknown dtype "F64"/,
  )
  throwsWith(
    () => parseSafetensors(fileWith({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, [0, 0, 0, 0])),
    /"a" has shape \[-1\]/,
  )
  throwsWith(
    () => parseSafetensors(fileWith({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, [0, 0, 0, 0])),
    /"a" has shape/,
  )
  throwsWith(
    () => parseSafetensors(fileWith({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Array(8).fill(0))),
    /"a" is F32 \(3\) = 12 bytes, but data_offsets span 8/,
  )
  throwsWith(
    () => parseSafetensors(fileWith({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, [0, 0, 0, 0])),
    /data_offsets \[4, 0\]/,
  )
  throwsWith(() => parseSafetensors(fileWith({ __metadata__: { n: 3 } })), /__metadata__ "n" is 3, not a string/)
  throwsWith(() => parseSafetensors(fileWith({ a: 'F32' })), /"a" is not an object/)
})

test('safetensors: overlapping, gapped and trailing data are rejected', () => {
  const data = new Array(8).fill(0)
  const entry = (begin: number) => ({ dtype: 'F32', shape: [1], data_offsets: [begin, begin + 4] })
  throwsWith(
    () => parseSafetensors(fileWith({ a: entry(0), b: entry(0) }, data)),
    /"." starts at byte 0 of the data, expected 4 \(offsets overlap/,
  )
  throwsWith(() => parseSafetensors(fileWith({ a: entry(4) }, data)), /"a" starts at byte 4 of the data, expected 0/)
  throwsWith(
    () => parseSafetensors(fileWith({ a: entry(0) }, data)),
    /cover 4 bytes but the data section is 8 bytes \(truncated file or trailing bytes\)/,
  )
  const withTail = new Uint8Array([...good(), 1, 2, 3])
  throwsWith(() => parseSafetensors(withTail), /trailing bytes/)
})

test('safetensors: toTensor refuses integer dtypes, and bad stored tensors are refused on write', () => {
  throwsWith(() => toTensor({ dtype: 'I8', shape: [1], data: new Int8Array(1) }, 'q'), /toTensor: "q" is stored as I8/)
  throwsWith(
    () => serializeSafetensors({ q: { dtype: 'I8', shape: [2], data: new Uint8Array(2) } }),
    /"q" is I8, which needs a Int8Array, got Uint8Array/,
  )
  throwsWith(
    () => serializeSafetensors({ q: { dtype: 'U8', shape: [3], data: new Uint8Array(2) } }),
    /"q" has 2 values but shape \(3\)/,
  )
  throwsWith(() => serializeSafetensors({ __metadata__: tensor([1]) }), /reserved/)
})

test('safetensors: inputs over maxBytes are refused before they are read or decoded', () => {
  const bytes = good() // 12 + 8 data bytes after the header
  throwsWith(
    () => parseSafetensors(bytes, 'x.st', { maxBytes: bytes.length - 1 }),
    new RegExp(
      `x\\.st: the file is ${bytes.length} bytes, over the ${bytes.length - 1}-byte cap \\(pass \\{ maxBytes \\} to allow more\\)`,
    ),
  )
  assert.equal(Object.keys(parseSafetensors(bytes, 'x.st', { maxBytes: bytes.length }).tensors), ['a', 'b'])
  // F16 decodes to twice its bytes: 2 000 halves in a 4 000-byte data section become 8 000 bytes of float32
  const half = fileWith({ h: { dtype: 'F16', shape: [2000], data_offsets: [0, 4000] } }, new Uint8Array(4000))
  throwsWith(
    () => parseSafetensors(half, 'h.st', { maxBytes: 6000 }),
    /h\.st: the decoded tensors is 8000 bytes, over the 6000-byte cap/,
  )
  throwsWith(
    () => parseSafetensors(bytes, 'x.st', { maxBytes: -1 }),
    /parseSafetensors: maxBytes must be a non-negative integer, got -1/,
  )
  // a header longer than the format allows is refused before JSON.parse sees it
  const hugeHeader = new Uint8Array(100_000_016)
  new DataView(hugeHeader.buffer).setBigUint64(0, 100_000_001n, true)
  throwsWith(
    () => parseSafetensors(hugeHeader, 'big.st', { maxBytes: 2 ** 30 }),
    /big\.st: header length 100000001 is over the format's 100000000-byte limit/,
  )
  throwsWith(() => parseSafetensors(hugeHeader, 'big.st'), /big\.st: header length 100000001 is over the format's/)
})

test('loadSafetensors: a file over maxBytes is refused from its size alone; a folder is named, not read', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tenny-st-'))
  try {
    const path = join(dir, 'model.safetensors')
    saveSafetensors(path, {
      w: tensor([
        [1, 2],
        [3, 4],
      ]),
    })
    const size = readFileSync(path).length
    throwsWith(
      () => loadSafetensors(path, { maxBytes: size - 1 }),
      new RegExp(`loadSafetensors: .*model\\.safetensors: the file is ${size} bytes, over the ${size - 1}-byte cap`),
    )
    assert.equal(Array.from(loadSafetensors(path, { maxBytes: size }).tensors.w.data), [1, 2, 3, 4])
    throwsWith(() => loadSafetensors(dir), /loadSafetensors: .* is not a regular file/)
    truncateSync(path, DEFAULT_MAX_BYTES + 1) // a sparse file of zeros: the default cap refuses it unread
    throwsWith(
      () => loadSafetensors(path),
      new RegExp(`the file is ${DEFAULT_MAX_BYTES + 1} bytes, over the ${DEFAULT_MAX_BYTES}-byte cap`),
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('safetensors: tensor names that are Object.prototype keys round-trip as plain entries', () => {
  const bytes = serializeSafetensors({ ['__proto__']: tensor([1]), constructor: tensor([2]), toString: tensor([3]) })
  const { tensors } = parseSafetensors(bytes)
  assert.equal(Object.keys(tensors).sort(), ['__proto__', 'constructor', 'toString'])
  assert.equal(
    Object.entries(tensors)
      .map(([k, t]) => [k, Array.from(t.data)])
      .sort(),
    [
      ['__proto__', [1]],
      ['constructor', [2]],
      ['toString', [3]],
    ],
  )
})

/** `fn` must throw an Error (not a RangeError or TypeError) whose message is one line of at most `max` characters. */
function shortError(fn: () => unknown, pattern: RegExp, max = 600): void {
  let error: unknown
  try {
    fn()
  } catch (err) {
    error = err
  }
  assert.ok(error instanceof Error, 'expected an error')
  const { message } = error as Error
  assert.is((error as Error).constructor, Error, `a ${(error as Error).constructor.name}: ${message.slice(0, 200)}`)
  assert.ok(message.length <= max, `a ${message.length}-character message: ${message.slice(0, 200)}…`)
  assert.not.match(message, /\n/, 'one line')
  assert.match(message, pattern)
}

test('safetensors: deep JSON, a 50 MB dtype, a 5M-dimension shape or a 1 MB name give one short line, not the value', () => {
  const deep = '['.repeat(5000) + ']'.repeat(5000)
  shortError(
    () => parseSafetensors(fileWith(null, [], `{"__metadata__":{"a":${deep}}}`), 'deep.st'),
    /^safetensors: deep\.st: header is not valid UTF-8 JSON \(it nests deeper than 64 levels\)$/,
  )
  const wide = `[${'[1],'.repeat(100_000)}[1]]` // shallow but long: quoted short
  shortError(
    () => parseSafetensors(fileWith(null, [], `{"__metadata__":{"a":${wide}}}`), 'wide.st'),
    /^safetensors: wide\.st: __metadata__ "a" is \[\[1\], \[1\], .*…, not a string$/,
  )
  shortError(
    () =>
      parseSafetensors(
        fileWith(null, [0, 0, 0, 0], `{"a":{"dtype":"${'F'.repeat(50e6)}","shape":[1],"data_offsets":[0,4]}}`),
      ),
    /^safetensors: <buffer>: "a" has unknown dtype "FFFF.*…/,
  )
  const ones = new Array(5e6).fill(1)
  shortError(
    () => parseSafetensors(fileWith({ a: { dtype: 'F32', shape: ones, data_offsets: [0, 8] } }, new Array(8).fill(0))),
    /^safetensors: <buffer>: "a" is F32 \(1,1,1,.*… 5000000 dims\) = 4 bytes, but data_offsets span 8$/,
  )
  shortError(
    () =>
      parseSafetensors(
        fileWith({ a: { dtype: 'F32', shape: ones.map(() => -1), data_offsets: [0, 4] } }, [0, 0, 0, 0]),
      ),
    /^safetensors: <buffer>: "a" has shape \[-1, -1, .*…, expected non-negative integers$/,
  )
  const name = 'n'.repeat(2 ** 20)
  shortError(
    () =>
      parseSafetensors(fileWith({ [name]: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, new Array(8).fill(0))),
    /^safetensors: <buffer>: "nnnn.*… has unknown dtype "F64"/,
  )
})

test('safetensors: an ArrayBuffer, a DataView or any typed-array view is read as its bytes; other inputs are one line', () => {
  const bytes = good()
  const expect = Array.from(parseSafetensors(bytes).tensors.a.data)
  const copy = () => bytes.slice() // a buffer of its own, starting at byte 0
  for (const input of [copy().buffer, new DataView(copy().buffer), new Int8Array(copy().buffer), Buffer.from(copy())])
    assert.equal(Array.from(parseSafetensors(input).tensors.a.data), expect, input.constructor.name)
  const inside = new Uint8Array(bytes.length + 5)
  inside.set(bytes, 3)
  assert.equal(Array.from(parseSafetensors(new DataView(inside.buffer, 3, bytes.length)).tensors.a.data), expect)
  for (const bad of [null, undefined, 'bytes', [1, 2, 3], { length: 8 }])
    shortError(
      () => parseSafetensors(bad as unknown as Uint8Array),
      /^parseSafetensors: expected the file's bytes as a Uint8Array, an ArrayBuffer or another typed array, got /,
    )
  for (const options of [null, 7, 'big', [1]])
    shortError(
      () => parseSafetensors(bytes, 'x.st', options as never),
      /^parseSafetensors: options must be an object like \{ maxBytes \}, got /,
    )
  shortError(() => parseSafetensors(bytes, { maxBytes: 9 } as never), /^parseSafetensors: source must be a string/)
})

test('serializeSafetensors: refuses what it could not read back: negative or fractional dims, null tensors or metadata', () => {
  const stored = (shape: unknown): StoredTensor => ({
    dtype: 'F32',
    shape: shape as number[],
    data: new Float32Array(2),
  })
  for (const shape of [[-2, -1], [0.5, 4], [2, NaN], '2', null])
    shortError(
      () => serializeSafetensors({ w: stored(shape) }),
      /^serializeSafetensors: "w" has shape .*, expected a list of non-negative integers$/,
    )
  shortError(() => serializeSafetensors(null as never), /^serializeSafetensors: expected tensors as an object/)
  shortError(() => serializeSafetensors({ w: null } as never), /^serializeSafetensors: "w" is null, expected a Tensor/)
  shortError(
    () => serializeSafetensors({ w: { dtype: 'F32', shape: [2], data: [1, 2] } } as never),
    /^serializeSafetensors: "w" is F32, which needs a Float32Array, got Array/,
  )
  shortError(() => serializeSafetensors({}, null as never), /^serializeSafetensors: metadata must be an object/)
  shortError(
    () => serializeSafetensors({}, { k: 3 } as never),
    /^serializeSafetensors: metadata "k" must be a string, got 3$/,
  )
  assert.equal(parseSafetensors(serializeSafetensors({ w: stored([2]) })).tensors.w.shape, [2])
})

test.run()
