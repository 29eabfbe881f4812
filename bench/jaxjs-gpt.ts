// The tiny GPT of nn/gpt.ts rebuilt in jax-js (@jax-js/jax, "JAX in pure JavaScript": it traces array programs and
// writes WebAssembly kernels at run time), as the benchmark's strongest JavaScript peer. Loaded from Tenny's
// weights like the tfjs GPT. jax-js arrays are reference-counted: every op consumes its arguments, so an array
// used twice is passed once as `.ref`. Its `jit` cannot differentiate np.take, so tokens are embedded by a
// one-hot matmul (as the tfjs GPT does for its own reason); Node 20 lacks Iterator.prototype.map, which
// jax-js's einsum calls, so a two-method polyfill goes in first. In Node its Wasm runs on one thread (its
// worker pool starts only where a global Web `Worker` exists). JaxLoRAGPT trains LoRA on q and v alone (real sizes).
import { numpy as np, nn, jit, valueAndGrad, tree, type Array } from '@jax-js/jax'

const JsArray = globalThis.Array
import type { AdamWOptions, GPTConfig, LoRAOptions, NamedWeights } from './config'

/** Node 20's iterators lack map and toArray (Node 22 has them); jax-js calls both. */
function polyfillIterators(): void {
  const proto: object = Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]()))
  if (!('map' in proto)) {
    Object.defineProperty(proto, 'map', {
      configurable: true,
      writable: true,
      value: function* (this: Iterator<unknown>, f: (v: unknown, i: number) => unknown) {
        let i = 0
        for (let r = this.next(); !r.done; r = this.next()) yield f(r.value, i++)
      },
    })
  }
  if (!('toArray' in proto)) {
    Object.defineProperty(proto, 'toArray', {
      configurable: true,
      writable: true,
      value: function (this: Iterator<unknown>) {
        const out: unknown[] = []
        for (let r = this.next(); !r.done; r = this.next()) out.push(r.value)
        return out
      },
    })
  }
}
polyfillIterators()

type Dense = { w: Array; b?: Array } // w (in, out)
type Lora = { a: Array; b: Array } // a (in, rank), b (rank, out): y += scale · x·a·b
/** LoRA on q and v of every block (the bench's targets), trained while every weight of Params stays frozen. */
type Adapters = { q: Lora; v: Lora }[]
type Norm = { w: Array; b: Array }
type Block = { ln1: Norm; q: Dense; k: Dense; v: Dense; o: Dense; ln2: Norm; fc: Dense; proj: Dense }
type Params = { wte: Array; wpe: Array; blocks: Block[]; lnF: Norm; head: Dense }
type Inputs = { tokens: Array; targets: Array; mask: Array } // one-hot (B·T, V) twice, and the causal mask (T, T)
/** AdamW's bias corrections 1 − β1ᵗ and 1 − β2ᵗ, as arrays so that jit traces the step once, not per t. */
type Bias = [Array, Array]

const linear = (x: Array, d: Dense): Array => (d.b ? np.matmul(x, d.w).add(d.b) : np.matmul(x, d.w))

/** linear(x, d) plus LoRA's scale · x·a·b when the layer has an adapter. */
function adapted(x: Array, d: Dense, lora: Lora | undefined, scale: number): Array {
  if (!lora) return linear(x, d)
  return linear(x.ref, d).add(np.matmul(np.matmul(x, lora.a), lora.b).mul(scale))
}

function layerNorm(x: Array, n: Norm): Array {
  const centered = x.ref.sub(x.mean(-1, { keepdims: true }))
  const variance = np.square(centered.ref).mean(-1, { keepdims: true }) // biased, as PyTorch's LayerNorm
  return centered
    .mul(np.reciprocal(np.sqrt(variance.add(1e-5))))
    .mul(n.w)
    .add(n.b)
}

/** GPT-2's gelu, tanh form: 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))). */
function gelu(x: Array): Array {
  const inner = x.ref.add(x.ref.mul(x.ref).mul(x.ref).mul(0.044715)).mul(Math.sqrt(2 / Math.PI))
  return x.mul(0.5).mul(np.tanh(inner).add(1))
}

/**
 * logits (B·T, V) for one-hot tokens (B·T, V); the mask is 0 on and below the diagonal, −1e9 above. `lora`: adapters
 * on q and v with their scale.
 */
function forward(
  p: Params,
  tokens: Array,
  mask: Array,
  cfg: GPTConfig,
  B: number,
  T: number,
  lora?: { adapters: Adapters; scale: number },
): Array {
  const { nHead: H, nEmbd: C } = cfg,
    hs = C / H
  let x = np
    .matmul(tokens, p.wte)
    .reshape([B, T, C])
    .add(p.wpe)
    .reshape([B * T, C]) // (B·T, C); T = blockSize
  const heads = (t: Array) => t.reshape([B, T, H, hs]).transpose([0, 2, 1, 3]) // (B, H, T, hs)
  p.blocks.forEach((l, i) => {
    const h = layerNorm(x.ref, l.ln1)
    const a = lora?.adapters[i]
    const q = heads(adapted(h.ref, l.q, a?.q, lora?.scale ?? 0)),
      k = heads(linear(h.ref, l.k)),
      v = heads(adapted(h, l.v, a?.v, lora?.scale ?? 0))
    const scores = np
      .matmul(q, k.transpose([0, 1, 3, 2]))
      .mul(1 / Math.sqrt(hs))
      .add(i === p.blocks.length - 1 ? mask : mask.ref) // (B, H, T, T)
    const y = np
      .matmul(nn.softmax(scores, -1), v)
      .transpose([0, 2, 1, 3])
      .reshape([B * T, C])
    x = x.ref.add(linear(y, l.o))
    x = x.ref.add(linear(gelu(linear(layerNorm(x, l.ln2), l.fc)), l.proj))
  })
  return linear(layerNorm(x, p.lnF), p.head)
}

/** Mean cross-entropy of the one-hot targets. */
function lossOf(
  p: Params,
  inputs: Inputs,
  cfg: GPTConfig,
  B: number,
  T: number,
  lora?: { adapters: Adapters; scale: number },
): Array {
  const logits = forward(p, inputs.tokens, inputs.mask, cfg, B, T, lora)
  return nn
    .logSoftmax(logits, -1)
    .mul(inputs.targets)
    .sum()
    .mul(-1 / (B * T))
}

/** PyTorch's AdamW on one array: m = β1·m + (1−β1)·g, v = β2·v + (1−β2)·g², p = p(1 − lr·wd) − lr·m̂/(√v̂ + ε). */
function adamw(p: Array, g: Array, m: Array, v: Array, [bc1, bc2]: Bias, o: AdamWOptions): [Array, Array, Array] {
  const [b1, b2] = o.betas
  const m1 = m.mul(b1).add(g.ref.mul(1 - b1))
  const v1 = v.mul(b2).add(np.square(g).mul(1 - b2))
  const update = m1.ref.div(bc1).div(np.sqrt(v1.ref.div(bc2)).add(o.eps))
  return [p.mul(1 - o.lr * o.weightDecay).sub(update.mul(o.lr)), m1, v1]
}

/** One training step: loss, gradients, AdamW on every parameter. Consumes its arguments (jax-js's rule). */
function trainStep(
  p: Params,
  m: Params,
  v: Params,
  bc: Bias,
  inputs: Inputs,
  cfg: GPTConfig,
  B: number,
  T: number,
  o: AdamWOptions,
): [Array, Params, Params, Params] {
  const [loss, grads] = valueAndGrad((q: Params) => lossOf(q, inputs, cfg, B, T))(tree.ref(p))
  const ps: Array[] = tree.leaves(p),
    gs: Array[] = tree.leaves(grads),
    ms: Array[] = tree.leaves(m),
    vs: Array[] = tree.leaves(v)
  const out = ps.map((pi, i) => adamw(pi, gs[i], ms[i], vs[i], [bc[0].ref, bc[1].ref], o))
  tree.dispose(bc)
  const shape = tree.structure(p)
  const rebuild = (k: number) =>
    tree.unflatten(
      shape,
      out.map((r) => r[k]),
    ) as Params // the same structure as p
  return [loss, rebuild(0), rebuild(1), rebuild(2)]
}

/** One LoRA step: the loss's gradients of the adapters alone (p frozen), AdamW on them. Consumes its arguments. */
function loraStep(
  p: Params,
  adapters: Adapters,
  m: Adapters,
  v: Adapters,
  bc: Bias,
  inputs: Inputs,
  cfg: GPTConfig,
  B: number,
  T: number,
  o: AdamWOptions & { scale: number },
): [Array, Adapters, Adapters, Adapters] {
  const [loss, grads] = valueAndGrad((a: Adapters) => lossOf(p, inputs, cfg, B, T, { adapters: a, scale: o.scale }))(
    tree.ref(adapters),
  )
  const xs: Array[] = tree.leaves(adapters),
    gs: Array[] = tree.leaves(grads),
    ms: Array[] = tree.leaves(m),
    vs: Array[] = tree.leaves(v)
  const out = xs.map((x, i) => adamw(x, gs[i], ms[i], vs[i], [bc[0].ref, bc[1].ref], o))
  tree.dispose(bc)
  const shape = tree.structure(adapters)
  const rebuild = (k: number) =>
    tree.unflatten(
      shape,
      out.map((r) => r[k]),
    ) as Adapters
  return [loss, rebuild(0), rebuild(1), rebuild(2)]
}

/** A Tenny-named weight as a jax-js array, (out, in) → (in, out) when `transpose`. */
function take(weights: NamedWeights, name: string, transpose = false): Array {
  const w = weights.get(name)
  if (!w) throw new Error(`JaxGPT: weight '${name}' is missing`)
  const a = np.array(w.data.slice()).reshape([...w.shape])
  return transpose ? a.transpose([1, 0]) : a
}

/** The GPT's weights from Tenny's names (a LoRA-wrapped layer's under `.base`), Linear weights stored (in, out). */
function paramsOf(cfg: GPTConfig, weights: NamedWeights): Params {
  const base = (p: string) => (weights.has(`${p}.weight`) ? p : `${p}.base`)
  const dense = (p: string, bias = true): Dense =>
    bias
      ? { w: take(weights, `${base(p)}.weight`, true), b: take(weights, `${base(p)}.bias`) }
      : { w: take(weights, `${base(p)}.weight`, true) }
  const norm = (p: string): Norm => ({ w: take(weights, `${p}.weight`), b: take(weights, `${p}.bias`) })
  return {
    wte: take(weights, 'wte.weight'),
    wpe: take(weights, 'wpe.weight'),
    lnF: norm('lnF'),
    head: dense('lmHead', false),
    blocks: JsArray.from({ length: cfg.nLayer }, (_, i): Block => {
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
    }),
  }
}

/** The one-hot tokens and targets (B·T, V) and the causal mask (T, T) of a batch. */
function inputsOf(cfg: GPTConfig, idx: Int32Array, targets: Int32Array): Inputs {
  const { vocabSize: V, blockSize: T } = cfg
  const oneHot = (ids: Int32Array) => {
    const d = new Float32Array(ids.length * V)
    ids.forEach((t, i) => {
      d[i * V + t] = 1
    })
    return np.array(d).reshape([ids.length, V])
  }
  const mask = new Float32Array(T * T)
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) mask[i * T + j] = -1e9
  return { tokens: oneHot(idx), targets: oneHot(targets), mask: np.array(mask).reshape([T, T]) }
}

/** GPT in jax-js from Tenny-named weights; Linear weights arrive (out, in) and are stored (in, out). */
export class JaxGPT {
  private params: Params
  private m: Params
  private v: Params
  private t = 0
  private readonly jitted: ReturnType<
    typeof jit<(p: Params, m: Params, v: Params, bc: Bias, inputs: Inputs) => [Array, Params, Params, Params]>
  >

  constructor(
    readonly cfg: GPTConfig,
    weights: NamedWeights,
    private readonly o: AdamWOptions,
  ) {
    this.params = paramsOf(cfg, weights)
    this.m = tree.map((a: Array) => np.zerosLike(a), tree.ref(this.params))
    this.v = tree.map((a: Array) => np.zerosLike(a), tree.ref(this.params))
    const { blockSize: T } = cfg
    this.jitted = jit((p: Params, m: Params, v: Params, bc: Bias, inputs: Inputs) =>
      trainStep(p, m, v, bc, inputs, cfg, inputs.tokens.shape[0] / T, T, o),
    )
  }

  private inputs(idx: Int32Array, targets: Int32Array): Inputs {
    return inputsOf(this.cfg, idx, targets)
  }

  /** The loss without training (parity with Tenny's first loss). */
  lossValue(idx: Int32Array, targets: Int32Array, B: number): number {
    return lossOf(tree.ref(this.params), this.inputs(idx, targets), this.cfg, B, this.cfg.blockSize).item()
  }

  /** One AdamW step, through `jit` (traced and compiled on the first call) or eagerly; returns the loss. */
  step(idx: Int32Array, targets: Int32Array, B: number, { useJit }: { useJit: boolean }): number {
    if (idx.length !== B * this.cfg.blockSize)
      throw new Error('JaxGPT.step: the bench trains on full contexts (T = blockSize)')
    this.t++
    const [b1, b2] = this.o.betas
    const bc: Bias = [np.array(1 - b1 ** this.t), np.array(1 - b2 ** this.t)]
    const inputs = this.inputs(idx, targets)
    const [loss, p, m, v] = useJit
      ? this.jitted(this.params, this.m, this.v, bc, inputs)
      : trainStep(this.params, this.m, this.v, bc, inputs, this.cfg, B, this.cfg.blockSize, this.o)
    this.params = p
    this.m = m
    this.v = v
    return loss.item()
  }

  /** Greedy decoding with a KV cache (each new token costs one position), batch 1, eager. Returns the new token ids. */
  generate(prompt: Int32Array, maxNewTokens: number): Int32Array {
    const { nHead: H, nEmbd: C, vocabSize: V, blockSize } = this.cfg,
      hs = C / H
    if (prompt.length + maxNewTokens > blockSize)
      throw new Error(`JaxGPT.generate: ${prompt.length} + ${maxNewTokens} tokens exceed blockSize ${blockSize}`)
    const oneHot = (i: number, n: number) => {
      const d = new Float32Array(n)
      d[i] = 1
      return np.array(d).reshape([1, n])
    }
    const p = this.params
    let cacheK: Array[] = [],
      cacheV: Array[] = [] // per layer (H, t, hs)
    const out = new Int32Array(maxNewTokens)
    let token = prompt[0]
    for (let pos = 0; pos < prompt.length + maxNewTokens - 1; pos++) {
      if (pos < prompt.length) token = prompt[pos]
      let x = np.matmul(oneHot(token, V), p.wte.ref).add(np.matmul(oneHot(pos, blockSize), p.wpe.ref)) // (1, C)
      const split = (t: Array) => t.reshape([1, H, hs]).transpose([1, 0, 2]) // (H, 1, hs)
      p.blocks.forEach((l, i) => {
        const h = layerNorm(x.ref, tree.ref(l.ln1))
        const q = split(linear(h.ref, tree.ref(l.q)))
        const k = split(linear(h.ref, tree.ref(l.k))),
          v = split(linear(h, tree.ref(l.v)))
        cacheK[i] = pos === 0 ? k : np.concatenate([cacheK[i], k], 1) // (H, t, hs)
        cacheV[i] = pos === 0 ? v : np.concatenate([cacheV[i], v], 1)
        const att = nn.softmax(np.matmul(q, cacheK[i].ref.transpose([0, 2, 1])).mul(1 / Math.sqrt(hs)), -1) // (H, 1, t)
        const y = np.matmul(att, cacheV[i].ref).transpose([1, 0, 2]).reshape([1, C])
        x = x.ref.add(linear(y, tree.ref(l.o)))
        x = x.ref.add(linear(gelu(linear(layerNorm(x, tree.ref(l.ln2)), tree.ref(l.fc))), tree.ref(l.proj)))
      })
      const next = np.argmax(linear(layerNorm(x, tree.ref(p.lnF)), tree.ref(p.head)), -1).item()
      if (pos >= prompt.length - 1) {
        out[pos - prompt.length + 1] = next
        token = next
      }
    }
    tree.dispose([cacheK, cacheV])
    return out
  }

  dispose(): void {
    tree.dispose(this.params)
    tree.dispose(this.m)
    tree.dispose(this.v)
    this.jitted.dispose()
  }
}

/**
 * The same GPT with LoRA on q and v (weights named `<layer>.loraA` (rank, in) and `.loraB` (out, rank), as Tenny's),
 * only the adapters trained, through `jit`: the bench's LoRA step at real size.
 */
export class JaxLoRAGPT {
  private readonly params: Params
  private adapters: Adapters
  private m: Adapters
  private v: Adapters
  private t = 0
  private readonly jitted: ReturnType<
    typeof jit<
      (
        p: Params,
        a: Adapters,
        m: Adapters,
        v: Adapters,
        bc: Bias,
        inputs: Inputs,
      ) => [Array, Adapters, Adapters, Adapters]
    >
  >

  constructor(
    readonly cfg: GPTConfig,
    weights: NamedWeights,
    private readonly o: AdamWOptions,
    lora: LoRAOptions,
  ) {
    this.params = paramsOf(cfg, weights)
    const pair = (p: string): Lora => ({ a: take(weights, `${p}.loraA`, true), b: take(weights, `${p}.loraB`, true) })
    this.adapters = JsArray.from({ length: cfg.nLayer }, (_, i) => ({
      q: pair(`blocks.${i}.attn.qProj`),
      v: pair(`blocks.${i}.attn.vProj`),
    }))
    this.m = tree.map((a: Array) => np.zerosLike(a), tree.ref(this.adapters))
    this.v = tree.map((a: Array) => np.zerosLike(a), tree.ref(this.adapters))
    const T = cfg.blockSize,
      settings = { ...o, scale: lora.alpha / lora.rank }
    this.jitted = jit((p: Params, a: Adapters, m: Adapters, v: Adapters, bc: Bias, inputs: Inputs) =>
      loraStep(p, a, m, v, bc, inputs, cfg, inputs.tokens.shape[0] / T, T, settings),
    )
  }

  /** One AdamW step on the adapters through `jit` (traced and compiled on the first call); returns the loss. */
  step(idx: Int32Array, targets: Int32Array): number {
    this.t++
    const [b1, b2] = this.o.betas
    const bc: Bias = [np.array(1 - b1 ** this.t), np.array(1 - b2 ** this.t)]
    const [loss, a, m, v] = this.jitted(
      tree.ref(this.params),
      this.adapters,
      this.m,
      this.v,
      bc,
      inputsOf(this.cfg, idx, targets),
    )
    ;[this.adapters, this.m, this.v] = [a, m, v]
    return loss.item()
  }

  dispose(): void {
    tree.dispose(this.params)
    tree.dispose([this.adapters, this.m, this.v])
    this.jitted.dispose()
  }
}
