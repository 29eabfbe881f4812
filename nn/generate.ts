// Generation for the causal language models built from Hugging Face checkpoints (gpt2.ts, llama.ts): extend a
// batch of token ids one sampled token at a time. A KV cache per layer keeps the keys and values of the positions
// already seen, so each new token runs one position through the model instead of the whole context.
import { Tensor, noGrad } from '../src/tensor.js'
import { manualSeed } from '../src/random.js'
import { fail } from '../src/errors.js'
import { slice } from '../ops/movement.js'
import type { Module } from './module.js'
import type { KVCache } from './attention.js'
import { sampleNext, type SampleOptions } from './sampling.js'

/** What generate needs from a model. */
export interface CausalLM extends Module {
  /** The most positions the model attends over; a longer context is cropped to its last contextSize tokens. */
  readonly contextSize: number
  readonly vocabSize: number
  /** Final hidden states (B, T, C); with caches, idx holds the positions after caches[0].length earlier ones. */
  hidden(idx: Tensor, caches?: KVCache[]): Tensor
  /** Hidden states (B, T, C) → logits (B, T, vocabSize). */
  head(h: Tensor): Tensor
  /** One empty cache per layer for `capacity` positions of a batch of `batch`. */
  newCaches(batch: number, capacity: number): KVCache[]
}

export type GenerateOptions = SampleOptions & { seed?: number; useCache?: boolean }

/**
 * Extend idx (B, T) by maxNewTokens sampled tokens → (B, T + maxNewTokens); temperature 0 = argmax, `seed` reseeds
 * the stream first, useCache: false recomputes the whole context each step. Past contextSize the context is cropped
 * and, since every position then shifts, recomputed each step. Runs in eval mode (no dropout), under noGrad.
 */
export function generate(
  model: CausalLM,
  idx: Tensor,
  maxNewTokens: number,
  { seed, useCache = true, ...sampling }: GenerateOptions = {},
): Tensor {
  const op = `${model.constructor.name}.generate`
  const [B, T0] = idx.shape
  if (idx.ndim !== 2 || T0 < 1) fail(op, `idx must be (B, T) with T ≥ 1, got (${idx.shape.join(',')})`)
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0)
    fail(op, `maxNewTokens must be an integer ≥ 0, got ${maxNewTokens}`)
  if (seed !== undefined) manualSeed(seed)
  const total = T0 + maxNewTokens
  const capacity = Math.min(model.contextSize, total) // the cache holds what this call can use, not the whole context
  const out = new Float32Array(B * total) // (B, T0 + maxNewTokens), filled left to right
  for (let b = 0; b < B; b++) out.set(idx.data.subarray(b * T0, (b + 1) * T0), b * total)
  const window = (from: number, to: number) => {
    const ids = new Float32Array(B * (to - from)) // tokens [from, to) of every row: (B, to − from)
    for (let b = 0; b < B; b++) ids.set(out.subarray(b * total + from, b * total + to), b * (to - from))
    return new Tensor(ids, [B, to - from])
  }
  const wasTraining = model.training
  model.eval() // no dropout while generating: the cached and the recomputed paths must see the same model
  try {
    return noGrad(() => {
      let caches: KVCache[] | null = null
      for (let len = T0; len < total; len++) {
        let h: Tensor
        if (useCache && caches && caches[0].length < capacity) {
          h = model.hidden(window(len - 1, len), caches) // (B, 1, C): only the newest token
        } else {
          // first step, no cache, or the window is full: crop to contextSize and (re)build the cache
          caches = useCache ? model.newCaches(B, capacity) : null
          h = model.hidden(window(Math.max(0, len - model.contextSize), len), caches ?? undefined) // (B, t, C)
        }
        const last = slice(h, 1, -1) // (B, 1, C): only the last position needs logits
        const next = sampleNext(model.head(last).data, B, model.vocabSize, sampling)
        for (let b = 0; b < B; b++) out[b * total + len] = next[b]
      }
      return new Tensor(out, [B, total])
    })
  } finally {
    if (wasTraining) model.train()
  }
}
