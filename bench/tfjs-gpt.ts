// The tiny GPT of nn/gpt.ts rebuilt in TensorFlow.js, as the benchmark's peer: same architecture, same
// parameter names, loaded from Tenny's own weights so both engines start from identical numbers.
// Written the way a tfjs user would, in the form its backends run fastest: Linear weights stored (in, out)
// so every forward product is a plain A·B; tf.matMul + tf.add rather than tf.fused.matMul, whose gradient
// also computes dW for frozen weights (measured: LoRA step 1,400 → 530 ms on wasm, full step no slower);
// a one-hot matmul embedding, because tfjs-wasm has no UnsortedSegmentSum kernel for tf.gather's gradient.
import * as tf from '@tensorflow/tfjs'
import '@tensorflow/tfjs-backend-wasm'

export type TfBackend = 'cpu' | 'wasm' | 'webgl' // webgl: in a browser (the bench page, examples/web)
import type { NamedWeights, GPTConfig, AdamWOptions, LoRAOptions } from './config'
export { randomWeights } from './config'
export type { NamedWeights, GPTConfig, AdamWOptions, LoRAOptions }

/** Switch tfjs to a backend; wasm runs single-threaded SIMD in Node (its threads are off there by design). */
export async function useTf(backend: TfBackend): Promise<void> {
  if (!(await tf.setBackend(backend))) throw new Error(`tfjs: backend '${backend}' failed to initialise`)
  await tf.ready()
}

export function tfInfo(): { version: string; backend: string; simd: boolean; threads: boolean } {
  const env = tf.env()
  const wasm = tf.getBackend() === 'wasm'
  return {
    version: tf.version.tfjs,
    backend: tf.getBackend(),
    simd: wasm && env.getBool('WASM_HAS_SIMD_SUPPORT'),
    threads: wasm && env.getBool('WASM_HAS_MULTITHREAD_SUPPORT'),
  }
}

let nextVariable = 0 // tfjs variable names are global: keep them unique across models

type Dense = { w: tf.Tensor; b: tf.Tensor | null; loraA?: tf.Tensor; loraB?: tf.Tensor; scale?: number }
type Norm = { w: tf.Tensor; b: tf.Tensor }
type Layer = { ln1: Norm; q: Dense; k: Dense; v: Dense; o: Dense; ln2: Norm; fc: Dense; proj: Dense }

/**
 * GPT in tfjs from Tenny-named weights. Linear weights arrive (out, in) and are stored transposed (in, out);
 * LoRA adapters (Tenny: loraA (rank, in), loraB (out, rank)) are stored (in, rank) and (rank, out).
 */
export class TfGPT {
  readonly trainable: tf.Variable[] = []
  private readonly all: tf.Tensor[] = []
  private readonly wte: tf.Tensor // (V, C)
  private readonly wpe: tf.Tensor // (blockSize, C)
  private readonly layers: Layer[]
  private readonly lnF: Norm
  private readonly lmHead: Dense // (C, V)
  private readonly masks = new Map<number, tf.Tensor>()
  private readonly adam: { m: tf.Variable; v: tf.Variable }[] = []
  private t = 0

  constructor(
    readonly cfg: GPTConfig,
    weights: NamedWeights,
    lora?: LoRAOptions,
  ) {
    const frozen = lora !== undefined
    const take = (name: string, trainable: boolean, transpose: boolean): tf.Tensor => {
      const w = weights.get(name)
      if (!w)
        throw new Error(`TfGPT: weight '${name}' is missing (have ${[...weights.keys()].slice(0, 4).join(', ')}, ...)`)
      let t: tf.Tensor = tf.tensor(w.data, [...w.shape], 'float32')
      if (transpose) {
        const tt = t.transpose()
        t.dispose()
        t = tt
      }
      if (!trainable) {
        this.all.push(t)
        return t
      }
      const v = tf.variable(t, true, `tenny_bench_${nextVariable++}_${name}`)
      t.dispose()
      this.all.push(v)
      this.trainable.push(v)
      return v
    }
    // a module's weight: 'p.weight', or 'p.base.weight' once LoRA has wrapped it
    const has = (name: string) => weights.has(name)
    const dense = (p: string, bias = true): Dense => {
      const base = has(`${p}.weight`) ? p : `${p}.base`
      const d: Dense = {
        w: take(`${base}.weight`, !frozen, true),
        b: bias ? take(`${base}.bias`, !frozen, false) : null,
      }
      if (lora && lora.targets.some((t) => p.endsWith(`.${t}`))) {
        d.loraA = take(`${p}.loraA`, true, true)
        d.loraB = take(`${p}.loraB`, true, true)
        d.scale = lora.alpha / lora.rank
      }
      return d
    }
    const norm = (p: string): Norm => ({ w: take(`${p}.weight`, !frozen, false), b: take(`${p}.bias`, !frozen, false) })
    this.wte = take('wte.weight', !frozen, false)
    this.wpe = take('wpe.weight', !frozen, false)
    this.layers = Array.from({ length: cfg.nLayer }, (_, i) => {
      const p = `blocks.${i}`
      return {
        ln1: norm(`${p}.ln1`),
        ln2: norm(`${p}.ln2`),
        q: dense(`${p}.attn.qProj`),
        k: dense(`${p}.attn.kProj`),
        v: dense(`${p}.attn.vProj`),
        o: dense(`${p}.attn.outProj`),
        fc: dense(`${p}.mlp.fc`),
        proj: dense(`${p}.mlp.proj`),
      }
    })
    this.lnF = norm('lnF')
    this.lmHead = dense('lmHead', false)
  }

  private linear(x: tf.Tensor, d: Dense): tf.Tensor {
    let y = tf.matMul(x, d.w)
    if (d.b) y = tf.add(y, d.b)
    if (d.loraA && d.loraB && d.scale !== undefined) {
      y = tf.add(y, tf.mul(tf.matMul(tf.matMul(x, d.loraA), d.loraB), d.scale)) // + scale · x Aᵀ Bᵀ
    }
    return y
  }

  private layerNorm(x: tf.Tensor, n: Norm): tf.Tensor {
    const { mean, variance } = tf.moments(x, -1, true) // biased variance, as PyTorch's LayerNorm
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), n.w), n.b)
  }

  private gelu(x: tf.Tensor): tf.Tensor {
    // tanh approximation: 0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))
    const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI))
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1))
  }

  private mask(T: number): tf.Tensor {
    // 0 on and below the diagonal, −1e9 above (exp underflows to exactly 0, as −∞ does)
    let m = this.masks.get(T)
    if (!m) {
      const data = new Float32Array(T * T)
      for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) data[i * T + j] = -1e9
      m = tf.keep(tf.tensor2d(data, [T, T])) // cached across tidy() scopes
      this.masks.set(T, m)
    }
    return m
  }

  /** logits (B·T, V) for token ids (B, T) given flat. */
  forward(idx: Int32Array, B: number, T: number): tf.Tensor {
    const { nHead: H, nEmbd: C, vocabSize: V } = this.cfg
    const hs = C / H
    const oneHot = tf.cast(tf.oneHot(tf.tensor1d(idx, 'int32'), V), 'float32') // (B·T, V)
    const pos = tf.tile(tf.slice(this.wpe, [0, 0], [T, C]), [B, 1]) // (B·T, C)
    let x = tf.add(tf.matMul(oneHot, this.wte), pos) // (B·T, C)
    const heads = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [B, T, H, hs]), [0, 2, 1, 3]) // (B, H, T, hs)
    for (const l of this.layers) {
      const h = this.layerNorm(x, l.ln1)
      const q = heads(this.linear(h, l.q)),
        k = heads(this.linear(h, l.k)),
        v = heads(this.linear(h, l.v))
      const att = tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hs)), this.mask(T))) // (B, H, T, T)
      const y = tf.reshape(tf.transpose(tf.matMul(att, v), [0, 2, 1, 3]), [B * T, C]) // (B·T, C)
      x = tf.add(x, this.linear(y, l.o))
      x = tf.add(x, this.linear(this.gelu(this.linear(this.layerNorm(x, l.ln2), l.fc)), l.proj))
    }
    return this.linear(this.layerNorm(x, this.lnF), this.lmHead) // (B·T, V)
  }

  /** Mean cross-entropy of next-token targets, a scalar. */
  loss(idx: Int32Array, targets: Int32Array, B: number, T: number): tf.Scalar {
    const logits = this.forward(idx, B, T)
    const onehot = tf.cast(tf.oneHot(tf.tensor1d(targets, 'int32'), this.cfg.vocabSize), 'float32')
    return tf.mean(tf.sub(tf.logSumExp(logits, -1), tf.sum(tf.mul(logits, onehot), -1))) as tf.Scalar
  }

  /** The loss as a number, with every intermediate tensor freed. */
  lossValue(idx: Int32Array, targets: Int32Array, B: number, T: number): number {
    return tf.tidy(() => this.loss(idx, targets, B, T).dataSync()[0])
  }

  /** One training step: loss, gradients of the trainable variables, AdamW update (PyTorch's formulas). Returns the loss. */
  step(idx: Int32Array, targets: Int32Array, B: number, T: number, o: AdamWOptions): number {
    if (this.adam.length === 0) {
      for (const p of this.trainable)
        this.adam.push(
          tf.tidy(() => ({ m: tf.variable(tf.zerosLike(p), false), v: tf.variable(tf.zerosLike(p), false) })),
        )
    }
    this.t++
    const [b1, b2] = o.betas
    const bc1 = 1 - b1 ** this.t,
      bc2 = 1 - b2 ** this.t
    return tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => this.loss(idx, targets, B, T), this.trainable)
      this.trainable.forEach((p, i) => {
        const g = grads[p.name]
        const s = this.adam[i]
        s.m.assign(tf.add(tf.mul(s.m, b1), tf.mul(g, 1 - b1))) // m = β1·m + (1−β1)·g
        s.v.assign(tf.add(tf.mul(s.v, b2), tf.mul(tf.square(g), 1 - b2))) // v = β2·v + (1−β2)·g²
        const upd = tf.div(tf.div(s.m, bc1), tf.add(tf.sqrt(tf.div(s.v, bc2)), o.eps))
        p.assign(tf.sub(tf.mul(p, 1 - o.lr * o.weightDecay), tf.mul(upd, o.lr))) // p = p(1 − lr·wd) − lr·m̂/(√v̂ + ε)
      })
      return value.dataSync()[0]
    })
  }

  /** Greedy decoding with a KV cache (each new token costs one position), batch 1. Returns the new token ids. */
  generate(prompt: Int32Array, maxNewTokens: number): Int32Array {
    const { nHead: H, nEmbd: C } = this.cfg
    const hs = C / H
    if (prompt.length + maxNewTokens > this.cfg.blockSize)
      throw new Error(
        `TfGPT.generate: ${prompt.length} + ${maxNewTokens} tokens exceed blockSize ${this.cfg.blockSize}`,
      )
    let cacheK: tf.Tensor[] = [],
      cacheV: tf.Tensor[] = [] // per layer (H, t, hs)
    const out = new Int32Array(maxNewTokens)
    let token = prompt[0]
    for (let pos = 0; pos < prompt.length + maxNewTokens - 1; pos++) {
      if (pos < prompt.length) token = prompt[pos]
      const res = tf.tidy(() => {
        let x = tf.add(tf.slice(this.wte, [token, 0], [1, C]), tf.slice(this.wpe, [pos, 0], [1, C])) // (1, C)
        const ks: tf.Tensor[] = [],
          vs: tf.Tensor[] = []
        this.layers.forEach((l, i) => {
          const h = this.layerNorm(x, l.ln1)
          const split = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [1, H, hs]), [1, 0, 2]) // (H, 1, hs)
          const q = split(this.linear(h, l.q))
          const k = pos === 0 ? split(this.linear(h, l.k)) : tf.concat([cacheK[i], split(this.linear(h, l.k))], 1) // (H, t, hs)
          const v = pos === 0 ? split(this.linear(h, l.v)) : tf.concat([cacheV[i], split(this.linear(h, l.v))], 1)
          ks.push(k)
          vs.push(v)
          const att = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hs))) // (H, 1, t)
          const y = tf.reshape(tf.transpose(tf.matMul(att, v), [1, 0, 2]), [1, C])
          x = tf.add(x, this.linear(y, l.o))
          x = tf.add(x, this.linear(this.gelu(this.linear(this.layerNorm(x, l.ln2), l.fc)), l.proj))
        })
        const logits = this.linear(this.layerNorm(x, this.lnF), this.lmHead) // (1, V)
        return { next: tf.argMax(logits, -1), ks, vs }
      })
      for (const t of [...cacheK, ...cacheV]) t.dispose()
      cacheK = res.ks
      cacheV = res.vs
      const next = res.next.dataSync()[0]
      res.next.dispose()
      if (pos >= prompt.length - 1) {
        out[pos - prompt.length + 1] = next
        token = next
      }
    }
    for (const t of [...cacheK, ...cacheV]) t.dispose()
    return out
  }

  dispose(): void {
    for (const t of this.all) t.dispose()
    for (const s of this.adam) {
      s.m.dispose()
      s.v.dispose()
    }
    for (const m of this.masks.values()) m.dispose()
  }
}
