// Data as mlx-lm's lora takes it, for a Hugging Face model: train/valid/test.jsonl whose lines are {"text"},
// {"prompt", "completion"} or {"messages": [{"role", "content"}, …]} (with "tools", optionally). The format is read
// from each file's first line and every other line must share it. Chat lines, and completions when the model has a
// chat template, are written with that template; --mask-prompt trains on the completion (the last turn) only.
import { readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { nn } from '../../src/node'
import { padBatch, IGNORE } from './batches'
import type { Batch } from './step'
import type { Data } from './data'
import { shown } from './paths'

export type Format = 'text' | 'completions' | 'chat'
/** One line, checked: what it holds, and where it is, for errors. */
type Line = { format: Format; row: Record<string, unknown>; where: string }
/** One example as token ids, and how many of its first tokens are prompt (0 for text). */
type Example = { ids: number[]; prompt: number }

const SHAPES = '{"text": ...}, {"prompt": ..., "completion": ...} or {"messages": [{"role": ..., "content": ...}]}'

/** The format of one parsed line, or an error naming file:line and what was expected. */
export function lineFormat(row: unknown, where: string): Format {
  const bad = (what: string): never => {
    throw new Error(`${where}: ${what}`)
  }
  if (typeof row !== 'object' || row === null || Array.isArray(row))
    return bad(`expected an object, ${SHAPES}; got ${JSON.stringify(row).slice(0, 60)}`)
  const r = row as Record<string, unknown>
  if ('messages' in r) {
    const m = r.messages
    if (!Array.isArray(m) || m.length === 0) return bad('"messages" must be a non-empty list of {"role", "content"}')
    for (const [i, turn] of m.entries()) {
      const ok = typeof turn === 'object' && turn !== null && typeof turn.role === 'string'
      if (!ok || (typeof turn.content !== 'string' && !('tool_calls' in turn)))
        bad(`messages[${i}] must be {"role": string, "content": string}, got ${JSON.stringify(turn).slice(0, 60)}`)
    }
    if (r.tools !== undefined && !Array.isArray(r.tools)) bad('"tools" must be a list of tool descriptions')
    return 'chat'
  }
  if ('prompt' in r || 'completion' in r) {
    if (typeof r.prompt !== 'string' || typeof r.completion !== 'string' || r.completion === '')
      bad('expected "prompt" and a non-empty "completion", both strings')
    return 'completions'
  }
  if (typeof r.text === 'string' && r.text !== '') return 'text'
  return bad(`expected ${SHAPES}; got keys ${JSON.stringify(Object.keys(r)).slice(0, 60)}`)
}

/** A jsonl file's lines, checked, all of one format (the first line's). */
export function readLines(file: string): { format: Format; lines: Line[] } {
  if (!existsSync(file)) throw new Error(`${file}: no such file`)
  const lines: Line[] = []
  for (const [i, text] of readFileSync(file, 'utf8').split('\n').entries()) {
    if (text.trim() === '') continue
    const where = `${shown(file)}:${i + 1}`
    let row: unknown
    try {
      row = JSON.parse(text)
    } catch (err) {
      throw new Error(`${where}: not valid JSON (${err instanceof Error ? err.message : String(err)})`)
    }
    const format = lineFormat(row, where)
    if (lines.length && format !== lines[0].format)
      throw new Error(
        `${where}: a ${format} line in a file of ${lines[0].format} lines (${lines[0].where}): mixed formats`,
      )
    lines.push({ format, row: row as Record<string, unknown>, where })
  }
  if (lines.length === 0) throw new Error(`${shown(file)}: no examples (expected one JSON object per line: ${SHAPES})`)
  return { format: lines[0].format, lines }
}

/** Token ids of one line, and the length of its prompt: the ids before the last turn's (or the completion's). */
export function encodeLine(tokenizer: nn.Tokenizer, { format, row, where }: Line): Example {
  const eos = tokenizer.eosTokenId
  if (format === 'text') {
    const ids = tokenizer.encode(row.text as string)
    return { ids: eos !== null && ids[ids.length - 1] !== eos ? [...ids, eos] : ids, prompt: 0 } // as mlx-lm
  }
  if (format === 'completions' && !tokenizer.hasChatTemplate) {
    // no chat template: the prompt's tokens, the completion's, then eos (each part encoded alone: an exact boundary)
    const prompt = tokenizer.encode(row.prompt as string)
    const completion = tokenizer.encode(row.completion as string, { addSpecialTokens: false })
    return { ids: [...prompt, ...completion, ...(eos === null ? [] : [eos])], prompt: prompt.length }
  }
  if (!tokenizer.hasChatTemplate)
    throw new Error(`${where}: chat data needs a chat template, and this model's tokenizer_config.json has none`)
  const messages: nn.ChatMessage[] =
    format === 'chat'
      ? (row.messages as nn.ChatMessage[])
      : [
          { role: 'user', content: row.prompt },
          { role: 'assistant', content: row.completion },
        ]
  const tools = Array.isArray(row.tools) ? row.tools : undefined
  try {
    const ids = tokenizer.encodeChat(messages, { tools })
    const before = tokenizer.encodeChat(messages.slice(0, -1), { tools, addGenerationPrompt: true })
    let prompt = 0 // the ids the rendering of the earlier turns shares with the whole conversation
    while (prompt < before.length && before[prompt] === ids[prompt]) prompt++
    return { ids, prompt }
  } catch (err) {
    throw new Error(`${where}: ${err instanceof Error ? err.message : String(err)}`)
  }
}

/**
 * The three splits of `dir` for `tokenizer`, each example cut to `maxLength` tokens (counted and said); with
 * `maskPrompt` a batch's prompt targets are IGNORE, so only completions train (the masked share is printed).
 */
export function loadHFData(
  dir: string,
  tokenizer: nn.Tokenizer,
  { maxLength, maskPrompt, batchSize }: { maxLength: number; maskPrompt: boolean; batchSize: number },
): Data {
  const prompts = new WeakMap<number[], number>() // each example's prompt length, by its ids
  const formats: string[] = []
  let cut = 0,
    firstCut = '',
    promptOnly = 0
  const split = (name: string) => {
    const file = join(dir, `${name}.jsonl`)
    const { format, lines } = readLines(file)
    if (maskPrompt && format === 'text')
      throw new Error(`--mask-prompt needs prompt/completion or chat data, but ${shown(file)} holds text lines`)
    formats.push(`${name} ${format}`)
    const examples = lines
      .map((line) => {
        const { ids, prompt } = encodeLine(tokenizer, line)
        if (ids.length > maxLength && cut++ === 0) firstCut = line.where
        const kept = ids.slice(0, maxLength)
        prompts.set(kept, Math.min(prompt, kept.length))
        return kept
      })
      .filter((ids) => !maskPrompt || prompts.get(ids)! < ids.length || (promptOnly++, false))
    if (examples.length === 0)
      throw new Error(`${shown(file)}: no example has a completion token within the first ${maxLength} tokens`)
    return examples
  }
  const [train, valid, test] = ['train', 'valid', 'test'].map(split)
  if (batchSize > train.length)
    throw new Error(`--batch-size ${batchSize} is more than the ${train.length} training examples in ${shown(dir)}`)
  console.log(`Data: ${train.length} train, ${valid.length} valid, ${test.length} test examples from ${shown(dir)}`)
  console.log(`  formats: ${formats.join(', ')}`)
  if (cut) console.log(`Note: ${cut} example(s) (first: ${firstCut}) longer than ${maxLength} tokens were cut to that`)
  if (promptOnly) console.log(`Note: ${promptOnly} example(s) left out: no completion token within ${maxLength} tokens`)
  const promptOf = (ids: number[]) => prompts.get(ids) ?? 0
  const batch = (examples: number[][]): Batch => {
    const b = padBatch(examples, maxLength - 1)
    if (maskPrompt) maskPrompts(b, examples.map(promptOf))
    return b
  }
  if (maskPrompt) {
    const all = train.reduce((s, e) => s + e.length - 1, 0)
    const masked = train.reduce((s, e) => s + Math.max(0, promptOf(e) - 1), 0)
    const share = ((100 * masked) / all).toFixed(1)
    console.log(`--mask-prompt: ${masked} of ${all} training targets (${share}%) are prompt tokens, not trained on`)
  }
  return { train, valid, test, batch }
}

/**
 * Set the targets that predict prompt tokens to IGNORE, in place: targets[t] predicts token t + 1, so a prompt of
 * p tokens covers targets 0 … p − 2, and the first trained target predicts the completion's first token.
 */
export function maskPrompts(batch: Batch, prompts: number[]): void {
  const [B, T] = batch.targets.shape
  for (let b = 0; b < B; b++)
    for (let t = 0; t < Math.min(prompts[b] - 1, T); t++) {
      if (batch.targets.data[b * T + t] !== IGNORE) batch.tokens--
      batch.targets.data[b * T + t] = IGNORE
    }
}
