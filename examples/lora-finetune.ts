// The example fine-tune, after the seed tutorial's MLX lora.py: teach a pretrained tiny GPT about Tenny with LoRA.
// One script, top to bottom: flags → base model → data → LoRA → the base's answer → fine-tune → save the adapters
// → the adapted answer → test loss before and after → loss charts. `npm run example -- --help` lists the flags.
import { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join, dirname, relative } from 'node:path'
import { parseArgs } from 'node:util'
import { Tensor, noGrad, manualSeed, nn, optim, crossEntropy, logSoftmax, mean, sum, mul, add } from '../src/node'
import { loadBase, saveBase } from './lib/checkpoint'
import { loadSplits, padBatch, maskTargets, Batcher, IGNORE, type Example, type MaskMode } from './lib/data'
import { CharTokenizer } from './lib/tokenizer'
import { progressBar } from './lib/progress'
import { terminalChart, writeSvg, type Curve } from './lib/plot'
import { numberFlag, runMain } from './lib/cli'
import { pretrain, BASE_PATH } from './pretrain'

const here = import.meta.dirname
const DEFAULT_PROMPT = 'Q: What is relu in tenny?\\nA: ' // the seed tutorial's question, asked of tenny
// Every Linear: the four attention projections and the MLP of each block, and the LM head (docstrings use
// characters, such as ( ) * _ `, far more often than English does; the head adapts to that fastest).
const TARGETS = 'qProj,kProj,vProj,outProj,fc,proj,lmHead'

const HELP = `npm run example -- [options]        (no options: fine-tune, test and answer the default prompt)
Modes (any combination; none given = --train --test with the default prompt):
  --train                       LoRA fine-tune the base on --data, save the adapters
  --test                        report test loss and perplexity, base vs adapted
  --prompt TEXT                 answer TEXT (\\n means newline) with the base and with the adapters (default "${DEFAULT_PROMPT}")
Generation:
  --temp X                      sampling temperature, 0 = greedy (default 0)
  --max-tokens N, --num-tokens N   most characters to generate (default 100; stops at a newline)
  --adapter-strength X          scale the adapter at generation, e.g. 0.7 (default 1)
Files:
  --base FILE                   base checkpoint (default examples/base/base.safetensors; pretrained first if missing)
  --data DIR                    train.jsonl, valid.jsonl, test.jsonl of {"text": ...} lines (default examples/data)
  --adapter-file FILE           where adapters are saved / loaded (default examples/out/adapters.safetensors)
  --resume-adapter-file FILE    start training from these adapters
  --no-adapter                  answer (and --test) with the base alone, e.g. a fused model given with --base
Training:
  --iters N                     optimizer steps (default 600)
  --batch-size N                examples per step (default 8)
  --lr X                        peak learning rate, warmup then cosine decay to a tenth (default 1e-2)
  --rank N, --alpha X           LoRA rank and alpha; scale = alpha / rank (default 32, 64)
  --lora-layers N               adapt the last N blocks (default: all)
  --lora-dropout X              dropout on the adapters' input while training (default 0.03)
  --label-smoothing X           train toward (1 - X)·target + X·uniform, against over-confidence (default 0.1)
  --mask name|prompt|none       what losses skip: the function name in each question, which nothing before it predicts
                                (default), the whole question (mlx-lm's --mask-prompt), or nothing
  --targets LIST                layers to adapt, comma-separated (default ${TARGETS})
  --quantize 4|8                QLoRA: quantize the base's Linear layers first
  --full                        full fine-tune instead of LoRA (to compare); writes full-model.safetensors
  --fuse                        also write the merged model (fused.safetensors), with a fidelity report when quantized
  --steps-per-eval N            validation loss every N steps (default 50)
  --seed N                      random seed (default 0)
  -h, --help                    this text`

async function main(): Promise<void> {
  // ---- flags ------------------------------------------------------------------------------------
  const { values: v } = parseArgs({ options: {
    train: { type: 'boolean' }, test: { type: 'boolean' }, prompt: { type: 'string' }, temp: { type: 'string', default: '0' },
    'max-tokens': { type: 'string' }, 'num-tokens': { type: 'string' }, 'adapter-strength': { type: 'string', default: '1' },
    base: { type: 'string' }, data: { type: 'string', default: join(here, 'data') },
    'adapter-file': { type: 'string', default: join(here, 'out', 'adapters.safetensors') }, 'resume-adapter-file': { type: 'string' }, 'no-adapter': { type: 'boolean' },
    iters: { type: 'string', default: '600' }, 'batch-size': { type: 'string', default: '8' }, lr: { type: 'string', default: '1e-2' },
    rank: { type: 'string', default: '32' }, alpha: { type: 'string', default: '64' }, 'lora-layers': { type: 'string' }, 'lora-dropout': { type: 'string', default: '0.03' },
    'label-smoothing': { type: 'string', default: '0.1' }, mask: { type: 'string', default: 'name' },
    targets: { type: 'string', default: TARGETS }, quantize: { type: 'string' }, full: { type: 'boolean' }, fuse: { type: 'boolean' },
    'steps-per-eval': { type: 'string', default: '50' }, seed: { type: 'string', default: '0' }, help: { type: 'boolean', short: 'h' },
  } })
  if (v.help) return console.log(HELP)
  const demo = !v.train && !v.test && v.prompt === undefined && !v['no-adapter']
  const doTrain = demo || !!v.train, doTest = demo || !!v.test
  const prompt = (v.prompt ?? DEFAULT_PROMPT).replace(/\\n/g, '\n')
  const temperature = numberFlag('temp', v.temp, { min: 0 })
  const maxTokens = numberFlag(v['num-tokens'] !== undefined ? 'num-tokens' : 'max-tokens', v['num-tokens'] ?? v['max-tokens'] ?? '100', { integer: true, min: 1 })
  const strength = numberFlag('adapter-strength', v['adapter-strength'])
  const iters = numberFlag('iters', v.iters, { integer: true, min: 1 })
  const batchSize = numberFlag('batch-size', v['batch-size'], { integer: true, min: 1 })
  const lr = numberFlag('lr', v.lr, { min: 0 })
  const rank = numberFlag('rank', v.rank, { integer: true, min: 1 })
  const alpha = numberFlag('alpha', v.alpha)
  const loraDropout = numberFlag('lora-dropout', v['lora-dropout'], { min: 0, max: 0.99 })
  const smoothing = numberFlag('label-smoothing', v['label-smoothing'], { min: 0, max: 0.99 })
  if (!['name', 'prompt', 'none'].includes(v.mask!)) throw new Error(`--mask must be name, prompt or none, got ${v.mask}`)
  const mask = v.mask as MaskMode
  const evalEvery = numberFlag('steps-per-eval', v['steps-per-eval'], { integer: true, min: 1 })
  const seed = numberFlag('seed', v.seed, { integer: true })
  const bits = v.quantize === undefined ? null : numberFlag('quantize', v.quantize, { integer: true, min: 4, max: 8 })
  if (bits !== null && bits !== 4 && bits !== 8) throw new Error(`--quantize must be 4 or 8, got ${v.quantize}`)
  if (v.full && (bits !== null || v['resume-adapter-file'] || v.fuse)) throw new Error('--full trains every weight of a float model: it cannot be combined with --quantize, --resume-adapter-file or --fuse')
  if (v.full && !doTrain) throw new Error('--full is a way to train: add --train')
  const adapterFile = v['adapter-file']
  const useAdapter = !v['no-adapter']
  if (!useAdapter && (doTrain || v['resume-adapter-file'])) throw new Error('--no-adapter answers with the base alone: it cannot be combined with --train or --resume-adapter-file')
  manualSeed(seed)

  // ---- the base model ---------------------------------------------------------------------------
  const basePath = v.base ?? BASE_PATH
  if (v.base === undefined && !existsSync(basePath)) {
    console.log(`No base model at ${relative(process.cwd(), basePath)} yet: pretraining one first (a few minutes, once).`)
    pretrain([])
    manualSeed(seed)
  }
  const { model, tokenizer } = loadBase(basePath)
  const T = model.config.blockSize
  const promptIds = tokenizer.encode(prompt, '--prompt')
  if (promptIds.length >= T) throw new Error(`--prompt is ${promptIds.length} characters; the model's context is ${T}`)
  console.log(`Base model: ${relative(process.cwd(), basePath)} (${model.numParameters().toLocaleString('en-US')} parameters, ` +
    `${model.config.nLayer} layers, ${model.config.nEmbd} channels, ${T}-character context)`)
  if (bits !== null) {
    const { paths } = nn.quantize(model, { bits, groupSize: 64 })
    console.log(`Quantized ${paths.length} Linear layers to ${bits} bits (groups of 64): the base is frozen codes now.`)
  }

  // ---- data: every line of train/valid/test.jsonl, plus a newline that marks the end of the answer
  const splits = doTrain || doTest ? loadSplits(v.data) : { train: [], valid: [], test: [] } // generation alone needs no data
  const encode = (examples: Example[]) => examples.map((e) => tokenizer.encode(e.text + '\n', `${e.file}:${e.line}`))
  const train = encode(splits.train), valid = encode(splits.valid), test = encode(splits.test)
  if (doTrain || doTest) console.log(`Data: ${train.length} train, ${valid.length} valid, ${test.length} test examples from ${relative(process.cwd(), v.data) || '.'}`)

  // Mean loss per predicted character over a whole split (padding excluded), evaluated without a graph.
  const evaluate = (examples: number[][]): number => noGrad(() => {
    model.eval()
    let total = 0, count = 0
    for (let i = 0; i < examples.length; i += batchSize) {
      const batch = padBatch(examples.slice(i, i + batchSize), T)
      maskTargets(batch, mask, (text) => tokenizer.encode(text))
      total += model.loss(batch.inputs, batch.targets).item() * batch.tokens
      count += batch.tokens
    }
    model.train()
    return total / count
  })
  // The model's continuation of the prompt, up to the first newline.
  const answer = (): string => {
    model.eval()
    const out = model.generate(new Tensor(Float32Array.from(promptIds), [1, promptIds.length]), Math.min(maxTokens, T - promptIds.length), { temperature, seed })
    model.train()
    return tokenizer.decode(out.data.subarray(promptIds.length)).split('\n')[0]
  }
  const show = (who: string, text: string) => console.log(`\n${who}:\n${prompt}${text}`)

  const before = doTrain || doTest ? { train: evaluate(train), valid: evaluate(valid), test: evaluate(test) } : null
  const baseAnswer = v.prompt !== undefined || doTrain || !useAdapter ? answer() : null

  // ---- LoRA: wrap the target layers, freeze everything else --------------------------------------
  const targets = v.targets.split(',').map((t) => t.trim()).filter(Boolean)
  const loraLayers = v['lora-layers'] === undefined ? undefined : numberFlag('lora-layers', v['lora-layers'], { integer: true, min: 1, max: model.config.nLayer })
  if (v.full) model.unfreeze()
  else if (doTrain) {
    nn.applyLoRA(model, { targets, layers: loraLayers, rank, alpha, dropout: loraDropout })
    if (v['resume-adapter-file']) {
      checkAdapterBase(v['resume-adapter-file'], basePath)
      nn.loadAdapters(model, v['resume-adapter-file'])
      console.log(`Resuming from ${v['resume-adapter-file']}`)
    }
  } else if (useAdapter) {
    checkAdapterBase(adapterFile, basePath)
    nn.loadAdapters(model, adapterFile)
    console.log(`Loaded adapters from ${relative(process.cwd(), adapterFile)}`)
  }
  if (v.full) console.log(`Full fine-tune: all ${model.numParameters().toLocaleString('en-US')} parameters train (100%)`)
  else if (useAdapter) nn.printTrainable(model)
  if (baseAnswer !== null) show(v.base === undefined ? 'Base model (knows English, not Tenny)' : `Base model (${relative(process.cwd(), basePath)})`, baseAnswer)

  // ---- fine-tune ----------------------------------------------------------------------------------
  const curves: Curve[] = [{ name: 'train loss', color: 'green', points: [] }, { name: 'validation loss', color: 'blue', points: [] }]
  if (doTrain) {
    const params = model.trainableParameters()
    const opt = new optim.AdamW(params, { lr, weightDecay: 0 })
    const schedule = optim.cosineSchedule({ lr, warmupSteps: Math.min(10, iters), totalSteps: iters, minLr: lr / 10 })
    const batches = new Batcher(train, batchSize)
    curves[0].points.push([0, before!.train]) // step 0: the base model on the whole train and valid sets
    curves[1].points.push([0, before!.valid])
    let interrupted = false
    process.once('SIGINT', () => { interrupted = true }) // a second Ctrl-C kills at once
    console.log(`\nFine-tuning for ${iters} steps, ${batchSize} examples per step (Ctrl-C stops early and saves the adapters)`)
    const bar = progressBar('train', iters, ['loss', 'val', 'tok/s'])
    const start = performance.now()
    let tokens = 0, step = 0, window: number[] = []
    while (step < iters && !interrupted) {
      opt.lr = schedule(step)
      const batch = padBatch(batches.next(), T)
      maskTargets(batch, mask, (text) => tokenizer.encode(text))
      const { loss, ce } = smoothedLoss(model.forward(batch.inputs), batch.targets, batch.tokens, smoothing) // logits (B, T, V) → scalar
      opt.zeroGrad()
      loss.backward()
      optim.clipGradNorm(params, 1)
      opt.step()
      step++
      tokens += batch.tokens
      window.push(ce) // the plain cross-entropy, comparable with the evaluations
      if (step % evalEvery === 0 || step === iters) {
        curves[0].points.push([step, window.reduce((a, b) => a + b, 0) / window.length]) // mean train loss since the last point
        curves[1].points.push([step, evaluate(valid)])
        window = []
      }
      const valLoss = curves[1].points[curves[1].points.length - 1][1]
      bar.update(step, { loss: ce.toFixed(3), val: valLoss.toFixed(3), 'tok/s': (tokens / ((performance.now() - start) / 1000)).toFixed(0) })
      await new Promise((resolve) => setImmediate(resolve)) // let a Ctrl-C be seen between steps
    }
    bar.stop()
    const seconds = (performance.now() - start) / 1000
    console.log(`${interrupted ? 'Interrupted after' : 'Trained'} ${step} steps in ${seconds.toFixed(0)} s (${(tokens / seconds).toFixed(0)} tokens/s)`)
    if (window.length) curves[0].points.push([step, window.reduce((a, b) => a + b, 0) / window.length])

    // ---- save: the adapters and their config, or the whole model after --full
    mkdirSync(dirname(adapterFile), { recursive: true })
    if (v.full) {
      const file = join(dirname(adapterFile), 'full-model.safetensors')
      saveBase(file, model, tokenizer, { fineTunedFrom: relative(dirname(file), basePath), iters: String(step) })
      console.log(`Saved the fine-tuned model to ${relative(process.cwd(), file)}`)
    } else {
      nn.saveAdapters(adapterFile, model)
      recordAdapterBase(adapterFile, basePath, { iters: step, batchSize, lr, rank, alpha, targets, loraLayers: loraLayers ?? model.config.nLayer, quantize: bits })
      console.log(`Saved adapters to ${relative(process.cwd(), adapterFile)} (+ adapter_config.json)`)
      // what ΔW = scale·B·A turned out to be, per layer (LoRA paper, section 7; nn/lora-report.ts)
      console.log('\nWhat the adapters learned: rank of ΔW (at most r), its size next to W, and how much it amplifies directions W barely used')
      nn.loraReport(model)
    }
    if (interrupted) process.exit(130)
  }

  // ---- the adapted model's answer, and test loss before vs after --------------------------------
  if ((v.prompt !== undefined || doTrain) && useAdapter) {
    if (!v.full && strength !== 1) nn.setAdapters(model, { default: strength })
    show(v.full ? 'Fully fine-tuned model' : `Adapted model${strength !== 1 ? ` (adapter strength ${strength})` : ''}`, answer())
    if (!v.full) nn.setAdapters(model, { default: 1 })
  }
  const after = before ? { train: evaluate(train), valid: evaluate(valid), test: evaluate(test) } : null
  if (doTrain) { // the numbers behind the charts, for scripts and tests
    const log = { before, after, train: curves[0].points, valid: curves[1].points }
    writeFileSync(join(dirname(adapterFile), 'train-log.json'), JSON.stringify(log, null, 1) + '\n')
  }
  if (before && after) {
    const row = (name: string, a: number, b: number, change = true) =>
      console.log(`${name.padEnd(18)}${a.toFixed(3).padStart(9)}${b.toFixed(3).padStart(10)}${change ? `${(((b - a) / a) * 100).toFixed(0)}%`.padStart(9) : ''}`)
    console.log(`\n${''.padEnd(18)}${'base'.padStart(9)}${'adapted'.padStart(10)}${'change'.padStart(9)}`)
    row('train loss', before.train, after.train)
    row('valid loss', before.valid, after.valid)
    row('test loss', before.test, after.test)
    row('test perplexity', Math.exp(before.test), Math.exp(after.test))
  }

  // ---- charts -------------------------------------------------------------------------------------
  if (curves[1].points.length > 1) {
    console.log(`\nLoss per character (nats) by step:\n${terminalChart(curves)}`)
    const svg = join(dirname(adapterFile), 'loss.svg')
    writeSvg(svg, curves, `LoRA fine-tune: rank ${rank}, ${iters} steps, batch ${batchSize}`)
    console.log(`Wrote ${relative(process.cwd(), svg)}`)
  }

  // ---- fuse: fold the adapters into the weights ---------------------------------------------------
  if (v.fuse) {
    const quantized = bits !== null
    const { paths, reports } = nn.mergeLoRA(model, { keepQuantized: quantized })
    if (quantized) {
      const r = Object.values(reports)
      const mean = (f: (x: nn.FuseReport) => number) => r.reduce((s, x) => s + f(x), 0) / r.length
      console.log(`\nFused ${paths.length} layers by requantizing W + dW: ${(100 * mean((x) => x.codesChanged)).toFixed(1)}% of codes changed, ` +
        `${(100 * mean((x) => x.retained)).toFixed(0)}% of dW retained on average, ${(100 * mean((x) => x.groupsBelowHalfStep)).toFixed(0)}% of groups saw a dW below half a step`)
      console.log(`Test loss of the requantized fused model: ${evaluate(test).toFixed(3)}`)
      for (const [path, m] of [...model.namedModules()]) if (m instanceof nn.QuantizedLinear) model.setModule(path, m.dequantize())
    }
    const file = join(dirname(adapterFile), 'fused.safetensors')
    saveBase(file, model, tokenizer, { fusedFrom: relative(dirname(file), adapterFile) })
    console.log(`Wrote the merged model to ${relative(process.cwd(), file)} (test loss ${evaluate(test).toFixed(3)}; use it with --base FILE --no-adapter)`)
  }
}

/**
 * Cross-entropy with label smoothing: (1 − eps)·CE(target) + eps·CE(uniform), the uniform part being the mean of
 * −log p over the vocabulary. With ~100 examples the adapter memorises them; smoothing keeps it from becoming
 * certain, so held-out loss does not blow up while the trained answers are learned.  logits (B, T, V), targets (B, T)
 */
function smoothedLoss(logits: Tensor, targets: Tensor, tokens: number, eps: number): { loss: Tensor; ce: number } {
  const ce = crossEntropy(logits, targets) // mean over the non-padding positions
  if (eps === 0) return { loss: ce, ce: ce.item() }
  const real = new Tensor(targets.data.map((t) => (t === IGNORE ? 0 : 1)), targets.shape) // (B, T): 0 at padding
  const uniform = mul(sum(mul(mean(logSoftmax(logits), -1), real)), -1 / tokens) // mean over positions of −mean_v log p
  return { loss: add(mul(ce, 1 - eps), mul(uniform, eps)), ce: ce.item() }
}

/** First 16 hex digits of the sha256 of a file: which base an adapter was trained on. */
function fileHash(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16)
}

/** Add the base checkpoint's identity and the training settings to the adapter_config.json that saveAdapters wrote. */
function recordAdapterBase(adapterFile: string, basePath: string, training: Record<string, unknown>): void {
  const cfgPath = join(dirname(adapterFile), 'adapter_config.json')
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'))
  cfg.base = { file: relative(dirname(adapterFile), basePath), sha256: fileHash(basePath) }
  cfg.training = training
  writeFileSync(cfgPath + '.tmp', JSON.stringify(cfg, null, 2) + '\n')
  renameSync(cfgPath + '.tmp', cfgPath)
}

/** An adapter trained on another base checkpoint (same shapes, different weights) is refused with both hashes. */
function checkAdapterBase(adapterFile: string, basePath: string): void {
  if (!existsSync(adapterFile)) throw new Error(`adapter file ${adapterFile} not found (train one with --train)`)
  const cfgPath = join(dirname(adapterFile), 'adapter_config.json')
  if (!existsSync(cfgPath)) throw new Error(`${cfgPath} not found: an adapter file needs its adapter_config.json beside it`)
  let cfg: { base?: { sha256?: string; file?: string } }
  try {
    cfg = JSON.parse(readFileSync(cfgPath, 'utf8'))
  } catch {
    throw new Error(`${cfgPath} is not valid JSON`)
  }
  const want = cfg.base?.sha256, have = fileHash(basePath)
  if (want !== undefined && want !== have) {
    throw new Error(`${adapterFile} was trained on another base model (${cfg.base?.file}, sha256 ${want}…); ${basePath} is ${have}…`)
  }
}

runMain(main)
