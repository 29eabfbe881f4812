// Pretrain the example's base model: a tiny character-level GPT that reads real English sentences from the
// nlp-corpus npm package (read from node_modules, never fetched) and knows nothing of Tenny.
//   npm run pretrain -- [--iters 1400] [--batch-size 8] [--lr 1e-2] [--seed 1337] [--out examples/base/base.safetensors]
import { readFileSync, readdirSync, mkdirSync } from 'node:fs'
import { join, dirname, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'
import { Tensor, noGrad, manualSeed, nn, optim } from '../src/node' // the entry: it installs the fastest backend
import { CharTokenizer, normalize } from './lib/tokenizer'
import { windowBatch } from './lib/data'
import { saveBase } from './lib/checkpoint'
import { progressBar } from './lib/progress'
import { numberFlag, isMain, runMain } from './lib/cli'

const here = dirname(fileURLToPath(import.meta.url))
export const BASE_PATH = join(here, 'base', 'base.safetensors')

// The model: 0.12M parameters, ~3,300 tokens/s to train on one core of this 2-core CPU when it is not shared.
// Two layers train twice as fast as four and reach the same loss per token seen; what limits a few minutes of
// CPU is tokens, not depth. A 128-character context holds any line of the fine-tune data.
export const CONFIG: nn.GPTConfig = {
  vocabSize: 96,
  blockSize: 128,
  nLayer: 2,
  nHead: 4,
  nEmbd: 64,
  dropout: 0,
  bias: true,
}

const HELP = `npm run pretrain -- [options]
  --iters N         optimizer steps (default 1400)
  --batch-size N    windows of 128 characters per step (default 8)
  --lr X            peak learning rate, cosine-decayed to a tenth (default 1e-2)
  --n-layer N, --n-head N, --n-embd N   model size (default 2, 4, 64)
  --seed N          random seed (default 1337)
  --out FILE        where to write the checkpoint (default examples/base/base.safetensors)`

/** Every sentence of the nlp-corpus package, normalised to the alphabet (sentences it cannot spell are dropped). */
function readCorpus(tokenizer: CharTokenizer): { train: string[]; valid: string[] } {
  const entry = createRequire(import.meta.url).resolve('nlp-corpus') // <package>/src/server/index.js
  const dir = join(dirname(entry), '..', '..', 'builds')
  const files = readdirSync(dir)
    .filter((f) => /^doc-\d+\.json$/.test(f))
    .sort((a, b) => parseInt(a.slice(4)) - parseInt(b.slice(4)))
  if (files.length < 2) throw new Error(`nlp-corpus: expected doc-*.json files in ${dir}, found ${files.length}`)
  const read = (f: string) =>
    (JSON.parse(readFileSync(join(dir, f), 'utf8')) as string[])
      .map((s) => normalize(s).trim())
      .filter((s) => s.length > 0 && tokenizer.findUnknown(s) === null)
  return { train: files.slice(0, -1).flatMap(read), valid: read(files[files.length - 1]) } // the last file is held out
}

/** Mean loss over `batches` fixed windows (the same ones every call, so the numbers compare). */
function evaluate(model: nn.GPT, stream: Uint8Array, batches: { inputs: Tensor; targets: Tensor }[]): number {
  model.eval()
  const loss = noGrad(() => batches.reduce((s, b) => s + model.loss(b.inputs, b.targets).item(), 0) / batches.length)
  model.train()
  return loss
}

export function pretrain(argv: string[] = []): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      iters: { type: 'string', default: '1400' },
      'batch-size': { type: 'string', default: '8' },
      lr: { type: 'string', default: '1e-2' },
      'n-layer': { type: 'string', default: String(CONFIG.nLayer) },
      'n-head': { type: 'string', default: String(CONFIG.nHead) },
      'n-embd': { type: 'string', default: String(CONFIG.nEmbd) },
      seed: { type: 'string', default: '1337' },
      out: { type: 'string', default: BASE_PATH },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) return console.log(HELP)
  const iters = numberFlag('iters', values.iters, { integer: true, min: 1 })
  const batchSize = numberFlag('batch-size', values['batch-size'], { integer: true, min: 1 })
  const lr = numberFlag('lr', values.lr, { min: 0 })
  manualSeed(numberFlag('seed', values.seed, { integer: true }))

  const tokenizer = new CharTokenizer()
  const corpus = readCorpus(tokenizer)
  const encode = (lines: string[]) => Uint8Array.from(tokenizer.encode(lines.join('\n') + '\n', 'corpus'))
  const train = encode(corpus.train),
    valid = encode(corpus.valid)
  console.log(
    `corpus: ${corpus.train.length.toLocaleString('en-US')} English sentences (${(train.length / 1e6).toFixed(1)}M characters), ${corpus.valid.length} held out`,
  )

  const size = (name: 'n-layer' | 'n-head' | 'n-embd') => numberFlag(name, values[name], { integer: true, min: 1 })
  const model = new nn.GPT({
    ...CONFIG,
    vocabSize: tokenizer.vocabSize,
    nLayer: size('n-layer'),
    nHead: size('n-head'),
    nEmbd: size('n-embd'),
  })
  const T = model.config.blockSize
  console.log(`model: ${model.numParameters().toLocaleString('en-US')} parameters, ${JSON.stringify(model.config)}`)
  const opt = new optim.AdamW(model.parameters(), { lr, weightDecay: 0.1, betas: [0.9, 0.99] })
  const schedule = optim.cosineSchedule({
    lr,
    warmupSteps: Math.min(30, Math.ceil(iters / 10)),
    totalSteps: iters,
    minLr: lr / 10,
  })
  const validBatches = Array.from({ length: 4 }, () => windowBatch(valid, batchSize, T))
  const evalEvery = Math.max(1, Math.round(iters / 6))

  const bar = progressBar('pretrain', iters, [
    ['loss', 'loss'],
    ['val', 'val'],
    ['tokps', 'tok/s'],
  ])
  const start = performance.now()
  let val = evaluate(model, valid, validBatches)
  for (let step = 1; step <= iters; step++) {
    opt.lr = schedule(step - 1)
    const { inputs, targets } = windowBatch(train, batchSize, T)
    const loss = model.loss(inputs, targets)
    opt.zeroGrad()
    loss.backward()
    optim.clipGradNorm(model.parameters(), 1)
    opt.step()
    if (step % evalEvery === 0 || step === iters) val = evaluate(model, valid, validBatches)
    const seconds = (performance.now() - start) / 1000
    bar.update(step, {
      loss: loss.item().toFixed(3),
      val: val.toFixed(3),
      tokps: ((step * batchSize * T) / seconds).toFixed(0),
    })
  }
  bar.stop()
  const minutes = (performance.now() - start) / 60000
  console.log(`validation loss ${val.toFixed(3)} nats/char after ${iters} steps in ${minutes.toFixed(1)} min`)

  mkdirSync(dirname(values.out), { recursive: true })
  saveBase(values.out, model, tokenizer, {
    trainedOn: 'nlp-corpus (English sentences)',
    iters: String(iters),
    batchSize: String(batchSize),
    lr: String(lr),
    validLoss: val.toFixed(4),
  })
  console.log(`wrote ${relative(process.cwd(), values.out)}`)
  model.eval()
  const prompt = 'The '
  const ids = model.generate(new Tensor(Float32Array.from(tokenizer.encode(prompt)), [1, prompt.length]), 100, {
    temperature: 0.8,
    seed: 0,
  })
  console.log(`sample: ${JSON.stringify(tokenizer.decode(ids.data))}`)
}

if (isMain(import.meta.url)) runMain(() => pretrain(process.argv.slice(2)))
