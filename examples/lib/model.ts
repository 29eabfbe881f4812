// The model side the scripts share: the base (the tiny checkpoint, or a Hugging Face folder with --model), a run's
// adapters on it (on the base quantized as the run trained it), its data, and the model's answer to a prompt.
import { dirname, join } from 'node:path'
import { Tensor, nn } from '../../src/node'
import { loadBase } from './checkpoint'
import { CharTokenizer } from './tokenizer'
import { ADAPTERS, checkBase, readRun } from './runs'
import { BASE_PATH, DATA_DIR, shown } from './paths'
import { loadData, type Data } from './data'
import { loadHF, answerHF, promptIds, layerCount, defaultTargets, type HFModel } from './hf'
import { loadHFData } from './hf-data'
import type { MaskMode } from './batches'
import type { Flags, Name } from './flags'

/** The adapter's name in the model; one adapter at a time here. */
export const ADAPTER = 'default'

/** The base checkpoint (--base, else examples/base) and its tokenizer, described in two lines; `who` names it. */
export function loadModel(base: string | undefined) {
  const basePath = base ?? BASE_PATH
  const { model, tokenizer } = loadBase(basePath)
  const { nLayer, nEmbd, blockSize } = model.config
  const size = `${nLayer} layers, ${nEmbd} channels, a ${blockSize}-character context`
  console.log(`Base model: ${shown(basePath)}\n  ${model.numParameters().toLocaleString('en-US')} parameters: ${size}`)
  const who = base === undefined ? 'Base model (knows English, not Tenny)' : `Base model (${shown(basePath)})`
  return { model, tokenizer, basePath, who }
}

/** The model a script works on: the tiny GPT of examples/base (or --base), or a Hugging Face folder (--model). */
export type Base = { path: string; who: string; unit: 'character' | 'token' } & (
  { kind: 'tiny'; model: nn.GPT; tokenizer: CharTokenizer } | { kind: 'hf'; model: HFModel; tokenizer: nn.Tokenizer }
)

/** --model's folder, else the tiny checkpoint of --base (or examples/base). */
export function openBase(flags: { base?: string; model?: string }): Base {
  if (flags.model !== undefined) {
    const { model, tokenizer, who } = loadHF(flags.model)
    return { kind: 'hf', model, tokenizer, path: flags.model, who, unit: 'token' }
  }
  const { model, tokenizer, basePath, who } = loadModel(flags.base)
  return { kind: 'tiny', model, tokenizer, path: basePath, who, unit: 'character' }
}

/** The most tokens the base attends over. */
export const contextOf = (base: Base) => (base.kind === 'hf' ? base.model.contextSize : base.model.config.blockSize)

/** Decoder layers: what --lora-layers counts. */
export const layersOf = (base: Base) => (base.kind === 'hf' ? layerCount(base.model) : base.model.config.nLayer)

/** The LoRA targets when --targets is not given: the tiny model's table default, or q_proj, v_proj (c_attn). */
export const targetsOf = (base: Base, targets: string[], given: boolean) =>
  base.kind === 'hf' && !given ? defaultTargets(base.model) : targets

/** The settings that shape the data: the tiny model's --mask, or --mask-prompt and --max-seq-length. */
type DataFlags = { data?: string; mask: MaskMode; maskPrompt?: boolean; maxSeqLength?: number; valBatches?: number }

/**
 * train/valid/test.jsonl of --data as token ids for the base (the tiny model's Q&A text, or mlx-lm's formats); with
 * --model a loss is measured with the training batch size (mlx-lm's: what fits training fits evaluation) on the
 * first --val-batches batches of a split.
 */
export function baseData(base: Base, flags: DataFlags, batchSize = 1): Data {
  const dir = flags.data ?? DATA_DIR
  if (base.kind === 'tiny') return loadData(dir, base.tokenizer, base.model.config.blockSize, flags.mask, batchSize)
  const maxLength = Math.min(flags.maxSeqLength ?? 2048, base.model.contextSize + 1) // inputs fit the context
  const data = loadHFData(dir, base.tokenizer, { maxLength, maskPrompt: flags.maskPrompt ?? false, batchSize })
  data.evalBatch = batchSize
  if (flags.valBatches !== undefined && Number.isFinite(flags.valBatches)) {
    data.measured = flags.valBatches * batchSize
    if (data.measured < Math.max(data.train.length, data.valid.length, data.test.length))
      console.log(`Losses are measured on the first ${data.measured} examples of each split (--val-batches)`)
  }
  return data
}

/** applyLoRA's settings from the flags; with --model its default targets, and 16 layers at most of those it has. */
export function loraOptions(base: Base, flags: Flags<'example'>): nn.ApplyLoRAOptions {
  const { rank, alpha, loraDropout: dropout, useDora } = flags
  const targets = targetsOf(base, flags.targets, flags.given.has('targets'))
  const given = flags.given.has('loraLayers') ? flags.loraLayers : undefined // too many given: applyLoRA says so
  const layers = given ?? (flags.loraLayers === undefined ? undefined : Math.min(flags.loraLayers, layersOf(base)))
  return { name: ADAPTER, targets, layers, rank, alpha, dropout, useDora }
}

/** A prompt the base cannot spell or fit is an error before anything runs. */
export function checkBasePrompt(base: Base, prompt: string, chat = false): void {
  if (base.kind === 'tiny') return checkPrompt(prompt, base.tokenizer, base.model.config.blockSize)
  const length = promptIds(base.tokenizer, prompt, chat).length
  if (length >= base.model.contextSize)
    throw new Error(`--prompt is ${length} tokens; the model's context is ${base.model.contextSize}`)
}

type AnswerFlags = { prompt: string; maxTokens: number; temp: number; seed: number; chat?: boolean }

/** The base's answer to --prompt: up to a newline (the tiny model) or its eos token (--model). */
export function baseAnswer(base: Base, flags: AnswerFlags): string {
  if (base.kind === 'tiny') return answer(base.model, base.tokenizer, flags)
  return answerHF(base.model, base.tokenizer, { ...flags, chat: flags.chat ?? false })
}

/** Quantize the base's Linear layers to `bits` (QLoRA), saying so. */
export function quantizeBase(model: nn.Module, bits: 4 | 8 | null): void {
  if (bits === null) return
  const { paths } = nn.quantize(model, { bits, groupSize: 64 })
  console.log(`Quantized ${paths.length} Linear layers to ${bits} bits (groups of 64): the base is frozen codes now.`)
}

/** The quantization the run in `folder` trained on (its run.json), so that its adapters answer on the same base. */
export function trainedBits(folder: string): 4 | 8 | null {
  const bits = readRun(folder)?.training.quantize
  return bits === 4 || bits === 8 ? bits : null
}

/** Load the adapters of the run in `folder` onto `model` (trained on the same base: checked), and say which. */
export function loadRunAdapters(model: nn.Module, folder: string, basePath: string, newest: boolean): void {
  checkBase(folder, basePath)
  nn.loadAdapters(model, join(folder, ADAPTERS), { name: ADAPTER })
  console.log(`Adapters: ${shown(folder)}${newest ? ' (the newest run; --adapter-path DIR picks another)' : ''}`)
}

/** Scale the adapters' ΔW by `strength` when answering (1: as trained). */
export const setStrength = (model: nn.Module, strength: number) => nn.setAdapters(model, { [ADAPTER]: strength })

/** A prompt the model cannot spell or fit is an error before anything runs. */
export function checkPrompt(prompt: string, tokenizer: CharTokenizer, blockSize: number): void {
  const length = tokenizer.encode(prompt, '--prompt').length
  if (length >= blockSize) throw new Error(`--prompt is ${length} characters; the model's context is ${blockSize}`)
}

/** The model's continuation of `prompt`, up to the first newline (temperature 0: the likeliest characters). */
export function answer(
  model: nn.GPT,
  tokenizer: CharTokenizer,
  { prompt, maxTokens, temp, seed }: { prompt: string; maxTokens: number; temp: number; seed: number },
): string {
  const ids = tokenizer.encode(prompt, '--prompt')
  const room = Math.min(maxTokens, model.config.blockSize - ids.length)
  const out = model.generate(new Tensor(Float32Array.from(ids), [1, ids.length]), room, { temperature: temp, seed })
  return tokenizer.decode(out.data.subarray(ids.length)).split('\n')[0]
}

/** Print an answer under a header saying whose it is. */
export const show = (who: string, prompt: string, text: string) => console.log(`\n${who}:\n${prompt}${text}`)

/** Continue from saved adapters: their layers, rank, scale and kind (--rank, --alpha, --targets may not contradict). */
export function resumeFrom(model: nn.Module, flags: Flags<'example'>, basePath: string): void {
  const file = flags.resumeAdapterFile!
  checkBase(dirname(file), basePath)
  nn.loadAdapters(model, file, { name: ADAPTER })
  const adapters = nn.loraAdapters(model, ADAPTER).map(([, adapter]) => adapter)
  const { rank, scale } = adapters[0]
  const asked = nn.loraScale(rank, 'alpha/rank', { alpha: flags.alpha }).scale // what --alpha gives at this rank
  const given = (name: Name) => flags.given.has(name)
  if (given('rank') && flags.rank !== rank)
    throw new Error(`--rank ${flags.rank} differs from ${shown(file)}, which has rank ${rank}: ${DROP('--rank')}`)
  if (given('alpha') && asked !== scale)
    throw new Error(
      `--alpha ${flags.alpha} gives scale ${asked}, but ${shown(file)} has scale ${scale}: ${DROP('--alpha')}`,
    )
  if (given('targets') || given('loraLayers'))
    throw new Error(`--targets and --lora-layers cannot change a resumed run: its layers are ${shown(file)}'s`)
  const dora = adapters[0] instanceof nn.DoRALinear
  if (flags.useDora && !dora) throw new Error(`--use-dora cannot resume ${shown(file)}: its adapters are plain LoRA`)
  if (given('loraDropout')) for (const adapter of adapters) adapter.dropout = flags.loraDropout // this run's
  console.log(`Resuming from ${shown(file)} (${dora ? 'DoRA, ' : ''}rank ${rank}, scale ${scale})`)
}
const DROP = (flag: string) => `drop ${flag} to resume with the file's`

/** The settings run.json records; the adapters' as the model holds them (a resumed run's come from its file). */
export function trainingRecord(base: Base, f: Flags<'example'>, steps: number, keptStep: number) {
  const model = base.model
  const layer = nn.loraAdapters(model, ADAPTER)[0]?.[1]
  const [rank, alpha] = layer ? [layer.rank, layer.alpha] : [f.rank, f.alpha]
  const [useDora, loraDropout] = layer ? [layer instanceof nn.DoRALinear, layer.dropout] : [f.useDora, f.loraDropout]
  return {
    iters: f.iters,
    steps,
    keptStep,
    batchSize: f.batchSize,
    lr: f.lr,
    rank,
    alpha,
    targets: targetsOf(base, f.targets, f.given.has('targets')),
    loraLayers: Math.min(f.loraLayers ?? Infinity, layersOf(base)),
    useDora,
    loraDropout,
    labelSmoothing: f.labelSmoothing,
    mask: f.mask,
    ...(base.kind === 'hf' ? { model: base.path, maskPrompt: f.maskPrompt, maxSeqLength: f.maxSeqLength } : {}),
    stepsPerEval: f.stepsPerEval,
    patience: Number.isFinite(f.patience) ? f.patience : null,
    quantize: f.quantize,
    full: f.full,
    seed: f.seed,
  }
}
