// The scripts on a Hugging Face model folder (--model DIR, as mlx-lm's): loading it with its tokenizer, the hash that
// ties a run to the model it trained on, its answer to a prompt through its tokenizer (and chat template), and the
// fused model written back as a Hugging Face folder that loadPretrained (and transformers) read.
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { Tensor, nn } from '../../src/node'
import { serializeSafetensors, type Dtype, type StoredTensor } from '../../src/formats/safetensors'
import { writeFilesAtomic } from '../../src/formats/files-node'
import { shown } from './paths'

export type HFModel = nn.PretrainedModel

/** The files of a folder the fused copy takes along unchanged, when they are there. */
const COPIED = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
]

/** The model and tokenizer of a Hugging Face folder; a folder without tokenizer.json is refused (no text in). */
export function loadHF(dir: string): { model: HFModel; tokenizer: nn.Tokenizer; who: string } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`--model ${shown(dir)} is not a folder`)
  const { model, tokenizer } = nn.loadPretrained(dir)
  if (!tokenizer)
    throw new Error(`--model ${shown(dir)} has no tokenizer.json: the examples need the model's tokenizer`)
  const arch = model instanceof nn.LlamaForCausalLM ? 'Llama' : 'GPT-2'
  const size = `${layerCount(model)} layers, ${model.contextSize}-token context, ${model.vocabSize} tokens`
  console.log(`Model: ${shown(dir)}\n  ${model.numParameters().toLocaleString('en-US')} parameters (${arch}): ${size}`)
  return { model, tokenizer, who: `Base model (${shown(dir)})` }
}

/** The decoder layers of the model: Llama's model.layers, GPT-2's transformer.h. */
export const layerCount = (model: HFModel) =>
  model instanceof nn.LlamaForCausalLM ? model.config.numHiddenLayers : model.config.nLayer

/** mlx-lm's default LoRA targets: the query and value projections (GPT-2 packs q, k and v into c_attn). */
export const defaultTargets = (model: HFModel) =>
  model instanceof nn.LlamaForCausalLM ? ['q_proj', 'v_proj'] : ['c_attn']

/**
 * Which model a run trained on: the first 16 hex digits of the sha256 of config.json and of every weight's name and
 * shape (from the safetensors headers, nothing decoded). Another architecture or size gets another hash.
 */
export function modelHash(dir: string): string {
  const hash = createHash('sha256').update(readFileSync(join(dir, 'config.json')))
  for (const [name, shape] of weightShapes(dir)) hash.update(`${name} ${shape.join('x')}\n`)
  return hash.digest('hex').slice(0, 16)
}

/** Every weight's name and shape in the folder's safetensors files, sorted by name. */
function weightShapes(dir: string): [string, number[]][] {
  const index = join(dir, 'model.safetensors.index.json')
  const files = existsSync(index)
    ? [...new Set(Object.values(JSON.parse(readFileSync(index, 'utf8')).weight_map as Record<string, string>))]
    : ['model.safetensors']
  const all = files.flatMap((f) => Object.entries(header(join(dir, f))))
  return all
    .filter(([name]) => name !== '__metadata__')
    .map(([name, e]): [string, number[]] => [name, (e as { shape: number[] }).shape])
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
}

/** A safetensors file's JSON header (loadPretrained has checked the file already). */
function header(file: string): Record<string, { dtype?: string; shape?: number[] }> {
  const fd = openSync(file, 'r')
  try {
    const head = Buffer.alloc(8)
    readSync(fd, head, 0, 8, 0)
    const bytes = Buffer.alloc(Number(head.readBigUInt64LE(0)))
    readSync(fd, bytes, 0, bytes.length, 8)
    return JSON.parse(bytes.toString('utf8'))
  } finally {
    closeSync(fd)
  }
}

/** The dtype the folder's weights are stored in (the first weight's), which the fused copy keeps. */
export function sourceDtype(dir: string): Dtype {
  const index = join(dir, 'model.safetensors.index.json')
  const file = existsSync(index)
    ? Object.values(JSON.parse(readFileSync(index, 'utf8')).weight_map as Record<string, string>)[0]
    : 'model.safetensors'
  const first = Object.entries(header(join(dir, file))).find(([name]) => name !== '__metadata__')
  const dtype = first?.[1].dtype
  return dtype === 'F16' || dtype === 'BF16' ? dtype : 'F32'
}

/**
 * The model's answer to `prompt`: through the chat template with `chat` (a user turn and the assistant's header),
 * up to its eos token or maxTokens, special tokens left out of the text.
 */
export function answerHF(
  model: HFModel,
  tokenizer: nn.Tokenizer,
  {
    prompt,
    maxTokens,
    temp,
    seed,
    chat,
  }: { prompt: string; maxTokens: number; temp: number; seed: number; chat: boolean },
): string {
  const ids = promptIds(tokenizer, prompt, chat)
  const room = Math.min(maxTokens, model.contextSize - ids.length)
  const out = model.generate(new Tensor(Float32Array.from(ids), [1, ids.length]), room, { temperature: temp, seed })
  const answer = Array.from(out.data.subarray(ids.length))
  const end = answer.indexOf(tokenizer.eosTokenId ?? -1)
  return tokenizer.decode(end < 0 ? answer : answer.slice(0, end), { skipSpecialTokens: true })
}

/** The token ids of --prompt: as text, or (--chat) as a user's turn in the model's chat template. */
export function promptIds(tokenizer: nn.Tokenizer, prompt: string, chat: boolean): number[] {
  if (!chat) return tokenizer.encode(prompt)
  if (!tokenizer.hasChatTemplate) throw new Error('--chat: this model has no chat template (tokenizer_config.json)')
  return tokenizer.encodeChat([{ role: 'user', content: prompt }], { addGenerationPrompt: true })
}

/**
 * Write `model` (adapters fused, floats) into `dir` as a Hugging Face folder: model.safetensors in the source's
 * dtype under transformers' names, and the source's config and tokenizer files, all written atomically.
 */
export function saveHFFolder(dir: string, model: HFModel, source: string): void {
  const dtype = sourceDtype(source)
  const tensors: Record<string, StoredTensor> = {}
  for (const [name, t] of Object.entries(model.stateDict())) tensors[name] = { dtype, shape: t.shape, data: t.data }
  if (model.config.tieWordEmbeddings) delete tensors['lm_head.weight'] // the embeddings' Tensor, stored once
  const weights = serializeSafetensors(tensors, { format: 'pt' }) // transformers reads files whose format is "pt"
  const copies = COPIED.filter((f) => existsSync(join(source, f))).map((f): [string, Uint8Array] => [
    join(dir, f),
    readFileSync(join(source, f)),
  ])
  writeFilesAtomic([[join(dir, 'model.safetensors'), weights], ...copies], 'fuse')
}
