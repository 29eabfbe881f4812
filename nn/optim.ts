// Optimizers: plain loops over p.data and p.grad.data, no graph. State lives here (never on the Tensor),
// only for the parameters given, and round-trips exactly through stateDict() so training resumes bitwise.
import { Tensor } from '../src/tensor.js'
import { fail, quote } from '../src/errors.js'

/** A setting that must be a finite number ≥ 0 (lr, eps, weight decay, momentum): NaN would poison every weight. */
function checkSetting(op: string, what: string, value: unknown): void {
  if (typeof value !== 'number' || !(value >= 0 && Number.isFinite(value)))
    fail(op, `${what} must be a finite number ≥ 0, got ${quote(value)}`)
}

/** One parameter's optimizer state: its own step count and buffers (Adam: m, v; SGD: momentum). */
export type ParamState = { step: number; buffers: Record<string, Float32Array> }
/** Everything step() depends on besides the parameters: lr and per-parameter state keyed by the parameter's index. */
export type OptimizerStateDict = { lr: number; state: Record<string, ParamState> }

/** The shared part: parameter list, zeroGrad, step over parameters that have a gradient, state dicts. */
export abstract class Optimizer {
  readonly params: Tensor[]
  lr: number
  protected readonly state = new Map<number, ParamState>() // by the parameter's index in `params`, which files keep

  constructor(params: Iterable<Tensor>, lr: number) {
    const op = new.target.name
    if (params === null || typeof params !== 'object' || !(Symbol.iterator in params))
      fail(op, `expected the parameters as a list of Tensors, got ${quote(params)}`)
    this.params = [...new Set(params)] // a tied weight appears once
    if (this.params.length === 0) fail(op, 'got an empty parameter list')
    if (!this.params.every((p) => p instanceof Tensor)) fail(op, 'every parameter must be a Tensor')
    checkSetting(op, 'lr', lr)
    this.lr = lr
  }

  /** Buffers for a parameter of `size` elements, created on its first step. */
  protected abstract newBuffers(size: number): Record<string, Float32Array>
  /** Update one parameter in place from its gradient; st.step already counts this step. */
  protected abstract update(w: Float32Array, g: Float32Array, st: ParamState): void

  /** Forget all gradients (sets .grad = null, so the next backward starts from zero). */
  zeroGrad(): void {
    for (const p of this.params) p.grad = null
  }

  /** One update of every parameter that has a gradient; the others keep their values and their state. */
  step(): void {
    for (const [i, p] of this.params.entries()) {
      if (p.grad === null) continue
      let st = this.state.get(i)
      if (!st) this.state.set(i, (st = { step: 0, buffers: this.newBuffers(p.size) }))
      st.step++
      this.update(p.data, p.grad.data, st)
      p.version++ // a graph built before this step is stale for p: its backward now refuses
    }
  }

  /** A deep copy of lr and the per-parameter state. */
  stateDict(): OptimizerStateDict {
    const state: Record<string, ParamState> = {}
    for (const [i, st] of this.state) {
      state[i] = {
        step: st.step,
        buffers: Object.fromEntries(Object.entries(st.buffers).map(([k, b]) => [k, b.slice()])),
      }
    }
    return { lr: this.lr, state }
  }

  /** Restore what stateDict() returned (validated first: an index, buffer name or size that does not fit → error). */
  loadStateDict(dict: OptimizerStateDict): void {
    const name = `${this.constructor.name}.loadStateDict`
    const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null
    if (!isObject(dict) || !isObject(dict.state))
      fail(name, `expected { lr, state } as stateDict() gives, got ${quote(dict)}`)
    checkSetting(name, 'lr', dict.lr)
    const fresh = new Map<number, ParamState>() // built whole before it replaces anything: a bad entry changes nothing
    for (const [key, st] of Object.entries(dict.state)) {
      const i = /^\d+$/.test(key) ? Number(key) : NaN,
        p = this.params[i]
      if (!Number.isInteger(i) || !p)
        fail(name, `state for parameter ${key.slice(0, 40)}, but there are ${this.params.length} parameters`)
      if (!isObject(st) || !isObject(st.buffers))
        fail(name, `parameter ${key} has state ${quote(st)}, not { step, buffers }`)
      if (!Number.isInteger(st.step) || (st.step as number) < 1)
        fail(name, `parameter ${key} has step ${quote(st.step)}, expected a positive integer`)
      const expected = Object.keys(this.newBuffers(0)).sort().join(',')
      if (Object.keys(st.buffers).sort().join(',') !== expected)
        fail(
          name,
          `parameter ${key} has buffers ${Object.keys(st.buffers).join(',').slice(0, 200)}, expected ${expected}`,
        )
      for (const [b, data] of Object.entries(st.buffers)) {
        if (!(data instanceof Float32Array) || data.length !== p.size) {
          const got =
            data instanceof Float32Array ? `has ${data.length} values` : `is ${quote(data)}, not a Float32Array`
          fail(name, `buffer ${key}.${b} ${got}, parameter has ${p.size}`)
        }
      }
      fresh.set(i, {
        step: st.step,
        buffers: Object.fromEntries(Object.entries(st.buffers).map(([k, b]) => [k, b.slice()])),
      })
    }
    this.lr = dict.lr
    this.state.clear()
    for (const [i, st] of fresh) this.state.set(i, st)
  }
}

/** w −= lr·buf with buf = momentum·buf + (g + weightDecay·w): PyTorch's SGD (dampening 0). */
export class SGD extends Optimizer {
  readonly momentum: number
  readonly weightDecay: number

  constructor(params: Iterable<Tensor>, options: { lr: number; momentum?: number; weightDecay?: number }) {
    const { lr, momentum = 0, weightDecay = 0 } = options ?? {}
    super(params, lr)
    checkSetting('SGD', 'momentum', momentum)
    checkSetting('SGD', 'weightDecay', weightDecay)
    this.momentum = momentum
    this.weightDecay = weightDecay
  }

  protected newBuffers(size: number): Record<string, Float32Array> {
    return this.momentum ? { momentum: new Float32Array(size) } : {}
  }

  protected update(w: Float32Array, g: Float32Array, st: ParamState): void {
    const { lr, momentum: mu, weightDecay: wd } = this
    const buf = st.buffers.momentum
    for (let i = 0; i < w.length; i++) {
      const gi = g[i] + wd * w[i] // L2 penalty's gradient
      if (buf) w[i] -= lr * (buf[i] = mu * buf[i] + gi)
      else w[i] -= lr * gi
    }
  }
}

type AdamOptions = { lr?: number; betas?: [number, number]; eps?: number; weightDecay?: number }

/**
 * Adam with bias correction: m = β1·m + (1−β1)·g, v = β2·v + (1−β2)·g², w −= lr·m̂/(√v̂ + eps) with
 * m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ). weightDecay adds L2 (g += wd·w), as PyTorch's Adam does.
 */
export class Adam extends Optimizer {
  readonly betas: [number, number]
  readonly eps: number
  readonly weightDecay: number
  protected readonly decoupled: boolean = false

  constructor(params: Iterable<Tensor>, options: AdamOptions = {}) {
    const { lr = 1e-3, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0 } = options ?? {}
    super(params, lr)
    const op = new.target.name
    if (!Array.isArray(betas) || betas.length !== 2 || !betas.every((b) => b >= 0 && b < 1))
      fail(op, `betas must be two numbers in [0, 1), got ${quote(betas)}`)
    checkSetting(op, 'eps', eps)
    checkSetting(op, 'weightDecay', weightDecay)
    this.betas = betas
    this.eps = eps
    this.weightDecay = weightDecay
  }

  protected newBuffers(size: number): Record<string, Float32Array> {
    return { m: new Float32Array(size), v: new Float32Array(size) }
  }

  /**
   * As Optimizer's, and v must be ≥ 0: a running mean of g², whose √ would make the next step NaN if it were not.
   */
  override loadStateDict(dict: OptimizerStateDict): void {
    const state: Record<string, Partial<ParamState>> = typeof dict?.state === 'object' ? (dict.state ?? {}) : {}
    for (const [i, st] of Object.entries(state)) {
      const v = st?.buffers?.v // the layout is super's to check
      const at = v instanceof Float32Array ? v.findIndex((x) => !(x >= 0)) : -1
      const what = `parameter ${i} has v = ${v?.[at]} at index ${at}`
      if (at >= 0)
        fail(`${this.constructor.name}.loadStateDict`, `${what}; v is a mean of squared gradients, never negative`)
    }
    super.loadStateDict(dict)
  }

  protected update(w: Float32Array, g: Float32Array, st: ParamState): void {
    const { lr, eps, weightDecay: wd } = this
    const [b1, b2] = this.betas
    const { m, v } = st.buffers
    const c1 = 1 / (1 - b1 ** st.step),
      c2 = 1 / (1 - b2 ** st.step) // bias corrections
    const l2 = this.decoupled ? 0 : wd
    const shrink = this.decoupled ? 1 - lr * wd : 1 // AdamW: w −= lr·wd·w, apart from the gradient
    for (let i = 0; i < w.length; i++) {
      const gi = g[i] + l2 * w[i]
      const mi = (m[i] = b1 * m[i] + (1 - b1) * gi)
      const vi = (v[i] = b2 * v[i] + (1 - b2) * gi * gi)
      w[i] = w[i] * shrink - (lr * mi * c1) / (Math.sqrt(vi * c2) + eps)
    }
  }
}

/** Adam with decoupled weight decay (Loshchilov & Hutter): w −= lr·wd·w, then the Adam step on g alone. */
export class AdamW extends Adam {
  protected override readonly decoupled: boolean = true

  constructor(params: Iterable<Tensor>, options: AdamOptions = {}) {
    super(params, { ...options, weightDecay: options?.weightDecay ?? 0.01 })
  }
}

/** Scale all gradients together so their global L2 norm is at most maxNorm; returns the norm before clipping. */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number): number {
  const grads = [...new Set(params)].flatMap((p) => (p.grad ? [p.grad.data] : []))
  let sq = 0
  for (const g of grads) for (let i = 0; i < g.length; i++) sq += g[i] * g[i]
  const total = Math.sqrt(sq)
  if (total > maxNorm) {
    const scale = maxNorm / (total + 1e-6)
    for (const g of grads) for (let i = 0; i < g.length; i++) g[i] *= scale
  }
  return total
}

/** lr rising linearly from lr/warmupSteps at step 0 to lr at step warmupSteps − 1, then flat. */
export function linearWarmup({ lr, warmupSteps }: { lr: number; warmupSteps: number }): (step: number) => number {
  return (step) => (step < warmupSteps ? (lr * (step + 1)) / warmupSteps : lr)
}

/** A schedule's settings: the peak lr, warmup and total steps, and the floor minLr (default 0). */
export type ScheduleOptions = { lr: number; warmupSteps: number; totalSteps: number; minLr?: number }

/** lr falling from lr at step 0 to minLr at totalSteps along half a cosine, then minLr. */
export function cosineDecay({
  lr,
  totalSteps,
  minLr = 0,
}: Omit<ScheduleOptions, 'warmupSteps'>): (step: number) => number {
  return (step) => minLr + 0.5 * (lr - minLr) * (1 + Math.cos((Math.PI * Math.min(step, totalSteps)) / totalSteps))
}

/** nanoGPT's schedule: linear warmup for warmupSteps, then cosine decay to minLr at totalSteps. */
export function cosineSchedule({ lr, warmupSteps, totalSteps, minLr = 0 }: ScheduleOptions): (step: number) => number {
  const warm = linearWarmup({ lr, warmupSteps })
  const decay = cosineDecay({ lr, totalSteps: Math.max(1, totalSteps - warmupSteps), minLr })
  return (step) => (step < warmupSteps ? warm(step) : decay(step - warmupSteps))
}
