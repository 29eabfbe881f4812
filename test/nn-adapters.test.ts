import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { rmSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { unzipSync } from 'fflate'
import { Tensor } from '../src/tensor'
import { manualSeed } from '../src/random'
import { loadSafetensors, saveSafetensors } from '../src/formats/safetensors-node'
import { encodeNpy, decodeNpy } from '../src/formats/npy'
import { saveNpz, loadNpz } from '../src/formats/npy-node'
import { quantize } from '../nn/quantized'
import { LoRALinear } from '../nn/lora'
import {
  applyLoRA,
  loraLayers,
  loraAdapters,
  setAdapters,
  getAdapter,
  adapterNames,
  activeAdapter,
} from '../nn/lora-model'
import { baseHash } from '../nn/files/adapters'
import { saveAdapters, loadAdapters, exportPEFT, importPEFT, exportMLX, importMLX } from '../nn/files/adapters-node'
import { add, mul, sub } from '../ops'
import { assertClose, normal, uniform } from './helpers'
import { Toy as ToyModel, withDir } from './fixtures'

/** n blocks of qProj and vProj, width 8: the model these adapter files are made for. */
const Toy = class extends ToyModel {
  constructor(d = 8, n = 2) {
    super({ d, n, fc: false, head: false })
  }
}

const bits = (t: Tensor) => Array.from(t.data)

/** A base model, a copy of it, and the base with a trained-looking adapter (random nonzero B). */
function setup(seed: number, options: Parameters<typeof applyLoRA>[1] = {}) {
  manualSeed(seed)
  const adapted = new Toy()
  const base = adapted.stateDict()
  const fresh = () => {
    const m = new Toy()
    m.loadStateDict(base)
    return m
  }
  const baseCopy = fresh()
  applyLoRA(adapted, { rank: 2, ...options })
  for (const [, l] of loraAdapters(adapted)) l.loraB.data.set(normal(l.loraB.shape, 0.3).data)
  return { adapted, fresh, baseCopy }
}

test('saveAdapters / loadAdapters: only lora tensors are written; a fresh base reproduces the adapted model bitwise', () =>
  withDir((dir) => {
    const { adapted, fresh } = setup(1, { alpha: 6 })
    const file = join(dir, 'adapters.safetensors')
    const config = saveAdapters(file, adapted)
    const { tensors } = loadSafetensors(file)
    assert.equal(Object.keys(tensors).sort(), [
      'blocks.0.qProj.loraA',
      'blocks.0.qProj.loraB',
      'blocks.0.vProj.loraA',
      'blocks.0.vProj.loraB',
      'blocks.1.qProj.loraA',
      'blocks.1.qProj.loraB',
      'blocks.1.vProj.loraA',
      'blocks.1.vProj.loraB',
    ])
    assert.equal(tensors['blocks.0.qProj.loraA'].shape, [2, 8])
    const written = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'))
    assert.equal(written, config)
    assert.equal(
      [written.rank, written.alpha, written.scale, written.targets, written.layers],
      [2, 6, 3, ['qProj', 'vProj'], [0, 1]],
    )
    assert.is(written.baseHash, baseHash(adapted))
    const model = fresh()
    assert.equal(loadAdapters(model, file), { name: 'default', paths: written.paths })
    const x = uniform([3, 8])
    assert.equal(bits(model.forward(x)), bits(adapted.forward(x)))
    assert.equal(model.trainableParameters().length, 8) // loaded adapters train, the base stays frozen
    assert.equal(readdirSync(dir).sort(), ['adapter_config.json', 'adapters.safetensors']) // no temp files left
  }))

test('loadAdapters: an unknown key, a missing key, a wrong shape or another base is an error naming it, and the model is untouched', () =>
  withDir((dir) => {
    const { adapted, fresh } = setup(2)
    const file = join(dir, 'adapters.safetensors')
    saveAdapters(file, adapted)
    const good = loadSafetensors(file).tensors
    const x = uniform([2, 8])
    const expectRejected = (tensors: typeof good, pattern: RegExp) => {
      saveSafetensors(file, tensors)
      const model = fresh(),
        before = bits(model.forward(x))
      assert.throws(() => loadAdapters(model, file), pattern)
      assert.is(loraLayers(model).length, 0)
      assert.equal(bits(model.forward(x)), before)
    }
    expectRejected(
      { ...good, 'blocks.0.kProj.loraA': good['blocks.0.qProj.loraA'] },
      /unknown key\(s\) blocks\.0\.kProj\.loraA/,
    )
    const { ['blocks.1.vProj.loraB']: _, ...missing } = good
    expectRejected(missing, /missing tensor 'blocks\.1\.vProj\.loraB'/)
    expectRejected(
      { ...good, 'blocks.1.qProj.loraA': { dtype: 'F32', shape: [2, 4], data: new Float32Array(8) } },
      /'blocks\.1\.qProj' is \(8,8\) in the model, but its adapter of rank 2/,
    )
    saveAdapters(file, adapted)
    assert.throws(
      () => loadAdapters(new Toy(8, 3), file),
      /was made for another base model: its base hash is [0-9a-f]{16}, this model's is [0-9a-f]{16}/,
    )
    assert.throws(
      () => loadAdapters(fresh(), join(dir, 'nope', 'adapters.safetensors')),
      /nope\/adapters\.safetensors does not exist/,
    )
  }))

test('loadAdapters onto a quantized base: the hash ignores quantization, and the adapter runs on Q(W)', () =>
  withDir((dir) => {
    const { adapted, fresh } = setup(3)
    const file = join(dir, 'adapters.safetensors')
    saveAdapters(file, adapted)
    const q = fresh()
    quantize(q, { mode: 'int8' })
    assert.is(baseHash(q), baseHash(adapted))
    loadAdapters(q, file)
    const x = uniform([2, 8])
    assertClose(q.forward(x).data, adapted.forward(x).data, { atol: 0.02 })
  }))

test('PEFT export/import: key names, (r, in) / (out, r) shapes and config; the round trip loses nothing', () =>
  withDir((dir) => {
    const { adapted, fresh } = setup(4, { alpha: 8, targets: ['qProj'] })
    exportPEFT(dir, adapted, { baseModel: 'toy' })
    const { tensors } = loadSafetensors(join(dir, 'adapter_model.safetensors'))
    assert.equal(Object.keys(tensors).sort(), [
      'base_model.model.blocks.0.qProj.lora_A.weight',
      'base_model.model.blocks.0.qProj.lora_B.weight',
      'base_model.model.blocks.1.qProj.lora_A.weight',
      'base_model.model.blocks.1.qProj.lora_B.weight',
    ])
    assert.equal(tensors['base_model.model.blocks.0.qProj.lora_A.weight'].shape, [2, 8])
    assert.equal(tensors['base_model.model.blocks.0.qProj.lora_B.weight'].shape, [8, 2])
    const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'))
    assert.equal(
      [cfg.peft_type, cfg.r, cfg.lora_alpha, cfg.target_modules, cfg.use_rslora, cfg.base_model_name_or_path],
      ['LORA', 2, 8, ['qProj'], false, 'toy'],
    )
    const model = fresh()
    importPEFT(model, dir)
    const x = uniform([3, 8])
    assert.equal(bits(model.forward(x)), bits(adapted.forward(x)))
    const l = loraAdapters(model)[0][1],
      src = loraAdapters(adapted)[0][1]
    assert.equal([getAdapter(l, 'default')!.alpha, l.scale], [getAdapter(src, 'default')!.alpha, src.scale])
  }))

test('PEFT: rsLoRA keeps alpha with use_rslora, a given scale becomes lora_alpha = scale·r, mixed ranks go to rank_pattern', () =>
  withDir((dir) => {
    const rs = setup(5, { rank: 4, alpha: 8, useRslora: true }).adapted
    exportPEFT(dir, rs)
    let cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'))
    assert.equal([cfg.r, cfg.lora_alpha, cfg.use_rslora], [4, 8, true])
    const given = setup(6, { rank: 2, scale: 20 }).adapted
    exportPEFT(dir, given)
    cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'))
    assert.equal([cfg.lora_alpha, cfg.use_rslora], [40, false])
    const { adapted, fresh } = setup(7, { rank: 2, targets: ['qProj'] })
    applyLoRA(adapted, { rank: 3, targets: ['vProj'] }) // same name 'default', another rank on other layers
    for (const [, l] of loraAdapters(adapted)) l.loraB.data.set(normal(l.loraB.shape, 0.3).data)
    exportPEFT(dir, adapted)
    cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'))
    assert.equal(cfg.rank_pattern, { 'blocks.0.vProj': 3, 'blocks.1.vProj': 3 })
    const model = fresh()
    importPEFT(model, dir)
    const x = uniform([2, 8])
    assert.equal(bits(model.forward(x)), bits(adapted.forward(x)))
  }))

test('MLX export/import as .safetensors and .npz: lora_a (in, r), lora_b (r, out), scale in adapter_config.json', () =>
  withDir((dir) => {
    const { adapted, fresh } = setup(8, { rank: 2, scale: 20 })
    for (const name of ['adapters.safetensors', 'adapters.npz']) {
      const file = join(dir, name)
      exportMLX(file, adapted)
      const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'))
      assert.match(cfg.tenny_adapters_fnv1a, /^[0-9a-f]{8}$/) // which weights file it was saved with; mlx-lm ignores keys it does not use
      assert.equal(cfg, {
        fine_tune_type: 'lora',
        num_layers: 2,
        lora_parameters: { rank: 2, scale: 20, dropout: 0, keys: ['qProj', 'vProj'] },
        tenny_adapters_fnv1a: cfg.tenny_adapters_fnv1a,
      })
      const arrays = name.endsWith('.npz') ? Object.fromEntries(loadNpz(file)) : loadSafetensors(file).tensors
      assert.equal(arrays['blocks.1.vProj.lora_a'].shape, [8, 2])
      assert.equal(arrays['blocks.1.vProj.lora_b'].shape, [2, 8])
      const src = loraAdapters(adapted)[3][1] // blocks.1.vProj: lora_a = Aᵀ
      assert.is(arrays['blocks.1.vProj.lora_a'].data[1 * 2 + 0], src.loraA.data[0 * 8 + 1])
      const model = fresh()
      importMLX(model, file)
      const x = uniform([3, 8])
      assert.equal(bits(model.forward(x)), bits(adapted.forward(x)), name)
      assert.is(loraAdapters(model)[0][1].scale, 20)
    }
    rmSync(join(dir, 'adapter_config.json'))
    assert.throws(
      () => importMLX(fresh(), join(dir, 'adapters.npz')),
      /pass \{ scale \} \(the original mlx-examples lora\.py used 2\.0\)/,
    )
    const model = fresh()
    importMLX(model, join(dir, 'adapters.npz'), { scale: 20 })
    const x = uniform([2, 8])
    assert.equal(bits(model.forward(x)), bits(adapted.forward(x)))
    assert.throws(() => exportMLX(join(dir, 'a.bin'), adapted), /expected a \.safetensors or \.npz file name/)
  }))

test('.npy: header written by hand is 64-byte aligned; C and Fortran order, float64 read; bad input named', () => {
  const bytes = encodeNpy({ shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) })
  assert.equal(Array.from(bytes.subarray(0, 8)), [0x93, 78, 85, 77, 80, 89, 1, 0])
  const headerLen = bytes[8] | (bytes[9] << 8)
  assert.is((10 + headerLen) % 64, 0)
  const header = new TextDecoder().decode(bytes.subarray(10, 10 + headerLen))
  assert.match(header, /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/)
  assert.equal(decodeNpy(bytes), { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) })
  assert.match(
    new TextDecoder().decode(encodeNpy({ shape: [5], data: new Float32Array(5) }).subarray(10, 80)),
    /'shape': \(5,\)/,
  )
  // numpy.asfortranarray([[1, 2, 3], [4, 5, 6]], '<f8') as .npy, built here byte by byte
  const f = `{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }`.padEnd(117, ' ') + '\n'
  const fortran = new Uint8Array(10 + f.length + 48)
  fortran.set([0x93, 78, 85, 77, 80, 89, 1, 0, f.length, 0])
  fortran.set(new TextEncoder().encode(f), 10)
  const dv = new DataView(fortran.buffer, 10 + f.length)
  for (const [i, v] of [1, 4, 2, 5, 3, 6].entries()) dv.setFloat64(8 * i, v, true)
  assert.equal(decodeNpy(fortran), { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) })
  assert.throws(
    () => decodeNpy(fortran.subarray(0, fortran.length - 8), 'x.npy'),
    /npy: x\.npy: shape \(2,3\) needs 48 data bytes, the file has 40/,
  )
  assert.throws(() => decodeNpy(new Uint8Array(20), 'y.npy'), /not a \.npy file/)
  const ints = new TextEncoder().encode(`{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }`)
  const intFile = new Uint8Array(10 + ints.length + 4)
  intFile.set([0x93, 78, 85, 77, 80, 89, 1, 0, ints.length, 0])
  intFile.set(ints, 10)
  assert.throws(() => decodeNpy(intFile), /dtype "<i4" is not supported/)
})

test('.npz: a stored zip of .npy entries that fflate reads back; a non-zip is named', () =>
  withDir((dir) => {
    const file = join(dir, 'a.npz')
    saveNpz(file, { 'x.lora_a': { shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) } })
    const entries = unzipSync(readFileSync(file))
    assert.equal(Object.keys(entries), ['x.lora_a.npy'])
    assert.equal(loadNpz(file).get('x.lora_a')?.data, Float32Array.from([1, 2, 3, 4]))
    writeFileSync(join(dir, 'bad.npz'), 'hello')
    assert.throws(() => loadNpz(join(dir, 'bad.npz')), /npz: .*bad\.npz: not a readable zip archive/)
  }))

test('named adapters from two files mix by strength on one base (<lora:cwk:0.7>, <lora:rj:0.3>)', () =>
  withDir((dir) => {
    const a = setup(9),
      b = setup(9) // same base (same seed), different adapters
    for (const [, l] of loraAdapters(b.adapted)) l.loraB.data.set(normal(l.loraB.shape, 0.3).data)
    saveAdapters(join(dir, 'cwk.safetensors'), a.adapted)
    const model = a.fresh()
    loadAdapters(model, join(dir, 'cwk.safetensors'), { name: 'cwk' })
    saveAdapters(join(dir, 'rj.safetensors'), b.adapted)
    loadAdapters(model, join(dir, 'rj.safetensors'), { name: 'rj' })
    assert.equal(adapterNames(loraLayers(model)[0][1]), ['cwk', 'rj'])
    assert.is(activeAdapter(loraLayers(model)[0][1]), 'rj')
    const x = uniform([2, 8])
    const y0 = a.baseCopy.blocks[0].qProj.forward(x)
    const dA = sub(a.adapted.blocks[0].qProj.forward(x), y0),
      dB = sub(b.adapted.blocks[0].qProj.forward(x), y0)
    setAdapters(model, { cwk: 0.7, rj: 0.3 })
    const layer = model.blocks[0].qProj as unknown as LoRALinear
    assertClose(layer.forward(x).data, add(y0, add(mul(dA, 0.7), mul(dB, 0.3))).data, { atol: 1e-6 })
  }))

test.run()
