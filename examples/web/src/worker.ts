// The playground's model side, in a Web Worker so the page stays responsive while it trains: the pretrained tiny
// GPT, its answers, LoRA fine-tuning (the loop of examples/lora-finetune.ts, step for step) and adapter files.
// main.ts sends requests (messages.ts); every reply is a posted message. Between training steps the worker
// yields, so a Stop, an Ask or a Download is answered while it trains.
import { Tensor, rngState, setRngState, nn, optim, parseSafetensors, startBackend, useGpujs } from 'tenny'
import * as gpujs from 'gpu.js'
import baseUrl from '../../base/base.safetensors?url'
import trainJsonl from '../../data/train.jsonl?raw'
import validJsonl from '../../data/valid.jsonl?raw'
import { CharTokenizer } from '../../lib/tokenizer'
import { parseJsonl, maskedBatch, inBatches, Batcher } from '../../lib/batches'
import { trainStep, evaluate, schedule, checkFinite, type Batch } from '../../lib/step'
import { FLAGS } from '../../lib/flags'
import { summarize } from './backend'
import { adapterFilesOf, loadAdapterFilesInto } from './adapter-files'
import type { Request, Reply, Settings, LayerReport } from './messages'

const ADAPTER = 'default' // one adapter at a time, as in the Node example
const MAX_TOKENS = 100 // the longest answer, in characters
const SEED = 0 // answers are sampled from the same seeded stream, so a slider move changes only the model
// the Node example's defaults (--lora-dropout, --label-smoothing, --mask), from its flag table; validation more
// often than its --steps-per-eval, for a chart that moves
const [DROPOUT, SMOOTHING, MASK] = [FLAGS.loraDropout.default, FLAGS.labelSmoothing.default, FLAGS.mask.default]
const EVAL_EVERY = 10

let baseBytes: Uint8Array
let tokenizer: CharTokenizer
let model: nn.GPT
let data: { train: number[][]; valid: number[][] }
let training = false
let stopRequested = false

const post = (reply: Reply) => postMessage(reply)

/** A fresh copy of the pretrained base (its .safetensors bytes hold weights, config and alphabet). */
function freshBase(): nn.GPT {
  return nn.checkpointFromBytes(baseBytes, 'base.safetensors')
}

async function start(): Promise<void> {
  post({ type: 'status', text: 'Loading the base model…' })
  const response = await fetch(baseUrl)
  if (!response.ok) throw new Error(`${baseUrl}: HTTP ${response.status}`)
  baseBytes = new Uint8Array(await response.arrayBuffer())
  const alphabet = parseSafetensors(baseBytes, 'base.safetensors').metadata.alphabet
  if (alphabet === undefined) throw new Error('base.safetensors: no tokenizer alphabet in its metadata')
  tokenizer = new CharTokenizer(alphabet)
  model = freshBase()
  // every example, plus the newline that ends its answer (as the Node example encodes them)
  const encode = (text: string, file: string) =>
    parseJsonl(text, file).map((e) => tokenizer.encode(e.text + '\n', `${e.file}:${e.line}`))
  data = { train: encode(trainJsonl, 'train.jsonl'), valid: encode(validJsonl, 'valid.jsonl') }
  post({ type: 'status', text: 'Measuring the backends…' })
  useGpujs(gpujs) // gpu.js is optional for Tenny: the page bundles it, so auto can try WebGL 2 and WebGL
  const backend = summarize(await startBackend('auto'))
  const { nLayer, nEmbd, blockSize } = model.config
  const parameters = model.numParameters().toLocaleString('en-US')
  post({
    type: 'ready',
    backend,
    defaultTargets: ['qProj', 'kProj', 'vProj', 'outProj', 'fc', 'proj', 'lmHead'],
    model: `${parameters} parameters, ${nLayer} layers, ${nEmbd} channels, ${blockSize}-character context`,
    data: `${data.train.length} train and ${data.valid.length} validation examples (examples/data)`,
  })
}

/** The model's continuation of `prompt` up to the first newline, with the adapter scaled by `strength`. */
function answer(prompt: string, temperature: number, strength: number): string {
  const ids = tokenizer.encode(prompt, 'the prompt')
  const T = model.config.blockSize
  if (ids.length >= T) throw new Error(`the prompt is ${ids.length} characters; the model's context is ${T}`)
  const adapted = nn.loraLayers(model).length > 0
  if (adapted) nn.setAdapters(model, { [ADAPTER]: strength })
  const stream = rngState() // sampling reseeds the stream: leave training's draws as they were
  const out = model.generate(
    new Tensor(Float32Array.from(ids), [1, ids.length]),
    Math.min(MAX_TOKENS, T - ids.length),
    { temperature, seed: SEED },
  )
  setRngState(stream)
  if (adapted) nn.setAdapters(model, { [ADAPTER]: 1 })
  return tokenizer.decode(out.data.subarray(ids.length)).split('\n')[0]
}

/** Padded batch of whole examples, masked as in the Node example. */
function batchOf(examples: number[][]): Batch {
  return maskedBatch(examples, model.config.blockSize, MASK, (text) => tokenizer.encode(text))
}

/** Mean loss per predicted character over a whole split (lib/step.ts, as the Node example measures it). */
const lossOn = (examples: number[][], batchSize: number) => evaluate(model, inBatches(examples, batchSize, batchOf))

/**
 * Fine-tune fresh adapters on the base: AdamW on the adapters only, warmup then cosine decay, the step of
 * examples/lib/step.ts. Stop ends it after the current step and keeps what was learned so far.
 */
async function train(s: Settings): Promise<void> {
  model = freshBase()
  nn.applyLoRA(model, { targets: s.targets, rank: s.rank, alpha: s.alpha, dropout: DROPOUT, name: ADAPTER })
  const params = model.trainableParameters()
  const opt = new optim.AdamW(params, { lr: s.learningRate, weightDecay: 0 })
  const lrAt = schedule(s.learningRate, s.iters)
  const batches = new Batcher(data.train, s.batchSize)
  const start = performance.now()
  let step = 0,
    tokens = 0
  post({
    type: 'progress',
    step,
    iters: s.iters,
    trainLoss: lossOn(data.train, s.batchSize),
    validLoss: lossOn(data.valid, s.batchSize),
    tokensPerSecond: 0,
    etaSeconds: 0,
  })
  while (step < s.iters && !stopRequested) {
    opt.lr = lrAt(step)
    const batch = batchOf(batches.next())
    const loss = trainStep(model, opt, params, batch, SMOOTHING)
    step++
    tokens += batch.tokens
    checkFinite('training loss', loss, step, { 'learning rate': s.learningRate, alpha: s.alpha })
    const validLoss = step % EVAL_EVERY === 0 || step === s.iters ? lossOn(data.valid, s.batchSize) : null
    const seconds = (performance.now() - start) / 1000
    post({
      type: 'progress',
      step,
      iters: s.iters,
      trainLoss: loss,
      validLoss,
      tokensPerSecond: tokens / seconds,
      etaSeconds: (seconds / step) * (s.iters - step),
    })
    await new Promise((resolve) => setTimeout(resolve, 0)) // let the page's messages in: Stop, Ask, Download
  }
  post({
    type: 'trained',
    steps: step,
    seconds: (performance.now() - start) / 1000,
    stopped: stopRequested,
    report: report(),
  })
}

/** Per adapted layer: rank(ΔW) ≤ r and the singular values of ΔW (nn.loraReport, printed nowhere). */
function report(): LayerReport[] {
  return nn.loraReport(model, { log: () => {} }).map((r) => ({
    path: r.path,
    rank: r.rank,
    deltaRank: r.deltaRank,
    singularValues: r.singularValues,
    relativeNorm: r.relativeNorm,
  }))
}

/** One request; errors go back as one line. Training runs to its end here while other requests keep arriving. */
async function handle(request: Request): Promise<void> {
  if (request.type === 'stop') {
    stopRequested = training
  } else if (request.type === 'ask') {
    const text = answer(request.prompt, request.temperature, request.strength)
    post({
      type: 'answer',
      prompt: request.prompt,
      text,
      strength: request.strength,
      adapted: nn.loraLayers(model).length > 0,
    })
  } else if (request.type === 'download') {
    post({ type: 'files', layout: request.layout, files: adapterFilesOf(model, request.layout) })
  } else if (training) {
    const what = request.type === 'train' ? 'train again' : 'load adapters'
    throw new Error(`stop the training first (it is still running) before you ${what}`)
  } else if (request.type === 'train') {
    training = true
    stopRequested = false
    try {
      await train(request.settings)
    } finally {
      training = false
    }
  } else {
    const candidate = freshBase() // a bad file leaves the model as it was: it loads into a copy first
    const what = loadAdapterFilesInto(candidate, request.files)
    model = candidate
    post({ type: 'loaded', what, report: report() })
  }
}

const ready = start()
addEventListener('message', (e: MessageEvent<Request>) => {
  ready
    .then(() => handle(e.data))
    .catch((err: unknown) => post({ type: 'error', text: err instanceof Error ? err.message : String(err), training }))
})
ready.catch((err: unknown) =>
  post({
    type: 'error',
    text: `could not start: ${err instanceof Error ? err.message : String(err)}`,
    training: false,
  }),
)
