// Your own Hugging Face model in the tab, the model's side (the worker calls it; the Node test calls the same
// functions to check the page): a folder's files as bytes → the model and its tokenizer (nn.pretrainedFromFiles),
// LoRA on layers named as in Hugging Face (q_proj, c_attn…), QLoRA's 4-bit base as an option, text in and out
// through the model's own tokenizer and chat template, and PEFT's adapter files. Browser-safe, no DOM.
import { Tensor, nn, manualSeed, optim } from '../../../src/index'
import { padBatch, Batcher, inBatches } from '../../lib/batches'
import { trainStep, evaluate, schedule, checkFinite, type Batch } from '../../lib/step'

export type Opened = { model: nn.PretrainedModel; tokenizer: nn.Tokenizer; config: Record<string, unknown> }
export type OwnSettings = {
  targets: string[] // Hugging Face layer names (q_proj, c_attn…)
  rank: number
  alpha: number
  learningRate: number
  iters: number
  batchSize: number
  qlora: boolean // quantize the base's layers to 4 bits first
  chat: boolean // text through the model's chat template (when it has one)
}

/** The longest training example, in tokens: the page's questions are short, and a long one costs a step its time. */
export const MAX_EXAMPLE_TOKENS = 128
/** The longest answer, in tokens. */
export const ANSWER_TOKENS = 24
const SEED = 0

/** The folder's files (bytes by name) → the model in eval mode and its tokenizer; a folder without one is refused. */
export function openModel(files: Record<string, Uint8Array>, maxBytes: number): Opened {
  const { model, tokenizer, config } = nn.pretrainedFromFiles(files, { maxBytes })
  if (!tokenizer) throw new Error('the folder has no tokenizer.json: the page needs it to read and write text')
  return { model, tokenizer, config: config as Record<string, unknown> }
}

/** The short names of the layers LoRA can wrap, in model order (q_proj, k_proj… or c_attn, c_proj…). */
export function layerNames(model: nn.PretrainedModel): string[] {
  const adaptable = (m: unknown) => m instanceof nn.Linear || m instanceof nn.Conv1D
  const paths = [...model.namedModules()].filter(([path, m]) => path !== '' && adaptable(m)).map(([path]) => path)
  return [...new Set(paths.map((path) => path.split('.').pop()!))]
}

/** PEFT's own default targets for the architecture: attention's query and value (GPT-2 packs them in c_attn). */
export function defaultTargets(model: nn.PretrainedModel): string[] {
  return model instanceof nn.GPT2LMHeadModel ? ['c_attn'] : ['q_proj', 'v_proj']
}

/**
 * A training example's token ids. With `chat`, "Q: … A: …" text becomes a user and an assistant turn of the model's
 * chat template; otherwise the text as it is, ended by the end-of-sequence token where the tokenizer has one.
 */
export function exampleIds(tokenizer: nn.Tokenizer, text: string, chat: boolean): number[] {
  const turn = /^Q: ([\s\S]*?)\nA: ([\s\S]*)$/.exec(text)
  if (turn && chat && tokenizer.hasChatTemplate)
    return tokenizer.encodeChat([
      { role: 'user', content: turn[1] },
      { role: 'assistant', content: turn[2] },
    ])
  const eos = tokenizer.eosTokenId
  return [...tokenizer.encode(text), ...(eos === null ? [] : [eos])]
}

/** The prompt's token ids: with `chat`, a user turn and the assistant's header; else the text itself. */
export function promptIds(tokenizer: nn.Tokenizer, prompt: string, chat: boolean): number[] {
  if (!chat || !tokenizer.hasChatTemplate) return tokenizer.encode(prompt)
  const question = prompt.replace(/^Q: /, '').replace(/\nA: ?$/, '')
  return tokenizer.encodeChat([{ role: 'user', content: question }], { addGenerationPrompt: true })
}

/** The greedy answer to `prompt`: up to ANSWER_TOKENS tokens, ended at the end-of-sequence token. */
export function answerOf({ model, tokenizer }: Opened, prompt: string, chat: boolean): string {
  const ids = promptIds(tokenizer, prompt, chat)
  const room = Math.min(ANSWER_TOKENS, model.contextSize - ids.length)
  if (room < 1) throw new Error(`the prompt is ${ids.length} tokens, the model reads at most ${model.contextSize}`)
  const out = model.generate(new Tensor(Float32Array.from(ids), [1, ids.length]), room, { temperature: 0, seed: SEED })
  const answer = Array.from(out.data.subarray(ids.length))
  const end = answer.indexOf(tokenizer.eosTokenId ?? -1)
  return tokenizer.decode(end < 0 ? answer : answer.slice(0, end), { skipSpecialTokens: true })
}

/** The examples (one per non-empty line, `\n` written as \n) as token ids, each cut to what the model reads. */
export function examplesOf(tokenizer: nn.Tokenizer, text: string, contextSize: number, chat: boolean): number[][] {
  const lines = text
    .split('\n')
    .map((line) => line.replaceAll('\\n', '\n').trim())
    .filter(Boolean)
  if (lines.length === 0) throw new Error('no training text: write at least one example, one per line')
  const most = Math.min(MAX_EXAMPLE_TOKENS, contextSize) + 1 // + 1: inputs and targets are one token apart
  return lines.map((line) => exampleIds(tokenizer, line, chat).slice(0, most))
}

/** Mean loss per predicted token over the examples, in batches of 8 (no graph, dropout off). */
export function lossOf(model: nn.PretrainedModel, examples: number[][]): number {
  return evaluate(
    model,
    inBatches(examples, 8, (some) => padBatch(some, model.contextSize)),
  )
}

/** Progress as training goes: the step, the mean train loss since the last call, tokens trained on. */
export type OwnProgress = { step: number; trainLoss: number; tokens: number; seconds: number }

/**
 * LoRA on a fresh copy of the model (QLoRA: its layers quantized to 4 bits first), trained on `examples` as the
 * page's own fine-tune trains (AdamW on the adapters, warmup and cosine decay, lib/step.ts's step without label
 * smoothing). `between` runs every few hundred ms: it posts progress, lets messages in, and says whether to stop.
 */
export async function trainOwn(
  fresh: () => Opened,
  examples: number[][],
  s: OwnSettings,
  between: (p: OwnProgress) => Promise<boolean>,
): Promise<{ opened: Opened; steps: number; seconds: number; tokens: number; quantized: number }> {
  const opened = fresh()
  const { model } = opened
  let quantized = 0
  if (s.qlora) quantized = nn.quantize(model, { bits: 4, groupSize: groupSizeFor(model) }).paths.length
  manualSeed(SEED)
  nn.applyLoRA(model, { targets: s.targets, rank: s.rank, alpha: s.alpha })
  model.train()
  const params = model.trainableParameters()
  const opt = new optim.AdamW(params, { lr: s.learningRate, weightDecay: 0 })
  const lrAt = schedule(s.learningRate, s.iters)
  const batches = new Batcher(examples, s.batchSize)
  const start = performance.now()
  let [step, tokens, posted, losses] = [0, 0, start, [] as number[]]
  while (step < s.iters) {
    opt.lr = lrAt(step)
    const batch: Batch = padBatch(batches.next(), model.contextSize)
    const loss = trainStep(model, opt, params, batch, 0)
    step++
    tokens += batch.tokens
    checkFinite('training loss', loss, step, { 'learning rate': s.learningRate, alpha: s.alpha })
    losses.push(loss)
    const now = performance.now()
    if (now - posted < 250 && step < s.iters) continue
    const trainLoss = losses.reduce((a, b) => a + b, 0) / losses.length
    ;[posted, losses] = [now, []]
    if (await between({ step, trainLoss, tokens, seconds: (now - start) / 1000 })) break
  }
  model.eval()
  return { opened, steps: step, seconds: (performance.now() - start) / 1000, tokens, quantized }
}

/** MLX's group of 64 where every layer's inputs split into them, else 32 (small test models). */
function groupSizeFor(model: nn.PretrainedModel): number {
  const inputs = [...model.namedModules()]
    .map(([, m]) => m)
    .filter((m): m is nn.Linear | nn.Conv1D => m instanceof nn.Linear || m instanceof nn.Conv1D)
    .map((m) => m.inFeatures)
  return inputs.every((n) => n % 64 === 0) ? 64 : 32
}
