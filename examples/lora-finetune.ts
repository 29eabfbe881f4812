// The example fine-tune, after the seed tutorial's MLX lora.py: teach a pretrained tiny GPT about Tenny with LoRA.
// Read it top to bottom like nanoGPT's train.py: flags → base model → data → LoRA → train → save → report → answer.
// `npm run example -- --help` lists the flags; examples/lib/ holds the plumbing (flags, data, run folders, charts).
import { existsSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { Tensor, noGrad, manualSeed, nn, optim } from '../src/node'
import { loadBase, saveBase } from './lib/checkpoint'
import { loadSplits, padBatch, maskTargets, Batcher } from './lib/data'
import { trainStep, lossOrNaN } from './lib/step' // the step the browser playground (examples/web) trains with too
import { CharTokenizer } from './lib/tokenizer'
import { parseFlags, HELP, type Flags } from './lib/flags'
import { newRunFolder, findRun, checkBase, readRun, writeRun, shown, ADAPTERS } from './lib/runs'
import { progressBar } from './lib/progress'
import { terminalChart, writeSvg, type Curve } from './lib/plot'
import { runMain, stopOnCtrlC } from './lib/cli'
import { BASE_PATH } from './pretrain'

const ADAPTER = 'default' // the adapter's name in the model; one adapter at a time here

type Data = { train: number[][]; valid: number[][]; test: number[][]; batch: (examples: number[][]) => Batch }
type Batch = { inputs: Tensor; targets: Tensor; tokens: number }
type Losses = { train: number; valid: number; test: number }
/** What a training run did: its loss curves, where it stopped, and the step whose adapters it kept. */
type Run = {
  train: [number, number][]
  valid: [number, number][]
  steps: number
  keptStep: number
  before: Losses
  final: Losses
  kept: Losses
  seconds: number
  tokens: number
  interrupted: boolean
  examples: { train: number; valid: number; test: number }
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2))
  if (flags === 'help') return console.log(HELP)
  manualSeed(flags.seed)
  const basePath = flags.base ?? BASE_PATH
  const { model, tokenizer } = loadModel(basePath, flags)
  let folder = runFolder(flags, basePath)
  quantizeBase(model, flags, folder)
  const data = flags.train || flags.test ? loadData(flags, tokenizer, model.config.blockSize) : null
  const before = data && losses(model, data)

  const baseAnswer = flags.ask ? answer(model, tokenizer, flags) : null
  attachAdapters(model, flags, folder, basePath)
  if (baseAnswer !== null)
    show(
      flags,
      flags.base === undefined ? 'Base model (knows English, not Tenny)' : `Base model (${shown(basePath)})`,
      baseAnswer,
    )

  let run: Run | null = null
  if (flags.train) {
    const ctrlC = stopOnCtrlC('Ctrl-C: stopping after this step and saving the best adapters so far') // until saved
    run = await train(model, data!, flags, before!, ctrlC)
    folder = save(model, tokenizer, flags, run, folder!, basePath)
    ctrlC.release()
    if (run.interrupted) process.exit(130)
    if (!flags.full) report(model)
  }
  if (flags.ask && !flags.noAdapter) {
    if (!flags.full) setStrength(model, flags.strength)
    show(
      flags,
      flags.full
        ? 'Fully fine-tuned model'
        : `Adapted model${flags.strength === 1 ? '' : ` (adapter strength ${flags.strength})`}`,
      answer(model, tokenizer, flags),
    )
    if (!flags.full) setStrength(model, 1)
  }
  if (before && data) summary(before, run ? run.kept : losses(model, data), run)
  if (run) charts(run, flags, folder!)
  if (flags.fuse) fuse(model, tokenizer, folder!, data)
  console.log(`\nWall time ${(performance.now() / 1000).toFixed(0)} s`) // since the process started
}

/** The base checkpoint and its tokenizer; a prompt it cannot spell or fit is an error before anything else. */
function loadModel(basePath: string, flags: Flags): { model: nn.GPT; tokenizer: CharTokenizer } {
  const { model, tokenizer } = loadBase(basePath)
  const { nLayer, nEmbd, blockSize } = model.config
  console.log(
    `Base model: ${shown(basePath)}\n  ${model.numParameters().toLocaleString('en-US')} parameters: ${nLayer} layers, ${nEmbd} channels, a ${blockSize}-character context`,
  )
  const promptLength = tokenizer.encode(flags.prompt, '--prompt').length
  if (flags.ask && promptLength >= blockSize)
    throw new Error(`--prompt is ${promptLength} characters; the model's context is ${blockSize}`)
  return { model, tokenizer }
}

/** The new folder this training run writes to, or the run whose adapters answer (null with --no-adapter). */
function runFolder(flags: Flags, basePath: string): string | null {
  if (flags.train) {
    const folder = newRunFolder(flags.adapterPath)
    console.log(`Run folder: ${shown(folder)} (adapters, run.json and loss.svg go there)`)
    return folder
  }
  if (flags.noAdapter) return null
  const folder = findRun(flags.adapterPath)
  checkBase(folder, basePath)
  if (flags.fuse && existsSync(join(folder, 'fused.safetensors')))
    throw new Error(`${shown(folder)} already has a fused.safetensors; fuse into a new run with --train --fuse`)
  return folder
}

/** --quantize, or the quantization the run being read was trained on: its adapters answer on the same base. */
function quantizeBase(model: nn.GPT, flags: Flags, folder: string | null): void {
  const trained = !flags.train && folder ? readRun(folder)?.training.quantize : undefined
  const bits = flags.quantize ?? (trained === 4 || trained === 8 ? trained : null)
  if (bits === null) return
  const { paths } = nn.quantize(model, { bits, groupSize: 64 })
  console.log(`Quantized ${paths.length} Linear layers to ${bits} bits (groups of 64): the base is frozen codes now.`)
}

/** Every line of train/valid/test.jsonl, plus a newline that marks the end of the answer. */
function loadData(flags: Flags, tokenizer: CharTokenizer, blockSize: number): Data {
  const splits = loadSplits(flags.data)
  const [train, valid, test] = [splits.train, splits.valid, splits.test].map((examples) =>
    examples.map((e) => tokenizer.encode(e.text + '\n', `${e.file}:${e.line}`)),
  )
  console.log(
    `Data: ${train.length} train, ${valid.length} valid, ${test.length} test examples from ${shown(flags.data)}`,
  )
  // padBatch cuts an example to the context, as mlx-lm does: say so, since the cut part may be the answer
  const ids = [train, valid, test].flat(),
    cut = [splits.train, splits.valid, splits.test].flat().filter((_, i) => ids[i].length > blockSize + 1)
  if (cut.length)
    console.log(
      `Note: ${cut.length} example(s) (first: ${shown(cut[0].file)}:${cut[0].line}) longer than the model's ${blockSize}-character context: only the first ${blockSize + 1} characters of each are used`,
    )
  if (flags.train && flags.batchSize > train.length)
    throw new Error(
      `--batch-size ${flags.batchSize} is more than the ${train.length} training examples in ${shown(flags.data)}`,
    )
  const batch = (examples: number[][]): Batch => {
    const b = padBatch(examples, blockSize)
    maskTargets(b, flags.mask, (text) => tokenizer.encode(text))
    return b
  }
  return { train, valid, test, batch }
}

/** Mean loss per predicted character over a whole split (padding and masked characters excluded), without a graph. */
function evaluate(model: nn.GPT, data: Data, examples: number[][]): number {
  return noGrad(() => {
    model.eval()
    let total = 0,
      count = 0
    for (let i = 0; i < examples.length; i += 8) {
      const batch = data.batch(examples.slice(i, i + 8))
      total += lossOrNaN(() => model.loss(batch.inputs, batch.targets).item()) * batch.tokens
      count += batch.tokens
    }
    model.train()
    return total / count
  })
}

const losses = (model: nn.GPT, data: Data): Losses => ({
  train: evaluate(model, data, data.train),
  valid: evaluate(model, data, data.valid),
  test: evaluate(model, data, data.test),
})

/** The model's continuation of --prompt, up to the first newline. */
function answer(model: nn.GPT, tokenizer: CharTokenizer, flags: Flags): string {
  const ids = tokenizer.encode(flags.prompt, '--prompt')
  const room = Math.min(flags.maxTokens, model.config.blockSize - ids.length)
  const out = model.generate(new Tensor(Float32Array.from(ids), [1, ids.length]), room, {
    temperature: flags.temp,
    seed: flags.seed,
  })
  return tokenizer.decode(out.data.subarray(ids.length)).split('\n')[0]
}

const show = (flags: Flags, who: string, text: string) => console.log(`\n${who}:\n${flags.prompt}${text}`)

/** LoRA on the target layers for training (or the adapters of --resume-adapter-file), or the run's adapters to answer with. */
function attachAdapters(model: nn.GPT, flags: Flags, folder: string | null, basePath: string): void {
  if (flags.full) {
    model.unfreeze()
    return console.log(`Full fine-tune: all ${model.numParameters().toLocaleString('en-US')} parameters train (100%)`)
  }
  if (flags.noAdapter) return
  if (flags.train && flags.resume) resume(model, flags, basePath)
  else if (flags.train) {
    const { targets, loraLayers: layers, rank, alpha, loraDropout: dropout, useDora } = flags
    nn.applyLoRA(model, { name: ADAPTER, targets, layers, rank, alpha, dropout, useDora })
  } else {
    nn.loadAdapters(model, join(folder!, ADAPTERS), { name: ADAPTER })
    console.log(
      `Adapters: ${shown(folder!)}${flags.adapterPath === undefined ? ' (the newest run; --adapter-path DIR picks another)' : ''}`,
    )
    setStrength(model, flags.strength) // so the LoRA line below shows the strength the answer uses
  }
  nn.printTrainable(model)
}

/** Continue from saved adapters: their layers, rank, scale and kind, which --rank, --alpha, --targets may not contradict. */
function resume(model: nn.GPT, flags: Flags, basePath: string): void {
  const file = flags.resume!
  checkBase(dirname(file), basePath)
  nn.loadAdapters(model, file, { name: ADAPTER })
  const layer = nn.getAdapter(nn.loraLayers(model)[0][1], ADAPTER)!
  const { rank, scale } = layer
  const asked = nn.loraScale(rank, 'alpha/rank', { alpha: flags.alpha }).scale // what --alpha gives at this rank
  if (flags.given.has('rank') && flags.rank !== rank)
    throw new Error(
      `--rank ${flags.rank} differs from ${shown(file)}, which has rank ${rank}: drop --rank to resume with the file's`,
    )
  if (flags.given.has('alpha') && asked !== scale)
    throw new Error(
      `--alpha ${flags.alpha} gives scale ${asked}, but ${shown(file)} has scale ${scale}: drop --alpha to resume with the file's`,
    )
  if (flags.given.has('targets') || flags.given.has('lora-layers'))
    throw new Error(`--targets and --lora-layers cannot change a resumed run: its layers are ${shown(file)}'s`)
  const useDora = layer instanceof nn.DoRALinear
  if (flags.useDora && !useDora) throw new Error(`--use-dora cannot resume ${shown(file)}: its adapters are plain LoRA`)
  if (flags.given.has('lora-dropout'))
    for (const [, l] of nn.loraLayers(model)) nn.getAdapter(l, ADAPTER)!.dropout = flags.loraDropout // a setting of this run
  const alpha = nn.loraScale(rank, 'alpha/rank', { scale }).alpha
  Object.assign(flags, { rank, alpha, useDora, loraDropout: layer.dropout }) // run.json records what was trained
  console.log(`Resuming from ${shown(file)} (${useDora ? 'DoRA, ' : ''}rank ${rank}, scale ${scale})`)
}

/** Set the adapters' strength: what --adapter-strength scales ΔW by when answering. */
const setStrength = (model: nn.GPT, strength: number) => nn.setAdapters(model, { [ADAPTER]: strength })

/**
 * Fine-tune: AdamW on the trainable parameters, warmup then cosine decay, gradients clipped at norm 1. Every
 * --steps-per-eval steps the validation loss decides which adapters to keep (the lowest so far); --patience stops
 * when it has not improved for that many evaluations. Ctrl-C stops after the current step; the best are kept.
 */
async function train(
  model: nn.GPT,
  data: Data,
  flags: Flags,
  before: Losses,
  ctrlC: { stopped(): boolean },
): Promise<Run> {
  const params = model.trainableParameters()
  const opt = new optim.AdamW(params, { lr: flags.lr, weightDecay: 0 })
  const schedule = optim.cosineSchedule({
    lr: flags.lr,
    warmupSteps: Math.min(10, flags.iters),
    totalSteps: flags.iters,
    minLr: flags.lr / 10,
  })
  const batches = new Batcher(data.train, flags.batchSize)
  const run: Run = {
    train: [[0, before.train]],
    valid: [[0, before.valid]],
    steps: 0,
    keptStep: 0,
    before,
    final: before,
    kept: before,
    seconds: 0,
    tokens: 0,
    interrupted: false,
    examples: { train: data.train.length, valid: data.valid.length, test: data.test.length },
  }
  let best = { loss: before.valid, weights: snapshot(params) },
    stale = 0,
    window: number[] = []
  console.log(
    `\nFine-tuning for ${flags.iters} steps, ${flags.batchSize} examples per step (Ctrl-C stops early and saves the adapters)`,
  )
  const evalPoint = () => {
    // the train loss since the last point, the validation loss now, and the best so far
    run.train.push([run.steps, window.reduce((a, b) => a + b, 0) / window.length])
    window = []
    const val = evaluate(model, data, data.valid)
    checkFinite('validation loss', val, run.steps, flags)
    run.valid.push([run.steps, val])
    if (val < best.loss) [best, run.keptStep, stale] = [{ loss: val, weights: snapshot(params) }, run.steps, 0]
    else stale++
  }
  const bar = progressBar('train', flags.iters, [
    ['loss', 'loss'],
    ['val', 'val'],
    ['tokps', 'tok/s'],
  ])
  const start = performance.now()
  while (run.steps < flags.iters && !ctrlC.stopped() && stale < flags.patience) {
    opt.lr = schedule(run.steps)
    const batch = data.batch(batches.next())
    const ce = trainStep(model, opt, params, batch, flags.smoothing)
    run.steps++
    run.tokens += batch.tokens
    checkFinite('training loss', ce, run.steps, flags)
    window.push(ce) // the plain cross-entropy, comparable with the evaluations
    if (run.steps % flags.stepsPerEval === 0) evalPoint()
    const tokps = run.tokens / ((performance.now() - start) / 1000)
    bar.update(run.steps, { loss: loss3(ce), val: loss3(run.valid[run.valid.length - 1][1]), tokps: tokps.toFixed(0) })
    await new Promise((resolve) => setImmediate(resolve)) // let a Ctrl-C be seen between steps
  }
  if (run.valid[run.valid.length - 1][0] !== run.steps) evalPoint() // the last step counts too, also after Ctrl-C
  bar.stop()
  run.seconds = (performance.now() - start) / 1000
  run.interrupted = ctrlC.stopped()
  run.final = losses(model, data)
  restore(params, best.weights)
  run.kept = run.keptStep === run.steps ? run.final : losses(model, data)
  const why = run.interrupted
    ? 'Interrupted after'
    : run.steps < flags.iters
      ? `Stopped early (--patience ${flags.patience}) after`
      : 'Trained'
  console.log(
    `${why} ${run.steps} steps in ${run.seconds.toFixed(0)} s (${(run.tokens / run.seconds).toFixed(0)} tokens/s)`,
  )
  console.log(
    `Kept the ${flags.full ? 'weights' : 'adapters'} of step ${run.keptStep}: validation loss ${loss3(best.loss)}, the lowest (step ${run.steps}: ${loss3(run.final.valid)})`,
  )
  return run
}

/** A loss that is NaN or infinite ends the run before anything is saved: one line saying where and what to try. */
function checkFinite(what: string, value: number, step: number, flags: Flags): void {
  if (Number.isFinite(value)) return
  const now = (x: number) => (Math.abs(x) >= 1e5 ? x.toExponential() : String(x))
  throw new Error(
    `step ${step}: the ${what} is ${value}, so training diverged and nothing was saved; try a lower --lr (now ${now(flags.lr)})` +
      (flags.full ? '' : ` or --alpha (now ${now(flags.alpha)})`),
  )
}

const snapshot = (params: Tensor[]): Float32Array[] => params.map((p) => p.data.slice())
const restore = (params: Tensor[], saved: Float32Array[]) => params.forEach((p, i) => p.data.set(saved[i]))

/** Write run.json, then the kept adapters (or the whole model after --full), into the run's own folder; returns it. */
function save(
  model: nn.GPT,
  tokenizer: CharTokenizer,
  flags: Flags,
  run: Run,
  planned: string,
  basePath: string,
): string {
  const training = {
    iters: flags.iters,
    steps: run.steps,
    keptStep: run.keptStep,
    batchSize: flags.batchSize,
    lr: flags.lr,
    rank: flags.rank,
    alpha: flags.alpha,
    targets: flags.targets,
    loraLayers: flags.loraLayers ?? model.config.nLayer,
    useDora: flags.useDora,
    loraDropout: flags.loraDropout,
    labelSmoothing: flags.smoothing,
    mask: flags.mask,
    stepsPerEval: flags.stepsPerEval,
    patience: Number.isFinite(flags.patience) ? flags.patience : null,
    quantize: flags.quantize,
    full: flags.full,
    seed: flags.seed,
  }
  // run.json first: it claims the folder, so a run that saved there meanwhile is never overwritten
  const folder = writeRun(planned, basePath, {
    training,
    examples: run.examples,
    before: run.before,
    final: run.final,
    kept: run.kept,
    train: run.train,
    valid: run.valid,
  })
  if (folder !== planned)
    console.log(`${shown(planned)} was taken by another run meanwhile: saving into ${shown(folder)}`)
  const file = join(folder, flags.full ? 'full-model.safetensors' : ADAPTERS)
  if (flags.full) saveBase(file, model, tokenizer, { fineTunedFrom: shown(basePath), steps: String(run.keptStep) })
  else nn.saveAdapters(file, model)
  console.log(`Saved ${flags.full ? 'the fine-tuned model' : 'the adapters'} of step ${run.keptStep} to ${shown(file)}`)
  return folder
}

/** What ΔW = scale·B·A turned out to be, per layer (LoRA paper, section 7; nn/files/lora-report.ts). */
function report(model: nn.GPT): void {
  console.log('\nWhat the adapters learned, per layer: rank of ΔW (at most r), ‖ΔW‖/‖W‖, largest singular values')
  for (const r of nn.loraReport(model, { log: () => {} })) {
    const sigma = r.singularValues
      .slice(0, 4)
      .map((s) => s.toPrecision(3).padStart(5))
      .join(' ')
    console.log(
      `  ${r.path.padEnd(22)} ${`${r.deltaRank} ≤ ${r.rank}`.padEnd(9)} ${r.relativeNorm.toPrecision(3).padStart(6)}   ${sigma} …`,
    )
  }
}

/** A loss for a column: 3 decimals, or in exponent form once a diverging run has pushed it past 1e5 (it fits either way). */
const loss3 = (x: number) => (Math.abs(x) < 1e5 ? x.toFixed(3) : x.toExponential(2))

/** Train, valid and test loss of the base and of the adapted model (the kept step), and where training ended. */
function summary(before: Losses, after: Losses, run: Run | null): void {
  const kept = run ? `kept: ${run.keptStep}` : 'adapted'
  const row = (name: string, a: number, b: number, c?: number) =>
    console.log(
      name.padEnd(18) +
        loss3(a).padStart(9) +
        (c === undefined ? '' : loss3(c).padStart(12)) +
        loss3(b).padStart(12) +
        `${(((b - a) / a) * 100).toFixed(0)}%`.padStart(9),
    )
  console.log(
    `\n${''.padEnd(18)}${'base'.padStart(9)}${run ? `end: ${run.steps}`.padStart(12) : ''}${kept.padStart(12)}${'change'.padStart(9)}`,
  )
  row('train loss', before.train, after.train, run?.final.train)
  row('valid loss', before.valid, after.valid, run?.final.valid)
  row('test loss', before.test, after.test, run?.final.test)
  row('test perplexity', Math.exp(before.test), Math.exp(after.test), run ? Math.exp(run.final.test) : undefined)
  if (run)
    console.log(
      `(steps: training ended at ${run.steps}, the adapters kept are step ${run.keptStep}'s; change: kept vs base)`,
    )
}

/** The loss curves in the terminal and as loss.svg in the run folder. */
function charts(run: Run, flags: Flags, folder: string): void {
  const curves: Curve[] = [
    { name: 'train loss', points: run.train },
    { name: 'validation loss', points: run.valid },
  ]
  const mark = { step: run.keptStep, label: `kept (step ${run.keptStep})` }
  console.log(`\nLoss per character (nats) by step:\n${terminalChart(curves, { mark })}`)
  const svg = join(folder, 'loss.svg')
  writeSvg(svg, curves, `LoRA fine-tune: rank ${flags.rank}, ${run.steps} steps, batch ${flags.batchSize}`, mark)
  console.log(`Wrote ${shown(svg)}`)
}

/** Fold the adapters into the weights and write fused.safetensors, a base of its own (with a fidelity report if quantized). */
function fuse(model: nn.GPT, tokenizer: CharTokenizer, folder: string, data: Data | null): void {
  // the base may be quantized by --quantize or by the run being fused (quantizeBase reads its run.json)
  const quantized = [...model.namedModules()].some(([, m]) => m instanceof nn.QuantizedLinear)
  const { paths, reports } = nn.mergeLoRA(model, { keepQuantized: quantized })
  if (quantized) {
    const r = Object.values(reports)
    const avg = (f: (x: nn.FuseReport) => number) => (100 * r.reduce((s, x) => s + f(x), 0)) / r.length
    console.log(
      `\nFused ${paths.length} layers by requantizing W + dW: ${avg((x) => x.codesChanged).toFixed(1)}% of codes changed, ` +
        `${avg((x) => x.retained).toFixed(0)}% of dW retained on average, ${avg((x) => x.groupsBelowHalfStep).toFixed(0)}% of groups saw a dW below half a step`,
    )
    if (data) console.log(`Test loss of the requantized fused model: ${evaluate(model, data, data.test).toFixed(3)}`)
    for (const [path, m] of [...model.namedModules()])
      if (m instanceof nn.QuantizedLinear) model.setModule(path, m.dequantize())
  }
  const file = join(folder, 'fused.safetensors')
  saveBase(file, model, tokenizer, { fusedFrom: shown(join(folder, ADAPTERS)) })
  const loss = data ? ` (test loss ${evaluate(model, data, data.test).toFixed(3)})` : ''
  console.log(`Wrote the merged model to ${shown(file)}${loss}; answer with it: --base ${shown(file)} --no-adapter`)
}

runMain(main)
