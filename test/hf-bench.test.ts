// The Hugging Face bench rows' smoke path (bench/suite-hf.ts), on the tiny fixtures: each child measures the workload
// it claims. Tenny's child (bench/hf-child.ts) and PyTorch's (bench/hf-torch.py) train the same batch on the same
// folder, so their first losses agree and they train as many adapter parameters; the QLoRA child's base is really
// quantized; the tfjs and jax-js peers (bench/hf-peer-child.ts) start from the same loss; jax-js's LoRA GPT trains
// as Tenny's does. No timing is asserted.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { cpSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { JaxLoRAGPT } from '../bench/jaxjs-gpt'
import { ADAMW, LORA, PARITY_TOL, batchData } from '../bench/config'
import { buildTennyGPT, exportWeights, tennyTrainer } from '../bench/tenny-gpt'
import { runChild, runTorch, runPeer, modelRows, type TorchReport } from '../bench/suite-hf'
import type { HFReport } from '../bench/hf-child'
import type { GPTConfig } from '../nn/gpt'
import { withDir } from './fixtures'

const MODELS = 'test/fixtures/hf'
const TINY = ['--tokens=16', '--new=8', '--steps=1']

/** A report, or the failure the suite would have put in a note. */
function report<T>(r: T | string, what: string): T {
  if (typeof r === 'string') throw new Error(`${what}: ${r}`)
  return r
}

/** Tenny's and PyTorch's children on one folder: the same first loss (LoRA's B starts at zero), as many adapters. */
function sameWorkload(dir: string, name: string): { tenny: HFReport; torch: TorchReport | string } {
  const tenny = report(runChild(dir, { extra: TINY }), `Tenny on ${name}`)
  assert.ok(tenny.stepMs > 0 && tenny.decodeTokS > 0 && tenny.peakMB > 0, JSON.stringify(tenny))
  const torch = runTorch(dir, ['--tokens=16', '--new=8'])
  if (typeof torch === 'string') assert.ok(torch.startsWith('skipped: '), torch)
  else {
    assert.ok(
      Math.abs(torch.firstLoss - tenny.firstLoss) <= PARITY_TOL,
      `${name}: ${tenny.firstLoss} ${torch.firstLoss}`,
    )
    assert.is(torch.trainable, tenny.trainable, `${name}: adapter parameters`)
  }
  return { tenny, torch }
}

test('hf bench: Tenny`s and PyTorch`s children train the same Llama batch (same first loss, same adapters)', () => {
  const { tenny } = sameWorkload(join(MODELS, 'llama-tied-f32'), 'llama')
  assert.match(tenny.trained, 'LoRA r=8 on q_proj, v_proj')
  assert.is(tenny.trainable, 2 * 8 * (32 + 32 + 32 + 16)) // 2 layers × r · (in + out): q 32 → 32, v 32 → 16
})

test('hf bench: on GPT-2 (dropout off, since each engine draws its own masks) PyTorch`s c_attn LoRA is Tenny`s', () =>
  withDir((dir) => {
    cpSync(join(MODELS, 'gpt2-f32'), dir, { recursive: true })
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 }))
    const { tenny } = sameWorkload(dir, 'gpt2')
    assert.is(tenny.trainable, 2 * 8 * (32 + 96)) // 2 layers × r · (in + out) of the fused c_attn (32 → 96)
  }))

test('hf bench: the QLoRA child quantizes the base (a loss near, not equal to, the float one) and trains LoRA', () => {
  const dir = join(MODELS, 'llama-tied-f32')
  const lora = report(runChild(dir, { extra: TINY }), 'LoRA')
  const qlora = report(runChild(dir, { qlora: true, extra: [...TINY, '--group=16'] }), 'QLoRA')
  assert.match(qlora.trained, /^QLoRA: 14 layers affine 4-bit \(groups of 16\)/)
  assert.ok(qlora.firstLoss !== lora.firstLoss && Math.abs(qlora.firstLoss - lora.firstLoss) < 0.2, qlora.trained)
  assert.is(qlora.trainable, lora.trainable)
  assert.ok(Number.isNaN(qlora.decodeTokS ?? NaN), 'the QLoRA child measures the training step alone')
})

test('hf bench: the tfjs and jax-js peers start from the same loss at the tiny shape, and fill their columns', () => {
  const tfjs = report(runPeer('tfjs', { tiny: true }), 'tfjs')
  const jaxjs = report(runPeer('jaxjs', { tiny: true }), 'jax-js')
  assert.ok(Math.abs(tfjs.firstLoss - jaxjs.firstLoss) <= PARITY_TOL, `${tfjs.firstLoss} ${jaxjs.firstLoss}`)
  const rows = modelRows('gpt2', {
    lora: 'not run',
    qlora: 'not run',
    torch: 'skipped: no torch',
    peers: { tfjs, jaxjs },
  })
  const step = rows.find((r) => r.name.startsWith('LoRA step'))!
  assert.is(step.cells['tfjs wasm']!.value, tfjs.stepMs)
  assert.is(step.cells['jax-js jit']!.value, jaxjs.stepMs)
  assert.is(step.cells['Tenny auto'], null)
  assert.ok(rows[0].notes.includes('PyTorch: skipped: no torch'), rows[0].notes.join('; '))
})

test('hf bench: jax-js`s LoRA GPT trains only the adapters, as Tenny`s does (losses over three steps)', () => {
  const cfg: GPTConfig = { vocabSize: 17, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 16, dropout: 0, bias: true }
  const B = 3
  const { idx, targets } = batchData(cfg, B)
  const model = buildTennyGPT(cfg, 7, { lora: true })
  const jax = new JaxLoRAGPT(cfg, exportWeights(model), ADAMW, LORA)
  const step = tennyTrainer(model, idx, targets, B)
  const tenny = [step(), step(), step()]
  const jaxLosses = [0, 1, 2].map(() => jax.step(idx, targets))
  for (const i of [0, 1, 2])
    assert.ok(Math.abs(tenny[i] - jaxLosses[i]) <= 1e-3, `step ${i}: Tenny ${tenny[i]}, jax-js ${jaxLosses[i]}`)
  assert.ok(jaxLosses[2] < jaxLosses[0], `jax-js trains: ${jaxLosses.join(' → ')}`)
  jax.dispose()
})

test.run()
