// A GPT-2-style language model in one file, from small pieces to the whole: MLP, Block, GPT. The model only:
// parameter names (`blocks.0.attn.qProj.weight`, ...) are the checkpoint keys (checkpoint.ts) and LoRA's targets.
import { Tensor, noGrad } from '../src/tensor.js'
import { shapeStr } from '../src/shape.js'
import { fail, quote } from '../src/errors.js'
import { manualSeed, randomNormal } from '../src/random.js'
import { add, gelu } from '../ops/elementwise.js'
import { slice } from '../ops/movement.js'
import { crossEntropy } from '../ops/nn.js'
import { Module } from './module.js'
import { Linear, type LinearLike } from './linear.js'
import { Embedding } from './embedding.js'
import { LayerNorm } from './layernorm.js'
import { Dropout } from './dropout.js'
import { CausalSelfAttention, KVCache } from './attention.js'
import { sampleNext } from './sampling.js'
import type { GenerateOptions } from './generate.js'

export type GPTConfig = {
  vocabSize: number
  blockSize: number
  nLayer: number
  nHead: number
  nEmbd: number
  dropout?: number
  bias?: boolean
  tieWeights?: boolean
}

/** The feed-forward half of a block: proj(gelu(fc(x))), widening C → 4C → C. */
export class MLP extends Module {
  fc: LinearLike
  proj: LinearLike
  drop: Dropout

  constructor({ nEmbd, dropout = 0, bias = true }: { nEmbd: number; dropout?: number; bias?: boolean }) {
    super()
    this.fc = new Linear(nEmbd, 4 * nEmbd, { bias })
    this.proj = new Linear(4 * nEmbd, nEmbd, { bias })
    this.drop = new Dropout(dropout)
  }

  forward(x: Tensor): Tensor {
    const h = gelu(this.fc.forward(x)) // (B, T, 4C), tanh-approximated GELU as in GPT-2
    return this.drop.forward(this.proj.forward(h)) // (B, T, C)
  }
}

/** Pre-LayerNorm transformer block: x + attn(ln1(x)), then x + mlp(ln2(x)). */
export class Block extends Module {
  ln1: LayerNorm
  attn: CausalSelfAttention
  ln2: LayerNorm
  mlp: MLP

  constructor(config: GPTConfig) {
    super()
    this.ln1 = new LayerNorm(config.nEmbd)
    this.attn = new CausalSelfAttention(config)
    this.ln2 = new LayerNorm(config.nEmbd)
    this.mlp = new MLP(config)
  }

  forward(x: Tensor, cache?: KVCache): Tensor {
    x = add(x, this.attn.forward(this.ln1.forward(x), cache)) // (B, T, C)
    return add(x, this.mlp.forward(this.ln2.forward(x))) // (B, T, C)
  }
}

/** Sampling settings, plus `seed` (reseeds the stream first) and useCache (false: recompute every step). */

/** Fill a tensor in place with N(0, std²) draws from the seeded stream. */
function normalInit(t: Tensor, std: number): void {
  for (let i = 0; i < t.size; i++) t.data[i] = std * randomNormal()
}

/** Throws unless the config describes a buildable model; `where` names the caller. */
export function checkConfig(where: string, c: GPTConfig): void {
  if (typeof c !== 'object' || c === null) fail(where, `config must be an object, got ${quote(c)}`)
  for (const key of ['vocabSize', 'blockSize', 'nLayer', 'nHead', 'nEmbd'] as const) {
    if (!Number.isInteger(c[key]) || c[key] < 1)
      fail(where, `config.${key} must be a positive integer, got ${quote(c[key])}`)
  }
  if (c.nEmbd % c.nHead !== 0) fail(where, `config.nEmbd ${c.nEmbd} is not divisible by nHead ${c.nHead}`)
  if (c.dropout !== undefined && !(c.dropout >= 0 && c.dropout < 1))
    fail(where, `config.dropout must be in [0, 1), got ${quote(c.dropout)}`)
  for (const key of ['bias', 'tieWeights'] as const) {
    if (c[key] !== undefined && typeof c[key] !== 'boolean')
      fail(where, `config.${key} must be a boolean, got ${quote(c[key])}`)
  }
}

/**
 * Every parameter's dotted name and shape for `config`, in namedParameters order, from the config alone: a loader
 * checks a file against it before building (allocating) anything. Lazy, since a file's config may claim 10⁹ blocks.
 */
export function* gptParameterShapes(config: GPTConfig): Generator<[name: string, shape: number[]]> {
  const { vocabSize, blockSize, nLayer, nEmbd: C, bias = true } = config
  function* linear(path: string, outFeatures: number, inFeatures: number): Generator<[string, number[]]> {
    yield [`${path}.weight`, [outFeatures, inFeatures]]
    if (bias) yield [`${path}.bias`, [outFeatures]]
  }
  function* layerNorm(path: string): Generator<[string, number[]]> {
    yield [`${path}.weight`, [C]]
    yield [`${path}.bias`, [C]]
  }
  yield ['wte.weight', [vocabSize, C]]
  yield ['wpe.weight', [blockSize, C]]
  for (let i = 0; i < nLayer; i++) {
    yield* layerNorm(`blocks.${i}.ln1`)
    for (const p of ['qProj', 'kProj', 'vProj', 'outProj']) yield* linear(`blocks.${i}.attn.${p}`, C, C)
    yield* layerNorm(`blocks.${i}.ln2`)
    yield* linear(`blocks.${i}.mlp.fc`, 4 * C, C)
    yield* linear(`blocks.${i}.mlp.proj`, C, 4 * C)
  }
  yield* layerNorm('lnF')
  yield ['lmHead.weight', [vocabSize, C]] // with tieWeights, the same Tensor as wte.weight
}

/** Token + position embeddings, nLayer blocks, a final LayerNorm and the LM head: idx (B, T) → logits (B, T, V). */
export class GPT extends Module {
  readonly config: Required<GPTConfig>
  wte: Embedding
  wpe: Embedding
  drop: Dropout
  blocks: Block[]
  lnF: LayerNorm
  lmHead: LinearLike

  constructor(config: GPTConfig) {
    super()
    checkConfig('GPT', config)
    this.config = { dropout: 0, bias: true, tieWeights: false, ...config }
    const { vocabSize, blockSize, nLayer, nEmbd, dropout, tieWeights } = this.config
    this.wte = new Embedding(vocabSize, nEmbd)
    this.wpe = new Embedding(blockSize, nEmbd)
    this.drop = new Dropout(dropout)
    this.blocks = Array.from({ length: nLayer }, () => new Block(this.config))
    this.lnF = new LayerNorm(nEmbd)
    const head = new Linear(nEmbd, vocabSize, { bias: false })
    if (tieWeights) head.weight = this.wte.weight // one Tensor, two names; gradients from both uses add up
    this.lmHead = head
    // GPT-2 init: N(0, 0.02) weights, zero biases; residual projections scaled by 1/√(2·nLayer) so the
    // residual stream's variance does not grow with depth.
    for (const [name, m] of this.namedModules()) {
      if (m instanceof Embedding) normalInit(m.weight, 0.02)
      if (!(m instanceof Linear) || (tieWeights && m === head)) continue
      const residual = name.endsWith('attn.outProj') || name.endsWith('mlp.proj')
      normalInit(m.weight, residual ? 0.02 / Math.sqrt(2 * nLayer) : 0.02)
      m.bias?.data.fill(0)
    }
  }

  /** The final hidden states (B, T, C). With caches (one per block), idx holds positions after caches[0].length. */
  hidden(idx: Tensor, caches?: KVCache[]): Tensor {
    if (idx.ndim !== 2) fail('GPT', `idx must be (B, T) token ids, got shape ${shapeStr(idx.shape)}`)
    const [, T] = idx.shape
    const start = caches ? caches[0].length : 0
    if (start + T > this.config.blockSize)
      fail('GPT', `${start + T} positions exceed blockSize ${this.config.blockSize}`)
    const pos = Int32Array.from({ length: T }, (_, t) => start + t)
    let x = add(this.wte.forward(idx), this.wpe.forward(pos)) // (B, T, C) + (T, C)
    x = this.drop.forward(x)
    for (const [i, block] of this.blocks.entries()) x = block.forward(x, caches?.[i]) // (B, T, C)
    return this.lnF.forward(x) // (B, T, C)
  }

  /** idx (B, T) token ids → logits (B, T, vocabSize). */
  forward(idx: Tensor): Tensor {
    return this.lmHead.forward(this.hidden(idx))
  }

  /** Mean cross-entropy of the next-token predictions: idx, targets (B, T) → scalar. */
  loss(idx: Tensor, targets: Tensor): Tensor {
    return crossEntropy(this.forward(idx), targets)
  }

  /**
   * Extend idx (B, T) by maxNewTokens sampled tokens → (B, T + maxNewTokens). Uses a KV cache: each new token
   * runs one position through the model; past blockSize the context is cropped and, since every position then
   * shifts, recomputed each step.
   * temperature 0 = argmax; `seed` reseeds the stream first; useCache: false recomputes the whole context each step.
   */
  generate(idx: Tensor, maxNewTokens: number, options: GenerateOptions = {}): Tensor {
    const { seed, useCache = true, ...sampling } = options ?? {}
    const [B, T0] = idx.shape
    if (idx.ndim !== 2 || T0 < 1) fail('GPT.generate', `idx must be (B, T) with T ≥ 1, got ${shapeStr(idx.shape)}`)
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0)
      fail('GPT.generate', `maxNewTokens must be an integer ≥ 0, got ${quote(maxNewTokens)}`)
    if (seed !== undefined) manualSeed(seed)
    const { blockSize, vocabSize, nEmbd } = this.config
    const total = T0 + maxNewTokens
    const out = new Float32Array(B * total) // (B, T0 + maxNewTokens), filled left to right
    for (let b = 0; b < B; b++) out.set(idx.data.subarray(b * T0, (b + 1) * T0), b * total)
    const window = (from: number, to: number) => {
      // tokens [from, to) of every row, as (B, to − from)
      const ids = new Float32Array(B * (to - from))
      for (let b = 0; b < B; b++) ids.set(out.subarray(b * total + from, b * total + to), b * (to - from))
      return new Tensor(ids, [B, to - from])
    }
    const wasTraining = this.training
    this.eval() // no dropout while generating: the cached and the recomputed paths must see the same model
    try {
      return noGrad(() => {
        let caches: KVCache[] | null = null
        for (let len = T0; len < total; len++) {
          let h: Tensor
          if (useCache && caches && caches[0].length < blockSize) {
            h = this.hidden(window(len - 1, len), caches) // (B, 1, C): only the newest token
          } else {
            // first step, no cache, or the window is full: crop to blockSize and (re)build the cache
            caches = useCache ? this.blocks.map(() => new KVCache(B, blockSize, nEmbd)) : null
            h = this.hidden(window(Math.max(0, len - blockSize), len), caches ?? undefined) // (B, t, C)
          }
          const last = slice(h, 1, -1) // (B, 1, C): only the last position needs logits
          const next = sampleNext(this.lmHead.forward(last).data, B, vocabSize, sampling)
          for (let b = 0; b < B; b++) out[b * total + len] = next[b]
        }
        return new Tensor(out, [B, total])
      })
    } finally {
      if (wasTraining) this.train()
    }
  }
}
