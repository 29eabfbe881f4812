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
  assert.throws(() => decodeNpz(bare, 'bare.npz'), /npz: bare\.npz: entry '__proto__' is not a \.npy array/)
  const twice = zipSync({ 'a.npy': encodeNpy(arr(1)), 'b.npy': encodeNpy(arr(2)) }, { level: 0 })
  for (const at of offsetsOf(twice, 'b.npy')) twice[at] = 'a'.charCodeAt(0) // both entries now named a.npy
  assert.throws(() => decodeNpz(twice, 'twice.npz'), /npz: twice\.npz: entry 'a\.npy' appears twice/)
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
      `npz: bomb\\.npz: unpacked, the entries up to 'w\\.npy' is ${unpacked} bytes, over the 4194304-byte cap \\(pass \\{ maxBytes \\} to allow more\\)`,
    ),
  )
  assert.is(decodeNpz(bomb, 'bomb.npz', { maxBytes: unpacked }).get('w')?.data.length, 2 ** 21)
  // declaring 1.2 GB: the default cap refuses it without allocating the 1.2 GB output buffer
  assert.throws(
    () => decodeNpz(declareSize(bomb, 1_200_000_000), 'lie.npz'),
    new RegExp(`lie\\.npz: unpacked, .* is 1200000000 bytes, over the ${DEFAULT_MAX_BYTES}-byte cap`),
  )
  // declaring less than it holds: inflating stops at the declared size, and the .npy is then short
  assert.throws(
    () => decodeNpz(declareSize(bomb, 1000), 'short.npz'),
    /short\.npz:w\.npy: shape \(2097152\) needs 8388608 data bytes, the file has 872/,
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
      /bomb\.npz: unpacked, the entries up to 'w\.npy' is \d+ bytes, over the 4194304-byte cap/,
    )
    assert.throws(
      () => loadNpz(file, { maxBytes: 1000 }),
      /loadNpz: .*bomb\.npz: the file is \d+ bytes, over the 1000-byte cap/,
    )
  })
})

test.run()
