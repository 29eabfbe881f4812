// .npz as bytes: names no object key can swallow, and caps checked before anything is inflated.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { zipSync } from 'fflate'
import { encodeNpy, decodeNpy, encodeNpz, decodeNpz, type NpyArray } from '../src/formats/npy'
import { saveNpz, loadNpz } from '../src/formats/npy-node'
import { DEFAULT_MAX_BYTES } from '../src/formats/safetensors'
import { withDir } from './fixtures'

const arr = (...values: number[]): NpyArray => ({ shape: [values.length], data: Float32Array.from(values) })

/** Every offset of `name`'s bytes in `zip` (a zip names each entry twice: local header and central directory). */
function offsetsOf(zip: Uint8Array, name: string): number[] {
  const bytes = new TextEncoder().encode(name),
    found: number[] = []
  for (let i = 0; i + bytes.length <= zip.length; i++) if (bytes.every((b, j) => zip[i + j] === b)) found.push(i)
  return found
}

/** Set an entry's declared uncompressed size in both headers (local at +22, central at +24 from each signature). */
function declareSize(zip: Uint8Array, size: number): Uint8Array {
  const out = zip.slice(),
    view = new DataView(out.buffer)
  for (let i = 0; i + 4 <= out.length; i++) {
    const sig = view.getUint32(i, true)
    if (sig === 0x04034b50) view.setUint32(i + 22, size, true)
    if (sig === 0x02014b50) view.setUint32(i + 24, size, true)
  }
  return out
}

test('npy: a header is read only as numpy lays it out; a descr inside another value, a second shape or a malformed tuple is refused, not guessed', () => {
  const npy = (header: string, values: number[]) => {
    // a v1.0 .npy with this header text and these float32 values
    const h = new TextEncoder().encode(header + '\n'),
      data = Float32Array.from(values)
    const out = new Uint8Array(10 + h.length + data.byteLength)
    out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0])
    new DataView(out.buffer).setUint16(8, h.length, true)
    out.set(h, 10)
    out.set(new Uint8Array(data.buffer), 10 + h.length)
    return out
  }
  const four = [1, 2, 3, 4]
  // numpy reads these as int32 and as shape (2, 2): guessing '<f4' or (4,) from the first match would be silently wrong
  assert.throws(
    () =>
      decodeNpy(npy(`{'x': "'descr': '<f4'", 'descr': '<i4', 'fortran_order': False, 'shape': (4,), }`, four), 'a.npy'),
    /npy: a\.npy: cannot read the header/,
  )
  assert.throws(
    () => decodeNpy(npy(`{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'shape': (2, 2), }`, four)),
    /cannot read the header/,
  )
  for (const dims of ['2,,2', '0x4,', '4.0,', '-4,', ','])
    assert.throws(
      () => decodeNpy(npy(`{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`, four)),
      /cannot read the header/,
      dims,
    )
  // what numpy and the other writers emit: spacing, no trailing comma, a scalar
  assert.equal(
    decodeNpy(npy(`{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }        `, four)).shape,
    [2, 2],
  )
  assert.equal(
    decodeNpy(npy(`{'descr':'<f4','fortran_order':True,'shape':(2,2)}`, four)).data,
    Float32Array.from([1, 3, 2, 4]),
  )
  assert.equal(decodeNpy(npy(`{'descr': '<f4', 'fortran_order': False, 'shape': (), }`, [7])).shape, [])
  assert.equal(decodeNpy(encodeNpy({ shape: [1, 4], data: Float32Array.from(four) })).data, Float32Array.from(four))
})

test('npz: arrays named __proto__, constructor and toString come back by name, none dropped', () => {
  // as numpy.savez(f, **{'__proto__': …}) writes it: one stored `<name>.npy` per array
  const zip = zipSync(
    { '__proto__.npy': encodeNpy(arr(1)), 'constructor.npy': encodeNpy(arr(2)), 'toString.npy': encodeNpy(arr(3, 4)) },
    { level: 0 },
  )
  const arrays = decodeNpz(zip)
  assert.equal([...arrays.keys()], ['__proto__', 'constructor', 'toString'])
  assert.equal(arrays.get('__proto__')?.data, Float32Array.from([1]))
  assert.equal(arrays.get('toString')?.data, Float32Array.from([3, 4]))
  assert.is(decodeNpz(zipSync({ 'a.npy': encodeNpy(arr(1)) })).get('constructor'), undefined) // no prototype to find it on
  withDir((dir) => {
    const file = join(dir, 'proto.npz')
    saveNpz(
      file,
      new Map([
        ['__proto__', arr(5, 6)],
        ['w', arr(7)],
      ]),
    )
    const back = loadNpz(file)
    assert.equal([...back.keys()], ['__proto__', 'w'])
    assert.equal(back.get('__proto__')?.data, Float32Array.from([5, 6]))
  })
  assert.equal(decodeNpz(encodeNpz({ a: arr(1, 2) })).get('a'), arr(1, 2))
})

test('npz: an entry named __proto__ (no .npy) or appearing twice is refused by name, not lost', () => {
  const bare = zipSync({ protoname: new Uint8Array([1, 2, 3]), 'a.npy': encodeNpy(arr(1)) }, { level: 0 })
  for (const at of offsetsOf(bare, 'protoname')) bare.set(new TextEncoder().encode('__proto__'), at) // fflate cannot write that name
  assert.throws(() => decodeNpz(bare, 'bare.npz'), /npz: bare\.npz: entry "__proto__" is not a \.npy array/)
  const twice = zipSync({ 'a.npy': encodeNpy(arr(1)), 'b.npy': encodeNpy(arr(2)) }, { level: 0 })
  for (const at of offsetsOf(twice, 'b.npy')) twice[at] = 'a'.charCodeAt(0) // both entries now named a.npy
  assert.throws(() => decodeNpz(twice, 'twice.npz'), /npz: twice\.npz: entry "a\.npy" appears twice/)
})

test('npz: a bomb is refused from its declared sizes, before inflating; sizes that lie are caught after', () => {
  // 8 MiB of zeros deflate to ~8 KB: what the entry would unpack to is checked against the cap first
  const zeros: NpyArray = { shape: [2 ** 21], data: new Float32Array(2 ** 21) }
  const bomb = zipSync({ 'w.npy': encodeNpy(zeros) }, { level: 9 })
  assert.ok(bomb.length < 20_000, `deflated to ${bomb.length} bytes`)
  const unpacked = encodeNpy(zeros).length
  assert.throws(
    () => decodeNpz(bomb, 'bomb.npz', { maxBytes: 2 ** 22 }),
    new RegExp(
      `npz: bomb\\.npz: unpacked, the entries up to "w\\.npy" is ${unpacked} bytes, over the 4194304-byte cap \\(pass \\{ maxBytes \\} to allow more\\)`,
    ),
  )
  assert.is(decodeNpz(bomb, 'bomb.npz', { maxBytes: unpacked }).get('w')?.data.length, 2 ** 21)
  // declaring 1.2 GB: more than deflate can give from these bytes, refused without allocating the output buffer
  assert.throws(
    () => decodeNpz(declareSize(bomb, 1_200_000_000), 'lie.npz'),
    /lie\.npz: entry "w\.npy" declares 1200000000 bytes from \d+ deflated bytes, more than deflate can hold/,
  )
  // declaring less than it holds: inflating stops at the declared size, and the .npy is then short
  assert.throws(
    () => decodeNpz(declareSize(bomb, 1000), 'short.npz'),
    /short\.npz:"w\.npy": shape \(2097152\) needs 8388608 data bytes, the file has 872/,
  )
  assert.throws(
    () => decodeNpz(bomb, 'x.npz', { maxBytes: 100 }),
    /x\.npz: the file is \d+ bytes, over the 100-byte cap/,
  )
  withDir((dir) => {
    const file = join(dir, 'bomb.npz')
    writeFileSync(file, bomb)
    assert.throws(
      () => loadNpz(file, { maxBytes: 2 ** 22 }),
      /bomb\.npz: unpacked, the entries up to "w\.npy" is \d+ bytes, over the 4194304-byte cap/,
    )
    assert.throws(
      () => loadNpz(file, { maxBytes: 1000 }),
      /loadNpz: .*bomb\.npz: the file is \d+ bytes, over the 1000-byte cap/,
    )
  })
})

/** `fn` must throw a plain Error whose message is one line of at most 400 characters matching `pattern`. */
function shortError(fn: () => unknown, pattern: RegExp): void {
  let error: unknown
  try {
    fn()
  } catch (err) {
    error = err
  }
  assert.ok(error instanceof Error, 'expected an error')
  const { message } = error as Error
  assert.is((error as Error).constructor, Error, `a ${(error as Error).constructor.name}: ${message.slice(0, 200)}`)
  assert.ok(message.length <= 400 && !message.includes('\n'), `a ${message.length}-character message`)
  assert.match(message, pattern)
}

test('npy and npz: an ArrayBuffer or any typed-array view reads as its bytes; null, a string or bad options are one line', () => {
  const npz = encodeNpz({ a: arr(1, 2) }),
    npy = encodeNpy(arr(3, 4))
  assert.equal(decodeNpz(npz.slice().buffer).get('a'), arr(1, 2))
  assert.equal(decodeNpz(new DataView(npz.slice().buffer)).get('a'), arr(1, 2))
  assert.equal(decodeNpy(npy.slice().buffer), arr(3, 4))
  assert.equal(decodeNpy(new Int16Array(npy.slice().buffer)), arr(3, 4))
  for (const bad of [null, undefined, 'npz', [1, 2]]) {
    shortError(() => decodeNpz(bad as never), /^decodeNpz: expected the \.npz bytes as a Uint8Array, an ArrayBuffer /)
    shortError(() => decodeNpy(bad as never), /^decodeNpy: expected the \.npy bytes as a Uint8Array, an ArrayBuffer /)
  }
  shortError(() => decodeNpz(npz, 'a.npz', null as never), /^decodeNpz: options must be an object like \{ maxBytes \}/)
  shortError(() => decodeNpz(npz, { maxBytes: 5 } as never), /^decodeNpz: source must be a string/)
})

test('npy and npz: a 1 MB dtype, shape or entry name, or a name with a newline, is quoted in one short line', () => {
  const npyWith = (header: string) => {
    const bytes = new Uint8Array(12 + header.length)
    bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0]) // version 2.0: a 4-byte header length
    new DataView(bytes.buffer).setUint32(8, header.length, true)
    bytes.set(new TextEncoder().encode(header), 12)
    return bytes
  }
  const long = 'x'.repeat(2 ** 20)
  shortError(
    () => decodeNpy(npyWith(`{'descr': '${long}', 'fortran_order': False, 'shape': (1,), }`)),
    /^npy: <npy>: dtype "xxxx.*… is not supported/,
  )
  const ones = '1, '.repeat(300_000)
  shortError(
    () => decodeNpy(npyWith(`{'descr': '<f4', 'fortran_order': False, 'shape': (${ones}), }`)),
    /^npy: <npy>: shape \(1,1,1,.*… 300000 dims\) needs 4 data bytes, the file has 0$/,
  )
  shortError(() => decodeNpy(npyWith(`{'descr': ${long}}`)), /^npy: <npy>: cannot read the header "\{'descr': xxx.*…/)
  const zip = zipSync({ ['n'.repeat(60_000) + '\n.npy']: new Uint8Array([1, 2, 3]) }, { level: 0 })
  shortError(() => decodeNpz(zip, 'z.npz'), /^npy: z\.npz:"nnnn.*…: not a \.npy file/)
  const bare = zipSync({ ['m'.repeat(60_000)]: new Uint8Array([1]) }, { level: 0 })
  shortError(() => decodeNpz(bare, 'z.npz'), /^npz: z\.npz: entry "mmmm.*… is not a \.npy array$/)
})

test('npz: entries that overlap or declare more than deflate can give from their bytes are refused before inflating', () => {
  const zeros: NpyArray = { shape: [2 ** 18], data: new Float32Array(2 ** 18) }
  const packed = zipSync({ 'w.npy': encodeNpy(zeros) }, { level: 9 })
  // deflate gives at most 1032 bytes per byte: a few hundred bytes declaring 200 MB is a lie, caught before allocating
  shortError(
    () => decodeNpz(declareSize(packed, 200_000_000), 'lie.npz'),
    /^npz: lie\.npz: entry "w\.npy" declares 200000000 bytes from \d+ deflated bytes, more than deflate can hold/,
  )
  // a second directory entry pointing at the first's stored array: each would be copied, from bytes counted once
  const big = encodeNpy({ shape: [10_000], data: new Float32Array(10_000) })
  const two = zipSync({ 'a.npy': big, 'b.npy': encodeNpy(arr(3, 4)) }, { level: 0 })
  const view = new DataView(two.buffer)
  const [a, b] = ['a.npy', 'b.npy'].map(
    (n) => offsetsOf(two, n).filter((at) => at >= 46 && view.getUint32(at - 46, true) === 0x02014b50)[0] - 46,
  )
  for (const field of [20, 24, 42]) view.setUint32(b + field, view.getUint32(a + field, true), true) // sizes, offset
  shortError(() => decodeNpz(two, 'overlap.npz'), /^npz: overlap\.npz: entries overlap: .*"b\.npy"/)
})

test.run()
