// The benchmark's parity gate, on a tiny config: the tfjs GPT built from Tenny's exported weights must
// give Tenny's first loss (to 1e-4), the same loss after one AdamW step, and the same greedy tokens.
// No timing is asserted anywhere.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { GPTConfig } from '../nn/gpt'
import { TfGPT, useTf, randomWeights } from '../bench/tfjs-gpt'
import { JaxGPT } from '../bench/jaxjs-gpt'
import { ADAMW, LORA, PARITY_TOL, batchData } from '../bench/config'
import { buildTennyGPT, exportWeights, tennyLoss, tennyTrainer, ids } from '../bench/tenny-gpt'
import { compare, markdown } from '../bench/report'
import type { Row } from '../bench/timing'
import { loadTennyBackends } from '../bench/tenny-backends'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const CFG: GPTConfig = { vocabSize: 17, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 16, dropout: 0, bias: true }
const B = 3
const { idx, targets } = batchData(CFG, B)

for (const backend of ['cpu', 'wasm'] as const) {
  test(`bench parity: tfjs ${backend} reproduces Tenny's first loss to 1e-4 and its loss after one AdamW step`, async () => {
    await useTf(backend)
    const model = buildTennyGPT(CFG, 5)
    const tf = new TfGPT(CFG, exportWeights(model))
    const first = tennyLoss(model, idx, targets, B)
    const tfFirst = tf.lossValue(idx, targets, B, CFG.blockSize)
    assert.ok(Math.abs(first - tfFirst) <= PARITY_TOL, `first loss: Tenny ${first}, tfjs ${tfFirst}`)
    const step = tennyTrainer(model, idx, targets, B)
    const tennyLosses = [step(), step()]
    const tfLosses = [tf.step(idx, targets, B, CFG.blockSize, ADAMW), tf.step(idx, targets, B, CFG.blockSize, ADAMW)]
    assert.ok(
      Math.abs(tennyLosses[0] - tfLosses[0]) <= PARITY_TOL,
      `step 1: Tenny ${tennyLosses[0]}, tfjs ${tfLosses[0]}`,
    )
    assert.ok(
      Math.abs(tennyLosses[1] - tfLosses[1]) <= 1e-3,
      `after one AdamW step: Tenny ${tennyLosses[1]}, tfjs ${tfLosses[1]}`,
    )
    assert.ok(tennyLosses[1] < tennyLosses[0], 'the step lowered the loss')
    tf.dispose()
  })
}

test("bench parity: jax-js (jit and eager) reproduces Tenny's first loss and its loss after one AdamW step, and its greedy tokens", () => {
  for (const useJit of [true, false]) {
    const model = buildTennyGPT(CFG, 5)
    const jax = new JaxGPT(CFG, exportWeights(model), ADAMW)
    const first = tennyLoss(model, idx, targets, B)
    assert.ok(
      Math.abs(jax.lossValue(idx, targets, B) - first) <= PARITY_TOL,
      `first loss: Tenny ${first}, jax-js ${jax.lossValue(idx, targets, B)}`,
    )
    const step = tennyTrainer(model, idx, targets, B)
    const tennyLosses = [step(), step()]
    const jaxLosses = [jax.step(idx, targets, B, { useJit }), jax.step(idx, targets, B, { useJit })]
    assert.ok(
      Math.abs(tennyLosses[0] - jaxLosses[0]) <= PARITY_TOL,
      `step 1 (jit ${useJit}): Tenny ${tennyLosses[0]}, jax-js ${jaxLosses[0]}`,
    )
    assert.ok(
      Math.abs(tennyLosses[1] - jaxLosses[1]) <= 1e-3,
      `after one AdamW step (jit ${useJit}): Tenny ${tennyLosses[1]}, jax-js ${jaxLosses[1]}`,
    )
    jax.dispose()
  }
  const model = buildTennyGPT(CFG, 6)
  const jax = new JaxGPT(CFG, exportWeights(model), ADAMW)
  const tenny = Array.from(
    model.generate(ids(new Int32Array([3]), 1, 1), CFG.blockSize - 1, { temperature: 0 }).data.subarray(1),
  )
  assert.equal(Array.from(jax.generate(new Int32Array([3]), CFG.blockSize - 1)), tenny)
  jax.dispose()
})

test('bench parity: tfjs and Tenny generate the same greedy tokens with their KV caches', async () => {
  await useTf('cpu')
  const model = buildTennyGPT(CFG, 6)
  const tf = new TfGPT(CFG, exportWeights(model))
  const tenny = Array.from(
    model.generate(ids(new Int32Array([3]), 1, 1), CFG.blockSize - 1, { temperature: 0 }).data.subarray(1),
  )
  assert.equal(Array.from(tf.generate(new Int32Array([3]), CFG.blockSize - 1)), tenny)
  tf.dispose()
})

test('bench parity: with LoRA on qProj and vProj both engines train only the adapters and agree', async () => {
  await useTf('cpu')
  const model = buildTennyGPT(CFG, 7, { lora: true })
  const tf = new TfGPT(CFG, exportWeights(model), LORA)
  assert.is(tf.trainable.length, 2 * CFG.nLayer * LORA.targets.length) // loraA and loraB of each target
  assert.is(
    tf.trainable.reduce((s, v) => s + v.size, 0),
    model.numParameters({ trainable: true }),
  )
  const step = tennyTrainer(model, idx, targets, B)
  const tennyLosses = [step(), step()]
  const tfLosses = [tf.step(idx, targets, B, CFG.blockSize, ADAMW), tf.step(idx, targets, B, CFG.blockSize, ADAMW)]
  assert.ok(
    Math.abs(tennyLosses[0] - tfLosses[0]) <= PARITY_TOL,
    `first loss: Tenny ${tennyLosses[0]}, tfjs ${tfLosses[0]}`,
  )
  assert.ok(
    Math.abs(tennyLosses[1] - tfLosses[1]) <= 1e-3,
    `after one step: Tenny ${tennyLosses[1]}, tfjs ${tfLosses[1]}`,
  )
  tf.dispose()
})

test("bench: randomWeights are Tenny's GPT parameters by name and shape, and from them tfjs trains as Tenny does", async () => {
  // the memory children build tfjs's model from randomWeights without loading Tenny: the same names and shapes, and
  // the same first loss and first steps from those weights, are what make their rows measure the same workload
  await useTf('cpu')
  for (const lora of [undefined, LORA]) {
    const weights = randomWeights(CFG, lora)
    const model = buildTennyGPT(CFG, 8, { lora: lora !== undefined })
    // Tenny's names, a LoRA layer's base weights under the layer's own path as randomWeights writes them
    const own = new Map([...model.namedParameters()].map(([name, t]) => [name.replace('.base.', '.'), t]))
    assert.equal([...weights.keys()].sort(), [...own.keys()].sort(), `names, LoRA ${lora !== undefined}`)
    for (const [name, w] of weights) {
      assert.equal(w.shape, own.get(name)!.shape, name)
      own.get(name)!.data.set(w.data)
    }
    const tf = new TfGPT(CFG, weights, lora)
    const first = tennyLoss(model, idx, targets, B),
      tfFirst = tf.lossValue(idx, targets, B, CFG.blockSize)
    assert.ok(Math.abs(first - tfFirst) <= PARITY_TOL, `first loss: Tenny ${first}, tfjs ${tfFirst}`)
    const step = tennyTrainer(model, idx, targets, B)
    const tennyLosses = [step(), step(), step()]
    const tfLosses = [0, 1, 2].map(() => tf.step(idx, targets, B, CFG.blockSize, ADAMW))
    for (const i of [0, 1, 2])
      assert.ok(
        Math.abs(tennyLosses[i] - tfLosses[i]) <= 1e-3,
        `step ${i}: Tenny ${tennyLosses[i]}, tfjs ${tfLosses[i]}`,
      )
    assert.ok(tfLosses[2] < tfLosses[0], `tfjs trains: ${tfLosses.join(' → ')}`)
    tf.dispose()
  }
})

test("bench report: the ratio is Tenny's best column over tfjs, and the table says which way it goes", () => {
  const cell = (value: number) => ({ value, method: 'test', samples: 1 })
  const row: Row = {
    section: 's',
    name: 'step',
    unit: 'ms',
    cells: { 'Tenny cpu': cell(300), 'Tenny parallel': cell(200), 'tfjs wasm': cell(100) },
    notes: [],
  }
  const c = compare(row, 'tfjs wasm')!
  assert.is(c.tennyColumn, 'Tenny parallel')
  assert.is(c.tennyOverTfjs, 2)
  assert.is(c.advantage, 0.5)
  const tok: Row = {
    section: 's',
    name: 'gen',
    unit: 'tok/s',
    cells: { 'Tenny cpu': cell(300), 'tfjs wasm': cell(100) },
    notes: [],
  }
  assert.is(compare(tok, 'tfjs wasm')!.advantage, 3)
  const md = markdown([row, tok], {
    date: 'd',
    cpu: 'c',
    cores: 2,
    node: 'n',
    tfjs: 't',
    mode: 'm',
    load: 'l',
    tennyBackends: 'b',
    notes: [],
  })
  assert.ok(md.includes('2.00 (2.00× slower, parallel)'), md)
  assert.ok(md.includes('3.00 (3.00× faster, cpu)'), md)
})

test('bench: Tenny backend columns are those setBackend() accepts; one that fails is skipped with its reason', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'tenny-bench-')), 'backend.mjs')
  writeFileSync(
    file,
    [
      "let current = 'cpu'",
      "export function setBackend(name) { if (name === 'gpujs') throw new Error('no GPU here'); if (name === 'wasm') throw new Error('no SIMD here'); current = name }",
      'export function backendInfo() { return { backend: current } }',
    ].join('\n'),
  )
  const backends = await loadTennyBackends(undefined, pathToFileURL(file))
  assert.equal(backends.names, ['cpu', 'parallel'])
  assert.ok(
    backends.notes.some((n) => n.includes("'gpujs'") && n.includes('no GPU here')),
    backends.notes.join('; '),
  )
  await backends.use('parallel')
  assert.equal(backends.info(), { backend: 'parallel' })
  const absent = await loadTennyBackends(undefined, pathToFileURL(join(file, '..', 'missing.ts')))
  assert.equal(absent.names, ['cpu'])
})

test.run()
