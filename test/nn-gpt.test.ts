import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { writeFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Tensor, randint, noGrad } from '../src/tensor'
import { manualSeed, rngState, setRngState } from '../src/random'
import { saveSafetensors, loadSafetensors } from '../src/formats/safetensors-node'
import { GPT } from '../nn/gpt'
import { sampleNext, type SampleOptions } from '../nn/sampling'
import { QuantizedLinear, quantize, type QuantizeOptions } from '../nn/quantized'
import { applyLoRA } from '../nn/lora-model'
import { AdamW } from '../nn/optim'
import { buffers } from '../nn/files/checkpoint'
import { TINY_GPT, withDir } from './fixtures'
import { saveCheckpoint, loadCheckpoint } from '../nn/files/checkpoint-node'

const config = TINY_GPT

test('GPT: parameter names follow the module tree, and init is GPT-2 style', () => {
  manualSeed(1)
  const gpt = new GPT(config)
  const names = Array.from(gpt.namedParameters(), ([n]) => n)
  assert.equal(names.slice(0, 8), [
    'wte.weight',
    'wpe.weight',
    'blocks.0.ln1.weight',
    'blocks.0.ln1.bias',
    'blocks.0.attn.qProj.weight',
    'blocks.0.attn.qProj.bias',
    'blocks.0.attn.kProj.weight',
    'blocks.0.attn.kProj.bias',
  ])
  assert.ok(names.includes('blocks.1.mlp.fc.weight') && names.includes('blocks.1.mlp.proj.bias'))
  assert.equal(names.slice(-3), ['lnF.weight', 'lnF.bias', 'lmHead.weight'])
  const std = (t: Tensor) => Math.sqrt(t.data.reduce((s, v) => s + v * v, 0) / t.size)
  const sd = gpt.stateDict()
  assert.ok(Math.abs(std(sd['blocks.0.mlp.fc.weight']) - 0.02) < 0.002)
  assert.ok(Math.abs(std(sd['blocks.0.attn.outProj.weight']) - 0.01) < 0.002) // 0.02 / √(2·nLayer)
  assert.ok(sd['blocks.0.attn.qProj.bias'].data.every((v) => v === 0))
  assert.ok(sd['blocks.1.ln2.weight'].data.every((v) => v === 1))
  assert.equal(gpt.config, { ...config, dropout: 0, bias: true, tieWeights: false })
  assert.throws(() => new GPT({ ...config, nHead: 3 }), /nEmbd 16 is not divisible by nHead 3/)
})

test('GPT: logits are (B, T, vocab), the initial loss is near ln(vocab), and idx longer than blockSize is refused', () => {
  manualSeed(2)
  const gpt = new GPT(config)
  const idx = randint(0, 11, [3, 8])
  assert.equal(gpt.forward(idx).shape, [3, 8, 11])
  const loss = gpt.loss(idx, randint(0, 11, [3, 8])).item()
  assert.ok(Math.abs(loss - Math.log(11)) < 0.1, `loss ${loss}`)
  assert.throws(() => gpt.forward(randint(0, 11, [1, 9])), /9 positions exceed blockSize 8/)
})

test('GPT: changing a future token never changes earlier logits', () => {
  manualSeed(3)
  const gpt = new GPT(config)
  const idx = randint(0, 11, [2, 8])
  const before = gpt.forward(idx).data.slice()
  idx.data[5] = (idx.data[5] + 1) % 11 // row 0, position 5
  const after = gpt.forward(idx).data
  const row = 8 * 11
  assert.equal(Array.from(after.subarray(0, 5 * 11)), Array.from(before.subarray(0, 5 * 11)))
  assert.not.equal(Array.from(after.subarray(5 * 11, row)), Array.from(before.subarray(5 * 11, row)))
  assert.equal(Array.from(after.subarray(row)), Array.from(before.subarray(row))) // row 1 untouched
})

test('GPT.generate: with the cache each new token runs one position through the model; past blockSize each step recomputes the cropped window', () => {
  manualSeed(4)
  const gpt = new GPT(config) // blockSize 8
  const lengths: number[] = []
  const hidden = gpt.hidden.bind(gpt)
  gpt.hidden = (idx, caches) => {
    lengths.push(idx.shape[1])
    return hidden(idx, caches)
  }
  gpt.generate(randint(0, 11, [2, 3]), 9, { temperature: 0 }) // positions 3..11
  // the prompt, then one position per token until the cache holds 8; past that, every position of the cropped
  // window has moved (learned absolute positions), so each step recomputes all 8
  assert.equal(lengths, [3, 1, 1, 1, 1, 1, 8, 8, 8])
  lengths.length = 0
  gpt.generate(randint(0, 11, [2, 3]), 4, { temperature: 0, useCache: false })
  assert.equal(lengths, [3, 4, 5, 6], 'without the cache every step recomputes the context')
})

test('GPT.generate: runs without dropout and restores training mode; maxNewTokens must be an integer ≥ 0', () => {
  manualSeed(5)
  const gpt = new GPT({ ...config, dropout: 0.5 })
  const prompt = randint(0, 11, [1, 3])
  assert.ok(gpt.training)
  const cached = gpt.generate(prompt, 6, { temperature: 0 })
  assert.equal(cached.data, gpt.generate(prompt, 6, { temperature: 0, useCache: false }).data)
  assert.ok(gpt.training && gpt.blocks[0].training, 'training mode restored, down to the blocks')
  gpt.eval()
  gpt.generate(prompt, 1)
  assert.not.ok(gpt.training, 'eval mode kept')
  assert.equal(gpt.generate(prompt, 0).data, prompt.data)
  assert.throws(() => gpt.generate(prompt, -1), /GPT.generate: maxNewTokens must be an integer ≥ 0, got -1/)
  assert.throws(() => gpt.generate(prompt, 1.5), /maxNewTokens must be an integer ≥ 0, got 1.5/)
})

test('sampling refuses NaN and +Infinity logits (an overflowed model answered token 0, a newline, and exited 0); -Infinity masks a token', () => {
  assert.throws(
    () => sampleNext(Float32Array.from([0, 1, 2, 3, NaN, 5]), 2, 3, { temperature: 0 }),
    /sample: row 1 of the logits holds NaN at token 1 \(the model's output overflowed or is NaN\)/,
  )
  assert.throws(
    () => sampleNext(Float32Array.from([0, Infinity, 2]), 1, 3),
    /sample: row 0 of the logits holds Infinity at token 1/,
  )
  assert.equal(Array.from(sampleNext(Float32Array.from([5, -Infinity, 2]), 1, 3, { temperature: 0 })), [0])
  assert.equal(Array.from(sampleNext(Float32Array.from([-Infinity, 1, -Infinity]), 1, 3, { temperature: 1 })), [1])
  manualSeed(13)
  const gpt = new GPT(config)
  applyLoRA(gpt, { rank: 2 })
  for (const p of gpt.trainableParameters()) p.data.fill(1e30) // a strength or scale that overflows float32
  assert.throws(
    () => gpt.generate(randint(0, 11, [1, 3]), 4, { temperature: 0 }),
    /sample: row 0 of the logits holds NaN/,
  )
})

test('GPT.generate: the KV cache gives the same tokens as recomputing the full context, greedy and sampled, past blockSize', () => {
  manualSeed(4)
  const gpt = new GPT(config)
  const prompt = randint(0, 11, [2, 3])
  const greedy = gpt.generate(prompt, 12, { temperature: 0 })
  assert.equal(greedy.shape, [2, 15])
  assert.equal(Array.from(greedy.data.subarray(0, 3)), Array.from(prompt.data.subarray(0, 3)))
  assert.equal(greedy.data, gpt.generate(prompt, 12, { temperature: 0, useCache: false }).data)
  for (const opts of [{ seed: 7 }, { seed: 8, temperature: 0.7, topK: 4 }, { seed: 9, topP: 0.8 }]) {
    const cached = gpt.generate(prompt, 12, opts)
    assert.equal(cached.data, gpt.generate(prompt, 12, { ...opts, useCache: false }).data, JSON.stringify(opts))
    assert.equal(cached.data, gpt.generate(prompt, 12, opts).data, 'the seed makes it reproducible')
  }
  assert.ok(greedy.data.every((v) => Number.isInteger(v) && v >= 0 && v < 11))
})

test('GPT: overfits one small batch', () => {
  manualSeed(5)
  const gpt = new GPT(config)
  const idx = randint(0, 11, [2, 8]),
    targets = randint(0, 11, [2, 8])
  const opt = new AdamW(gpt.parameters(), { lr: 1e-2, weightDecay: 0 })
  let loss = 0
  for (let i = 0; i < 60; i++) {
    const l = gpt.loss(idx, targets)
    opt.zeroGrad()
    l.backward()
    opt.step()
    loss = l.item()
  }
  assert.ok(loss < 0.05, `loss after 60 steps: ${loss}`)
})

test('GPT: tied weights share one Tensor, are counted once, and train through both uses', () => {
  manualSeed(6)
  const gpt = new GPT({ ...config, tieWeights: true })
  assert.is(gpt.stateDict()['lmHead.weight'], gpt.wte.weight)
  assert.is(gpt.parameters().filter((p) => p === gpt.wte.weight).length, 1)
  assert.is(gpt.numParameters(), new GPT(config).numParameters() - 11 * 16)
  gpt.loss(randint(0, 11, [1, 4]), randint(0, 11, [1, 4])).backward()
  assert.ok(gpt.wte.weight.grad!.data.some((v) => v !== 0))
})

test('saveCheckpoint / loadCheckpoint: weights, config and generation round-trip bitwise (tied too)', () => {
  withDir((dir) => {
    for (const tieWeights of [false, true]) {
      manualSeed(7)
      const gpt = new GPT({ ...config, tieWeights, bias: false })
      const path = join(dir, `m${tieWeights}.safetensors`)
      saveCheckpoint(path, gpt)
      const keys = Object.keys(loadSafetensors(path).tensors)
      assert.is(keys.includes('lmHead.weight'), !tieWeights)
      assert.ok(!keys.some((k) => k.endsWith('qProj.bias')))
      const stream = rngState()
      const back = loadCheckpoint(path)
      assert.equal(rngState(), stream, 'loading leaves the random stream alone')
      assert.equal(back.config, gpt.config)
      for (const [name, t] of Object.entries(gpt.stateDict())) assert.equal(back.stateDict()[name].data, t.data, name)
      if (tieWeights) assert.is(back.stateDict()['lmHead.weight'], back.wte.weight)
      const prompt = new Tensor(new Float32Array([1, 2]), [1, 2])
      assert.equal(back.generate(prompt, 5, { temperature: 0 }).data, gpt.generate(prompt, 5, { temperature: 0 }).data)
    }
  })
})

test('loadCheckpoint: missing config, bad config, missing / unexpected / mis-shaped tensors and corrupt files are named errors', () => {
  withDir((dir) => {
    manualSeed(8)
    const gpt = new GPT(config)
    const sd = gpt.stateDict()
    const meta = { config: JSON.stringify(config) }
    const at = (name: string) => join(dir, name)
    saveSafetensors(at('noconfig'), sd)
    assert.throws(() => loadCheckpoint(at('noconfig')), /noconfig: no 'config' in the metadata/)
    saveSafetensors(at('badjson'), sd, { config: '{' })
    assert.throws(() => loadCheckpoint(at('badjson')), /config is not valid JSON/)
    saveSafetensors(at('badconfig'), sd, { config: JSON.stringify({ ...config, nLayer: 0 }) })
    assert.throws(() => loadCheckpoint(at('badconfig')), /config.nLayer must be a positive integer, got 0/)
    const { 'lnF.bias': _, ...missing } = sd
    saveSafetensors(at('missing'), missing, meta)
    assert.throws(() => loadCheckpoint(at('missing')), /missing: missing tensor\(s\) lnF.bias/)
    saveSafetensors(at('extra'), { ...sd, 'blocks.2.ln1.weight': sd['lnF.bias'] }, meta)
    assert.throws(() => loadCheckpoint(at('extra')), /unexpected tensor\(s\) blocks.2.ln1.weight/)
    saveSafetensors(at('shape'), { ...sd, 'lnF.bias': new Tensor(new Float32Array(3), [3]) }, meta)
    assert.throws(() => loadCheckpoint(at('shape')), /lnF.bias has shape \(3\) in the file but \(16\) in the model/)
    saveSafetensors(at('int'), { ...sd, 'lnF.bias': { dtype: 'I8', shape: [16], data: new Int8Array(16) } }, meta)
    assert.throws(() => loadCheckpoint(at('int')), /'lnF.bias' is stored as I8/)
    saveCheckpoint(at('good'), gpt)
    const bytes = readFileSync(at('good'))
    writeFileSync(at('cut'), bytes.subarray(0, bytes.length - 10))
    assert.throws(() => loadCheckpoint(at('cut')), /cut: tensors cover \d+ bytes but the data section is/)
  })
})

test('saveCheckpoint / loadCheckpoint: a quantized GPT (each mode, all or some layers) round-trips; logits and generation are bitwise equal', () => {
  withDir((dir) => {
    const modes: [QuantizeOptions, ((path: string) => boolean)?][] = [
      [{ mode: 'affine', bits: 4, groupSize: 16 }],
      [{ mode: 'affine', bits: 8, groupSize: 16 }, (p) => p.includes('attn')],
      [{ mode: 'affine', bits: 2, groupSize: 16 }],
      [{ mode: 'int8' }],
      [{ mode: 'nf4', groupSize: 16 }, (p) => !p.startsWith('lmHead')],
    ]
    for (const [opts, filter] of modes) {
      manualSeed(12)
      const gpt = new GPT(config)
      const { paths } = quantize(gpt, { ...opts, filter })
      assert.ok(paths.length > 0)
      const path = join(dir, 'q.safetensors')
      saveCheckpoint(path, gpt)
      const saved = JSON.parse(loadSafetensors(path).metadata.quantized)
      assert.equal(Object.keys(saved), paths)
      const first = gpt.getModule(paths[0]) as QuantizedLinear
      assert.equal(saved[paths[0]], { mode: first.mode, bits: first.bits, groupSize: first.groupSize })
      const back = loadCheckpoint(path)
      for (const [name, m] of gpt.namedModules())
        if (name) assert.is(back.getModule(name).constructor, m.constructor, name)
      const idx = randint(0, 11, [2, 8]),
        label = JSON.stringify(opts)
      assert.equal(back.forward(idx).data, gpt.forward(idx).data, label)
      assert.equal(back.generate(idx, 4, { temperature: 0 }).data, gpt.generate(idx, 4, { temperature: 0 }).data, label)
    }
  })
})

test('saveCheckpoint / loadCheckpoint of quantized models: a LoRA model is refused; bad quantized metadata and missing or mis-shaped buffers are named errors', () => {
  withDir((dir) => {
    manualSeed(13)
    const at = (name: string) => join(dir, name)
    const lora = new GPT(config)
    applyLoRA(lora, { rank: 2 })
    assert.throws(
      () => saveCheckpoint(at('lora'), lora),
      /checkpointToBytes: 'blocks.0.attn.qProj' is a LoRALinear, which a checkpoint cannot rebuild; merge LoRA layers first \(mergeLoRA\)/,
    )
    const gpt = new GPT(config)
    quantize(gpt, { mode: 'affine', bits: 4, groupSize: 16 })
    const tensors = { ...gpt.stateDict(), ...buffers(gpt) }
    const q4 = { mode: 'affine', bits: 4, groupSize: 16 }
    const meta = (quantized: unknown) => ({ config: JSON.stringify(config), quantized: JSON.stringify(quantized) })
    const all = Object.fromEntries(
      Array.from(gpt.namedModules())
        .filter(([, m]) => m instanceof QuantizedLinear)
        .map(([p]) => [p, q4]),
    )
    saveSafetensors(at('plain'), tensors, { config: JSON.stringify(config) })
    assert.throws(() => loadCheckpoint(at('plain')), /plain: missing tensor\(s\) blocks.0.attn.qProj.weight/) // codes without the metadata saying which layers are quantized
    saveSafetensors(at('notlinear'), tensors, meta({ ...all, lnF: q4 }))
    assert.throws(
      () => loadCheckpoint(at('notlinear')),
      /notlinear: the metadata 'quantized' names 'lnF', which is not a Linear layer of this config/,
    )
    saveSafetensors(
      at('mode'),
      tensors,
      meta({ ...all, 'blocks.0.attn.qProj': { mode: 'fp8', bits: 8, groupSize: 16 } }),
    )
    assert.throws(
      () => loadCheckpoint(at('mode')),
      /the metadata 'quantized': 'blocks.0.attn.qProj' must be \{ mode: 'affine' \| 'int8' \| 'nf4', bits, groupSize \}, got \{"mode": "fp8"/,
    )
    saveSafetensors(at('group'), tensors, meta({ ...all, 'blocks.0.attn.qProj': { ...q4, groupSize: 12 } }))
    assert.throws(
      () => loadCheckpoint(at('group')),
      /'blocks.0.attn.qProj': quantize: groupSize must be a positive multiple of 8 for affine 4-bit, got 12/,
    )
    const { 'blocks.1.mlp.fc.scales': _, ...noScales } = tensors
    saveSafetensors(at('noscales'), noScales, meta(all))
    assert.throws(() => loadCheckpoint(at('noscales')), /noscales: missing tensor\(s\) blocks.1.mlp.fc.scales/)
    saveSafetensors(at('bits'), tensors, meta({ ...all, 'blocks.0.attn.qProj': { ...q4, bits: 8 } }))
    assert.throws(
      () => loadCheckpoint(at('bits')),
      /bits: blocks.0.attn.qProj.codes is U32 \(16,2\) in the file but U32 \(16,4\) in the model/,
    )
    saveCheckpoint(at('good'), gpt)
    assert.equal(loadCheckpoint(at('good')).forward(randint(0, 11, [1, 4])).shape, [1, 4, 11])
  })
})

test('resuming from a checkpoint (model + AdamW state + RNG) equals uninterrupted training bitwise', () => {
  withDir((dir) => {
    const cfg = { ...config, dropout: 0.1 } // dropout draws from the stream, so the RNG state matters
    const batch = () => [randint(0, 11, [2, 8]), randint(0, 11, [2, 8])]
    const trainStep = (gpt: GPT, opt: AdamW) => {
      const [x, y] = batch()
      opt.zeroGrad()
      gpt.loss(x, y).backward()
      opt.step()
    }
    manualSeed(9)
    const a = new GPT(cfg)
    const optA = new AdamW(a.parameters(), { lr: 3e-3 })
    for (let i = 0; i < 3; i++) trainStep(a, optA)
    saveCheckpoint(join(dir, 'ckpt.safetensors'), a)
    const optState = optA.stateDict()
    const stream = rngState()
    for (let i = 0; i < 3; i++) trainStep(a, optA)

    manualSeed(123) // a different stream and different init, all overwritten by the checkpoint
    const b = loadCheckpoint(join(dir, 'ckpt.safetensors'))
    const optB = new AdamW(b.parameters(), { lr: 3e-3 })
    optB.loadStateDict(optState)
    setRngState(stream)
    for (let i = 0; i < 3; i++) trainStep(b, optB)
    for (const [name, t] of Object.entries(a.stateDict())) assert.equal(b.stateDict()[name].data, t.data, name)
    a.eval()
    b.eval()
    assert.equal(
      noGrad(() => b.generate(new Tensor(new Float32Array([1]), [1, 1]), 4, { seed: 1 }).data),
      noGrad(() => a.generate(new Tensor(new Float32Array([1]), [1, 1]), 4, { seed: 1 }).data),
    )
  })
})

test('sampling settings from plain JavaScript: a null temperature, topK or topP is refused in one line', () => {
  const logits = Float32Array.from([0, 1, 2])
  for (const [options, message] of [
    [{ temperature: null }, /^sample: temperature must be a number ≥ 0, got null$/],
    [{ temperature: '1' }, /^sample: temperature must be a number ≥ 0, got "1"$/],
    [{ topK: null }, /^sample: topK must be a positive integer, got null$/],
    [{ topP: null }, /^sample: topP must be in \(0, 1\], got null$/],
  ] as const)
    assert.throws(() => sampleNext(logits, 1, 3, options as unknown as SampleOptions), message)
  assert.equal(Array.from(sampleNext(logits, 1, 3, null as unknown as SampleOptions)).length, 1, 'null: the defaults')
})

test.run()
