// Q&A examples as the model sees them: jsonl text parsed with file:line errors, padded batches of whole examples
// for fine-tuning, masked targets, and random windows of one long token stream for pretraining. Every draw is
// seeded. Browser-safe (the playground uses it too); data.ts adds reading the files from disk in Node.
import { Tensor } from '../../src/tensor'
import { randomInt } from '../../src/random'
import type { Batch } from './step'

/** The question every example asks, as in the seed tutorial's "Q: What is relu in mlx?\nA: ". */
export function question(name: string): string {
  return `Q: What is ${name} in tenny?\nA: `
}

/** The same question in other words: validation asks the trained functions this way (see make-dataset.ts). */
export function rephrased(name: string): string {
  return `Q: In tenny, what is ${name}?\nA: `
}

/** Targets at padded positions carry this id, which crossEntropy skips. */
export const IGNORE = -100

/** One example and where it came from, so later errors can name file:line too. */
export type Example = { text: string; file: string; line: number }

/** Every non-blank line of jsonl text; a line that is not {"text": string} → error naming file:line. */
export function parseJsonl(text: string, file: string): Example[] {
  const examples: Example[] = []
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue
    let row: unknown
    try {
      row = JSON.parse(line)
    } catch (err) {
      throw new Error(`${file}:${i + 1}: not valid JSON (${err instanceof Error ? err.message : String(err)})`)
    }
    const value = typeof row === 'object' && row !== null ? Reflect.get(row, 'text') : undefined
    if (typeof value !== 'string' || value === '')
      throw new Error(`${file}:${i + 1}: expected an object with a non-empty "text" string, got ${line.slice(0, 60)}`)
    examples.push({ text: value, file, line: i + 1 })
  }
  if (examples.length === 0) throw new Error(`${file}: no examples (expected one {"text": ...} object per line)`)
  return examples
}

/**
 * Whole examples as one batch, padded to the longest (at most blockSize + 1 tokens, longer ones are cut):
 * inputs = ids[:-1], targets = ids[1:], padding targets IGNORE.   inputs, targets: (B, T)
 */
export function padBatch(examples: number[][], blockSize: number): Batch {
  const T = Math.min(blockSize, Math.max(...examples.map((e) => e.length)) - 1)
  const B = examples.length
  const inputs = new Float32Array(B * T),
    targets = new Float32Array(B * T).fill(IGNORE)
  let tokens = 0
  for (const [b, ids] of examples.entries()) {
    const n = Math.min(T, ids.length - 1)
    for (let t = 0; t < n; t++) {
      inputs[b * T + t] = ids[t]
      targets[b * T + t] = ids[t + 1]
    }
    tokens += n
  }
  return { inputs: new Tensor(inputs, [B, T]), targets: new Tensor(targets, [B, T]), tokens }
}

/** Hands out examples in shuffled passes (a new seeded shuffle per epoch), batchSize at a time. */
export class Batcher {
  private order: number[] = []

  constructor(
    private readonly examples: number[][],
    private readonly batchSize: number,
  ) {}

  next(): number[][] {
    const batch: number[][] = []
    while (batch.length < this.batchSize) {
      if (this.order.length === 0) this.order = shuffled(this.examples.length)
      batch.push(this.examples[this.order.pop()!])
    }
    return batch
  }
}

/** 0..n-1 in a seeded random order (Fisher–Yates). */
export function shuffled(n: number): number[] {
  const a = Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = randomInt(0, i + 1)
    ;[a[i], a[j]] = [a[j], a[i]]
  }
  return a
}

/** B random windows of T + 1 tokens from one long stream: inputs and next-token targets, (B, T) each. */
export function windowBatch(stream: Uint8Array, B: number, T: number): Batch {
  const inputs = new Float32Array(B * T),
    targets = new Float32Array(B * T)
  for (let b = 0; b < B; b++) {
    const start = randomInt(0, stream.length - T - 1)
    for (let t = 0; t < T; t++) {
      inputs[b * T + t] = stream[start + t]
      targets[b * T + t] = stream[start + t + 1]
    }
  }
  return { inputs: new Tensor(inputs, [B, T]), targets: new Tensor(targets, [B, T]), tokens: B * T }
}

/**
 * What the loss skips besides padding. 'name' (the default): the function name in each question, which no model
 * can guess from what comes before it; fitting those characters would spend the adapter on memorising a list of
 * names instead of the answers. 'prompt': the whole question (mlx-lm's --mask-prompt). 'none': nothing.
 */
export type MaskMode = 'name' | 'prompt' | 'none'

/**
 * Set the targets that `mode` skips to IGNORE, in place: 'name' skips the name of question(name) and all of
 * rephrased(name); rows of neither form stay whole.
 */
export function maskTargets(batch: Batch, mode: MaskMode, encode: Encode): void {
  if (mode === 'none') return
  // 'Q: What is ' + name + ' in tenny?\nA: ', and 'Q: In tenny, what is ' + name + '?\nA: '
  const forms = [question, rephrased].map((form) =>
    form('\u0000')
      .split('\u0000')
      .map((part) => encode(part)),
  )
  const [B, T] = batch.inputs.shape
  const at = (row: Float32Array, ids: number[], t: number) => ids.every((id, i) => row[t + i] === id)
  for (let b = 0; b < B; b++) {
    const row = batch.inputs.data.subarray(b * T, (b + 1) * T),
      targets = batch.targets.data.subarray(b * T, (b + 1) * T)
    const form = forms.findIndex(([prefix]) => at(row, prefix, 0))
    if (form < 0) continue
    const [prefix, suffix] = forms[form]
    let end = prefix.length // the name is inputs prefix.length .. end − 1
    while (end + suffix.length <= T && !at(row, suffix, end)) end++
    if (end + suffix.length > T) continue
    // targets[t] is the prediction of inputs[t + 1]: the name is predicted by targets prefix.length − 1 .. end − 2,
    // the whole question by 0 .. end + suffix.length − 2. A rephrased question is never trained on, and the more
    // surely the model expects the trained wording the worse it predicts this one: only its answer counts.
    const whole = mode === 'prompt' || form === 1
    const [from, to] = whole ? [0, end + suffix.length - 1] : [prefix.length - 1, end - 1]
    for (let t = from; t < to; t++) {
      if (targets[t] !== IGNORE) batch.tokens--
      targets[t] = IGNORE
    }
  }
}

/** A padded batch of whole examples with `mode`'s targets masked: what the fine-tune trains and evaluates on. */
export function maskedBatch(examples: number[][], blockSize: number, mode: MaskMode, encode: Encode): Batch {
  const batch = padBatch(examples, blockSize)
  maskTargets(batch, mode, encode)
  return batch
}
type Encode = (text: string) => number[]

/** `examples` in order, `size` at a time, as batches: what evaluate reads. */
export function* inBatches(examples: number[][], size: number, batch: (some: number[][]) => Batch): Generator<Batch> {
  for (let i = 0; i < examples.length; i += size) yield batch(examples.slice(i, i + size))
}
