// `npx tsx bench/lora.ts [--runs N] [--backend auto|cpu|parallel|wasm]`: what LoRA and QLoRA save on the tiny GPT of issues 3, 4 and 6 — ms per
// training step (all weights, LoRA, and LoRA on a quantized base in each mode), trainable parameters, optimizer
// state, weight storage, and adapter file bytes against a full checkpoint. Medians of a few steps: the machine is shared.
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { noGrad } from '../src/tensor'
import { setBackend, type BackendName } from '../src/node'
import { manualSeed } from '../src/random'
import { GPT } from '../nn/gpt'
import { AdamW } from '../nn/optim'
import { QuantizedLinear, quantize, type QuantizeOptions } from '../nn/quantized'
import { applyLoRA } from '../nn/lora-model'
import { saveAdapters } from '../nn/files/adapters-node'
import { saveCheckpoint } from '../nn/files/checkpoint-node'
import type { Module } from '../nn/module'
import { TINY_GPT, BATCH, ADAMW, LORA, SEED, batchData } from './config'
import { ids } from './tenny-gpt'
import { medianOf } from './timing'

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, backend: { type: 'string', default: 'auto' } },
})
const runs = Number(values.runs)
const info = setBackend(values.backend as BackendName) // what a user gets by default: auto
const T = TINY_GPT.blockSize
const { idx, targets } = batchData(TINY_GPT, BATCH)
const x = ids(idx, BATCH, T),
  y = ids(targets, BATCH, T)
const dir = mkdtempSync(join(tmpdir(), 'tenny-bench-lora-'))

type Setup = { name: string; quant?: QuantizeOptions; lora: boolean }
const setups: Setup[] = [
  { name: 'all weights (full fine-tune)', lora: false },
  { name: `LoRA r=${LORA.rank} on qProj+vProj`, lora: true },
  { name: 'QLoRA, affine 4-bit (group 64)', quant: { mode: 'affine', bits: 4, groupSize: 64 }, lora: true },
  { name: 'QLoRA, affine 8-bit (group 64)', quant: { mode: 'affine', bits: 8, groupSize: 64 }, lora: true },
  { name: 'QLoRA, int8', quant: { mode: 'int8' }, lora: true },
  { name: 'QLoRA, nf4 (block 64)', quant: { mode: 'nf4', groupSize: 64 }, lora: true },
]

/** Bytes of the model's weights as held: float parameters at 4 bytes, quantized layers by their packed size. */
function weightBytes(model: Module): number {
  let bytes = model.numParameters() * 4
  for (const [, m] of model.namedModules())
    if (m instanceof QuantizedLinear) bytes += m.nbytes - (m.bias ? m.bias.size * 4 : 0)
  return bytes
}

function build(setup: Setup): GPT {
  manualSeed(SEED)
  const model = new GPT(TINY_GPT)
  if (setup.quant) quantize(model, setup.quant)
  if (setup.lora) applyLoRA(model, LORA)
  return model
}

const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`
console.log(
  `tiny GPT: vocab ${TINY_GPT.vocabSize}, T ${T}, C ${TINY_GPT.nEmbd}, ${TINY_GPT.nHead} heads, ${TINY_GPT.nLayer} layers, batch ${BATCH}, AdamW; median of ${runs} steps after 1 warm-up; backend ${info.backend} on ${info.threads} thread(s)\n`,
)
console.log('| setup | step ms | forward ms | trainable params | optimizer state | weights held |')
console.log('|---|---:|---:|---:|---:|---:|')
let fullMs = 0
for (const setup of setups) {
  const model = build(setup)
  const opt = new AdamW(model.trainableParameters(), ADAMW)
  const step = medianOf(
    () => {
      opt.zeroGrad()
      model.loss(x, y).backward()
      opt.step()
    },
    { warmup: 1, runs },
  )
  const forward = medianOf(() => noGrad(() => model.forward(x)), { warmup: 1, runs })
  const state = Object.values(opt.stateDict().state).reduce(
    (n, st) => n + Object.values(st.buffers).reduce((m, b) => m + b.byteLength, 0),
    0,
  )
  if (!setup.lora) fullMs = step.value
  const saved = Math.round((100 * (fullMs - step.value)) / fullMs)
  const faster = setup.lora ? ` (${Math.abs(saved)}% ${saved >= 0 ? 'less' : 'more'})` : ''
  console.log(
    `| ${setup.name} | ${step.value.toFixed(0)}${faster} | ${forward.value.toFixed(0)} | ${model.numParameters({ trainable: true }).toLocaleString('en-US')} | ${kb(state)} | ${kb(weightBytes(model))} |`,
  )
}

const full = build(setups[0]),
  adapted = build(setups[1])
saveCheckpoint(join(dir, 'full.safetensors'), full)
saveAdapters(join(dir, 'adapters.safetensors'), adapted)
const fullBytes = statSync(join(dir, 'full.safetensors')).size,
  adapterBytes = statSync(join(dir, 'adapters.safetensors')).size
console.log(
  `\nadapter file ${kb(adapterBytes)} (+ ${statSync(join(dir, 'adapter_config.json')).size} B config) vs full checkpoint ${kb(fullBytes)}: ${(fullBytes / adapterBytes).toFixed(0)}× smaller`,
)
rmSync(dir, { recursive: true, force: true })
