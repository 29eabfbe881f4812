// The playground's model side, in a Web Worker so the page stays responsive while it trains: the pretrained tiny
// GPT, its answers, LoRA fine-tuning (the loop of examples/lora-finetune.ts, step for step, with its defaults and
// its rule for which adapters to keep) and adapter files. main.ts sends requests (messages.ts); every reply is a
// posted message. Training runs steps back to back and, a few times a second, posts its progress and yields, so a
// Stop, an Ask or a Download is answered while it trains.
import { Tensor, manualSeed, rngState, setRngState, nn, optim, parseSafetensors, startBackend, useGpujs } from 'tenny'
import * as gpujs from 'gpu.js'
import baseUrl from '../../base/base.safetensors?url'
import trainJsonl from '../../data/first-click/train.jsonl?raw'
import validJsonl from '../../data/first-click/valid.jsonl?raw'
import { CharTokenizer } from '../../lib/tokenizer'
import { parseJsonl, maskedBatch, inBatches, Batcher } from '../../lib/batches'
import { trainStep, evaluate, schedule, checkFinite, snapshot, restore, EVAL_BATCH, type Batch } from '../../lib/step'
import { FLAGS } from '../../lib/flags'
import { summarize } from './backend'
import { FIRST_CLICK } from './defaults'
import { handleOwn } from './own-worker'
import { adapterFilesOf, loadAdapterFilesInto } from './adapter-files'
import type { Request, Reply, Settings, LayerReport, BackendChoice } from './messages'

const ADAPTER = 'default' // one adapter at a time, as in the Node example
const MAX_TOKENS = 100 // the longest answer, in characters
const SEED = 0 // answers are sampled from the same seeded stream, so a slider move changes only the model
// what the page does not ask for is the Node example's default (--lora-dropout, --label-smoothing, --mask)
const [DROPOUT, SMOOTHING, MASK] = [FLAGS.loraDropout.default, FLAGS.labelSmoothing.default, FLAGS.mask.default]
const POST_EVERY_MS = 250 // progress a few times a second: often enough to watch, rare enough to cost nothing

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

async function start(backend: BackendChoice): Promise<void> {
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
  post({ type: 'status', text: backend.name ? `Starting ${backend.name}…` : 'Measuring the backends…' })
  useGpujs(gpujs) // gpu.js is optional for Tenny: the page bundles it, so auto can try WebGL 2 and WebGL
  const options = backend.threads ? { threads: backend.threads } : {}
  const summary = summarize(await startBackend(backend.name ?? 'auto', options))
  const { nLayer, nEmbd, blockSize } = model.config
  const parameters = model.numParameters().toLocaleString('en-US')
  post({
    type: 'ready',
    backend: summary,
    targets: layerNames(model),
    defaults: FIRST_CLICK,
    model: `${parameters} parameters, ${nLayer} layers, ${nEmbd} channels, ${blockSize}-character context`,
    data: `${data.train.length} train and ${data.valid.length} validation examples (examples/data/first-click)`,
  })
}

/** The names an adapter can target: the last part of each layer's path that LoRA can wrap, in model order. */
function layerNames(model: nn.GPT): string[] {
  const adaptable = (m: unknown) => m instanceof nn.Linear || m instanceof nn.Conv1D || m instanceof nn.QuantizedLinear
  const paths = [...model.namedModules()].filter(([path, m]) => path !== '' && adaptable(m)).map(([path]) => path)
  return [...new Set(paths.map((path) => path.split('.').pop()!))]
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

/** Mean loss per predicted character over a whole split (lib/step.ts, in the Node example's batches). */
const lossOn = (examples: number[][]) => evaluate(model, inBatches(examples, EVAL_BATCH, batchOf))

/**
 * Fine-tune fresh adapters on the base as `npm run example` does: AdamW on the adapters only, warmup then cosine
 * decay, the step of examples/lib/step.ts; every `stepsPerEval` steps (and at the last) the validation loss, and
 * the adapters of the lowest are kept. Stop ends it after the current step; the last step is validated too.
 */
async function train(s: Settings): Promise<void> {
  model = freshBase()
  manualSeed(FLAGS.seed.default) // the adapters' initial values and the batches' order as in `npm run example`
  nn.applyLoRA(model, { targets: s.targets, rank: s.rank, alpha: s.alpha, dropout: DROPOUT, name: ADAPTER })
  const params = model.trainableParameters()
  const opt = new optim.AdamW(params, { lr: s.learningRate, weightDecay: 0 })
  const lrAt = schedule(s.learningRate, s.iters)
  const batches = new Batcher(data.train, s.batchSize)
  const lower = { 'learning rate': s.learningRate, alpha: s.alpha }
  // the base's losses, before the clock starts (Node measures them before its loop too)
  const before = { train: lossOn(data.train), valid: lossOn(data.valid) }
  let kept = { step: 0, loss: before.valid, weights: snapshot(params) },
    last = { step: 0, loss: before.valid }, // the latest validation
    step = 0,
    tokens = 0,
    window: number[] = [] // the train losses since the last progress message
  const progress = (validLoss: number | null, seconds: number, trainLoss = mean(window)) => {
    const best = { step: kept.step, loss: kept.loss }
    post({ type: 'progress', step, iters: s.iters, trainLoss, validLoss, tokens, seconds, kept: best })
    window = []
  }
  const validate = () => {
    last = { step, loss: lossOn(data.valid) }
    checkFinite('validation loss', last.loss, step, lower)
    if (last.loss < kept.loss) kept = { step, loss: last.loss, weights: snapshot(params) }
    return last.loss
  }
  progress(before.valid, 0, before.train)
  const start = performance.now()
  let posted = start
  while (step < s.iters && !stopRequested) {
    opt.lr = lrAt(step)
    const batch = batchOf(batches.next())
    const loss = trainStep(model, opt, params, batch, SMOOTHING)
    step++
    tokens += batch.tokens
    checkFinite('training loss', loss, step, lower)
    window.push(loss)
    const validLoss = step % s.stepsPerEval === 0 || step === s.iters ? validate() : null
    const now = performance.now()
    if (validLoss === null && now - posted < POST_EVERY_MS) continue
    progress(validLoss, (now - start) / 1000)
    posted = now
    await messagesIn() // Stop, Ask, Download: answered between two steps
  }
  if (last.step !== step) progress(validate(), (performance.now() - start) / 1000) // stopped: the last step counts
  const seconds = (performance.now() - start) / 1000
  restore(params, kept.weights)
  post({
    type: 'trained',
    steps: step,
    seconds,
    tokens,
    stopped: stopRequested,
    kept: { step: kept.step, loss: kept.loss },
    last,
    report: report(),
  })
}

/** The mean of the train losses since the last message; null if no step ran since (a Stop right after it). */
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null)

/**
 * Let the messages that arrived while training ran be handled, then go on. A MessageChannel message is queued
 * behind them without the ≥ 4 ms a nested setTimeout waits in a browser.
 */
const channel = new MessageChannel()
/** Between two steps of your own model's training: the messages in, then whether Stop was pressed. */
const pause = () => messagesIn().then(() => stopRequested)
function messagesIn(): Promise<void> {
  return new Promise((resolve) => {
    channel.port1.onmessage = () => resolve()
    channel.port2.postMessage(null)
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
async function handle(request: Exclude<Request, { type: 'start' }>): Promise<void> {
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
  } else if (request.type === 'own-ask' || request.type === 'own-download') {
    await handleOwn(request, { post, pause })
  } else if (training) {
    const what =
      request.type === 'load' ? 'load adapters' : request.type === 'open-model' ? 'open a model' : 'train again'
    throw new Error(`stop the training first (it is still running) before you ${what}`)
  } else if (request.type === 'open-model' || request.type === 'own-train') {
    training = request.type === 'own-train'
    stopRequested = false
    try {
      await handleOwn(request, { post, pause })
    } finally {
      training = false
    }
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

// the page's first message says which backend to start (auto unless its address asks for one); the rest wait for it
let ready: Promise<void> | null = null
addEventListener('message', (e: MessageEvent<Request>) => {
  const request = e.data
  if (request.type === 'start') {
    ready = start(request.backend)
    ready.catch((err: unknown) =>
      post({ type: 'error', text: `could not start: ${messageOf(err)}`, training: false, own: false }),
    )
    return
  }
  ready!
    .then(() => handle(request))
    .catch((err: unknown) => {
      const own = request.type === 'open-model' || request.type.startsWith('own-')
      post({ type: 'error', text: messageOf(err), training, own })
    })
})
const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err))
