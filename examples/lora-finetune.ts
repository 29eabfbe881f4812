// The example fine-tune, after mlx-lm's lora.py: teach a pretrained tiny GPT about Tenny with LoRA. It reads top
// to bottom like nanoGPT's train.py: flags → data → model → LoRA → loop → save. `npm run generate` answers
// with the
// adapters it saves and `npm run fuse` folds them into the weights; examples/lib/ holds what the three share.
import { join } from 'node:path'
import { manualSeed, nn, optim } from '../src/node'
import { exampleFlags, helpText } from './lib/flags'
import { losses, measuredBatches, Batcher } from './lib/data'
import { openBase, quantizeBase, trainedBits, loadRunAdapters, resumeFrom, trainingRecord } from './lib/model'
import { checkBasePrompt, baseAnswer, baseData, loraOptions, show } from './lib/model'
import { trainStep, evaluate, schedule, checkFinite, snapshot, restore } from './lib/step'
import { runFolder, findRun, saveRun, ADAPTERS } from './lib/runs'
import { baseBytes } from './lib/checkpoint'
import { printLoRAReport, printSummary, printCurves, loss3 } from './lib/summary'
import { svgChart, type Curve } from './lib/plot'
import { progressBar } from './lib/progress'
import { checkpointLayers } from './lib/grad-checkpoint'
import { runMain, stopOnCtrlC } from './lib/cli'
import { shown } from './lib/paths'

runMain(async () => {
  // ---- flags (the table in lib/flags.ts; none at all: --train --test)
  const flags = exampleFlags(process.argv.slice(2))
  if (flags === 'help') return console.log(helpText('example'))
  manualSeed(flags.seed)

  // ---- the base model (--model: a Hugging Face folder), and the run's folder: a new one checked before anything
  // trains, or the one --test reads
  const base = openBase(flags)
  const { model, path: basePath, who, unit } = base
  const ask = base.kind === 'tiny' || flags.given.has('prompt') // --model: answers only to a prompt of the user's
  if (ask) checkBasePrompt(base, flags.prompt, flags.chat)
  const folder = flags.train ? runFolder(flags.adapterPath) : flags.noAdapter ? null : findRun(flags.adapterPath)
  if (flags.train) console.log(`Run folder: ${shown(folder!)} (adapters, run.json and loss.svg go there)`)
  quantizeBase(model, flags.train ? flags.quantize : folder ? trainedBits(folder) : null)

  // ---- data: train/valid/test.jsonl (mlx-lm's formats with --model), and the base model's loss on each
  const data = baseData(base, flags, flags.train ? flags.batchSize : 1)
  const before = losses(model, data)
  if (!flags.train) {
    if (folder) loadRunAdapters(model, folder, basePath, flags.adapterPath === undefined)
    return printSummary(before, losses(model, data), null, unit) // --test: the run's adapters against the base
  }
  const baseReply = ask ? baseAnswer(base, flags) : '' // before LoRA: a seeded answer restarts the random stream

  // ---- LoRA on the target layers (or the adapters of --resume-adapter-file), or every weight with --full
  if (flags.full) model.unfreeze()
  else if (flags.resumeAdapterFile) resumeFrom(model, flags, basePath)
  else nn.applyLoRA(model, loraOptions(base, flags))
  nn.printTrainable(model)
  if (flags.gradCheckpoint && base.kind === 'hf')
    console.log(`Gradient checkpointing: ${checkpointLayers(base.model)} layers`)
  if (ask) show(who, flags.prompt, baseReply)

  // ---- the loop: AdamW, warmup then cosine decay, gradients clipped at norm 1 (lib/step.ts). Every --steps-per-eval
  // steps the validation loss decides which weights to keep (the lowest so far); --patience stops when it has not
  // improved for that many evaluations. Ctrl-C stops after the current step, and the best weights are saved.
  const params = model.trainableParameters()
  const opt = new optim.AdamW(params, { lr: flags.lr, weightDecay: 0 })
  const lr = schedule(flags.lr, flags.iters)
  const batches = new Batcher(data.train, flags.batchSize)
  const train: Curve = { name: 'train loss', points: [[0, before.train]] }
  const valid: Curve = { name: 'validation loss', points: [[0, before.valid]] }
  const lower: Record<string, number> = flags.full ? { '--lr': flags.lr } : { '--lr': flags.lr, '--alpha': flags.alpha }
  let kept = { step: 0, loss: before.valid, weights: snapshot(params) },
    stale = 0,
    window: number[] = [],
    step = 0,
    tokens = 0
  const validate = () => {
    train.points.push([step, window.reduce((a, b) => a + b, 0) / window.length]) // the train loss since the last point
    window = []
    const loss = evaluate(model, measuredBatches(data, data.valid))
    checkFinite('validation loss', loss, step, lower)
    valid.points.push([step, loss])
    if (loss < kept.loss) [kept, stale] = [{ step, loss, weights: snapshot(params) }, 0]
    else stale++
  }
  const what = flags.full ? 'weights' : 'adapters'
  const ctrlC = stopOnCtrlC(`Ctrl-C: stopping after this step and saving the best ${what} so far`) // until saved
  const perStep = `${flags.batchSize} examples per step`
  // tokens/s counts the targets trained on (not padding, not masked prompts), in the model's tokens
  console.log(`\nFine-tuning for ${flags.iters} steps, ${perStep} (Ctrl-C stops early and saves the ${what})`)
  const bar = progressBar('train', flags.iters, { loss: 'loss', val: 'val', tokps: 'tok/s' })
  const start = performance.now()
  while (step < flags.iters && !ctrlC.stopped() && stale < flags.patience) {
    opt.lr = lr(step)
    const batch = data.batch(batches.next())
    const ce = trainStep(model, opt, params, batch, flags.labelSmoothing)
    step++
    tokens += batch.tokens
    checkFinite('training loss', ce, step, lower)
    window.push(ce) // the plain cross-entropy, comparable with the evaluations
    if (step % flags.stepsPerEval === 0) validate()
    const tokps = (tokens / ((performance.now() - start) / 1000)).toFixed(0)
    bar.update(step, { loss: loss3(ce), val: loss3(valid.points[valid.points.length - 1][1]), tokps })
    await new Promise((resolve) => setImmediate(resolve)) // let a Ctrl-C be seen between steps
  }
  if (valid.points[valid.points.length - 1][0] !== step) validate() // the last step counts too, also after Ctrl-C
  bar.stop()
  const seconds = (performance.now() - start) / 1000
  const final = losses(model, data)
  restore(params, kept.weights)
  const keptLosses = kept.step === step ? final : losses(model, data)
  const stopped = ctrlC.stopped()
    ? 'Interrupted after'
    : step < flags.iters
      ? `Stopped early (--patience ${flags.patience}) after`
      : 'Trained'
  console.log(`${stopped} ${step} steps in ${seconds.toFixed(0)} s (${(tokens / seconds).toFixed(0)} tokens/s)`)
  const lowest = `validation loss ${loss3(kept.loss)}, the lowest (step ${step}: ${loss3(final.valid)})`
  console.log(`Kept the ${what} of step ${kept.step}: ${lowest}`)

  // ---- save: run.json, the kept adapters (or the whole model after --full) and loss.svg, into the run's folder
  const training = trainingRecord(base, flags, step, kept.step)
  const examples = { train: data.train.length, valid: data.valid.length, test: data.test.length }
  const trained = { [`${unit}s`]: tokens, [`${unit}sPerSecond`]: Math.round(tokens / seconds) }
  const curves = { train: train.points, valid: valid.points }
  const record = { training, examples, trained, before, final, kept: keptLosses, ...curves }
  const title = `${flags.full ? 'Full' : `LoRA (rank ${training.rank})`} fine-tune: ${step} steps of ${perStep}`
  const svg = svgChart([train, valid], title, { step: kept.step, label: `kept (step ${kept.step})` })
  const notes = { fineTunedFrom: shown(basePath), steps: String(kept.step) }
  const weights =
    flags.full && base.kind === 'tiny' // --full trains the tiny model only (lib/flags.ts)
      ? { 'full-model.safetensors': baseBytes(base.model, base.tokenizer, notes) }
      : nn.adapterFiles(model)
  const saved = saveRun(folder!, basePath, record, { ...weights, 'loss.svg': svg })
  const file = join(saved, flags.full ? 'full-model.safetensors' : ADAPTERS)
  console.log(`Saved the ${what} of step ${kept.step} to ${shown(file)}`)
  ctrlC.release()
  if (ctrlC.stopped()) process.exit(130)

  // ---- what was learned: per layer, the answer to the prompt, the losses and their curves
  if (!flags.full) printLoRAReport(model)
  if (ask) show(flags.full ? 'Fully fine-tuned model' : 'Adapted model', flags.prompt, baseAnswer(base, flags))
  printSummary(before, keptLosses, { steps: step, keptStep: kept.step, final, full: flags.full, unit })
  printCurves([train, valid], kept.step, unit)
  console.log(`\nWall time ${(performance.now() / 1000).toFixed(0)} s`) // since the process started
})
