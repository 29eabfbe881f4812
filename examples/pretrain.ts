// Pretrain the example's base model: a tiny character-level GPT that reads real English sentences from the
// nlp-corpus npm package (read from node_modules, never fetched) and knows nothing of Tenny.
// `npm run pretrain -- --help` lists its flags (the table in lib/flags.ts).
import { readFileSync, readdirSync, mkdirSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { createRequire } from 'node:module'
import { Tensor, manualSeed, nn, optim } from '../src/node' // the entry: it installs the fastest backend
import { CharTokenizer, normalize } from './lib/tokenizer'
import { windowBatch } from './lib/data'
import { saveBase } from './lib/checkpoint'
import { parseFlags, helpText } from './lib/flags'
import { evaluate, schedule } from './lib/step'
import { progressBar } from './lib/progress'
import { runMain } from './lib/cli'
import { BASE_PATH, shown } from './lib/paths'

// The model: 0.12M parameters at the default size, ~3,300 tokens/s to train on one core of this 2-core CPU when it
// is not shared. Two layers train twice as fast as four and reach the same loss per token seen; what limits a few
// minutes of CPU is tokens, not depth. A 128-character context holds any line of the fine-tune data.
const BLOCK_SIZE = 128

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

runMain(() => {
  const flags = parseFlags('pretrain', process.argv.slice(2))
  if (flags === 'help') return console.log(helpText('pretrain'))
  const { iters, batchSize, lr } = flags
  manualSeed(flags.seed)

  const tokenizer = new CharTokenizer()
  const corpus = readCorpus(tokenizer)
  const encode = (lines: string[]) => Uint8Array.from(tokenizer.encode(lines.join('\n') + '\n', 'corpus'))
  const train = encode(corpus.train),
    valid = encode(corpus.valid)
  const sentences = corpus.train.length.toLocaleString('en-US')
  const millions = (train.length / 1e6).toFixed(1)
  console.log(`corpus: ${sentences} English sentences (${millions}M characters), ${corpus.valid.length} held out`)

  const { nLayer, nHead, nEmbd } = flags
  const model = new nn.GPT({
    vocabSize: tokenizer.vocabSize,
    blockSize: BLOCK_SIZE,
    nLayer,
    nHead,
    nEmbd,
    dropout: 0,
    bias: true,
  })
  const T = model.config.blockSize
  console.log(`model: ${model.numParameters().toLocaleString('en-US')} parameters, ${JSON.stringify(model.config)}`)
  const opt = new optim.AdamW(model.parameters(), { lr, weightDecay: 0.1, betas: [0.9, 0.99] })
  const lrAt = schedule(lr, iters, Math.min(30, Math.ceil(iters / 10)))
  // the same 4 windows every evaluation, so the numbers compare
  const validBatches = Array.from({ length: 4 }, () => windowBatch(valid, batchSize, T))
  const evalEvery = Math.max(1, Math.round(iters / 6))

  const bar = progressBar('pretrain', iters, { loss: 'loss', val: 'val', tokps: 'tok/s' })
  const start = performance.now()
  let val = evaluate(model, validBatches)
  for (let step = 1; step <= iters; step++) {
    opt.lr = lrAt(step - 1)
    const { inputs, targets } = windowBatch(train, batchSize, T)
    const loss = model.loss(inputs, targets)
    opt.zeroGrad()
    loss.backward()
    optim.clipGradNorm(model.parameters(), 1)
    opt.step()
    if (step % evalEvery === 0 || step === iters) val = evaluate(model, validBatches)
    const tokps = ((step * batchSize * T) / ((performance.now() - start) / 1000)).toFixed(0)
    bar.update(step, { loss: loss.item().toFixed(3), val: val.toFixed(3), tokps })
  }
  bar.stop()
  const minutes = (performance.now() - start) / 60000
  console.log(`validation loss ${val.toFixed(3)} nats/char after ${iters} steps in ${minutes.toFixed(1)} min`)

  const out = flags.out ?? BASE_PATH
  mkdirSync(dirname(out), { recursive: true })
  const notes = { trainedOn: 'nlp-corpus (English sentences)', iters: String(iters), batchSize: String(batchSize) }
  saveBase(out, model, tokenizer, { ...notes, lr: String(lr), validLoss: val.toFixed(4) })
  console.log(`wrote ${shown(out)}`)
  model.eval()
  const prompt = 'The '
  const ids = model.generate(new Tensor(Float32Array.from(tokenizer.encode(prompt)), [1, prompt.length]), 100, {
    temperature: 0.8,
    seed: 0,
  })
  console.log(`sample: ${JSON.stringify(tokenizer.decode(ids.data))}`)
})
