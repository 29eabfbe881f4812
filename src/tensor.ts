// Tensor: a Float32Array with a shape, plus the two fields autograd needs (parents and backwardFn).
// backward() is a topological sort followed by one reverse sweep, as in micrograd, but iterative.
import { type Shape, sizeOf, shapeStr, checkShape, stridesOf } from './shape.js'
import { random, randomNormal, randomInt } from './random.js'
import { K } from './kernels/index.js'
import { fail, quote } from './errors.js'

let gradEnabled = true

type NestedArray = number | NestedArray[]

export class Tensor {
  readonly shape: number[]
  grad: Tensor | null = null
  parents: Tensor[] = []
  backwardFn: (() => void) | null = null
  /** Bumped by every in-place write through Tenny (optimizer steps, loadStateDict); raw `data[i] = v` is not seen. */
  version = 0
  private released = false

  constructor(
    readonly data: Float32Array,
    shape: Shape,
    public requiresGrad = false,
  ) {
    checkShape('Tensor', shape)
    if (data.length !== sizeOf(shape))
      fail('Tensor', `data has ${data.length} elements but shape ${shapeStr(shape)} needs ${sizeOf(shape)}`)
    this.shape = [...shape]
  }

  get size(): number {
    return this.data.length
  }
  get ndim(): number {
    return this.shape.length
  }

  /** The value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) fail('item', `tensor of shape ${shapeStr(this.shape)} has ${this.size} elements, expected 1`)
    return this.data[0]
  }

  /** Nested JS arrays in row-major order (a number for a scalar). */
  toArray(): NestedArray {
    const strides = stridesOf(this.shape)
    const build = (axis: number, offset: number): NestedArray => {
      if (axis === this.ndim) return this.data[offset]
      return Array.from({ length: this.shape[axis] }, (_, i) => build(axis + 1, offset + i * strides[axis]))
    }
    return build(0, 0)
  }

  /** Same data, cut from the graph: gradients stop here. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape)
  }

  toString(): string {
    return `Tensor${shapeStr(this.shape)} ${JSON.stringify(this.toArray())}`
  }

  /**
   * Reverse-mode autodiff from this tensor. A scalar seeds dy = 1; any other shape needs `grad`.
   * Leaf gradients accumulate across calls until zeroed; the graph is freed unless retainGraph.
   */
  backward(grad?: Tensor | Float32Array, { retainGraph = false } = {}): void {
    const op = 'backward'
    if (!this.requiresGrad) fail(op, 'this tensor does not require grad (no input had requiresGrad, or noGrad ran)')
    if (this.released) fail(op, 'an earlier backward() already freed the graph; pass it { retainGraph: true }')
    let seed: Float32Array
    if (grad === undefined) {
      if (this.size !== 1) fail(op, `output of shape ${shapeStr(this.shape)} is not a scalar; pass its gradient`)
      seed = new Float32Array([1])
    } else {
      seed = (grad instanceof Tensor ? grad.data : grad).slice() // the root keeps its grad: not the caller's array
      if (seed.length !== this.size)
        fail(op, `gradient has ${seed.length} elements, tensor ${shapeStr(this.shape)} has ${this.size}`)
    }
    const order = topoSort(this)
    const freed = order.find((t) => t !== this && t.released)
    if (freed) {
      const what = `the graph passes through a ${shapeStr(freed.shape)} tensor whose own graph an earlier backward()`
      fail(op, `${what} freed; its inputs would get no gradient. Pass { retainGraph: true } to that first backward()`)
    }
    for (const t of order) if (t.backwardFn) t.grad = null // intermediate grads restart from zero each call
    addGrad(this, seed)
    for (let t = order.pop(); t !== undefined; t = order.pop()) {
      // popped: once swept, nothing here holds a node's data
      if (t.backwardFn && t.grad) t.backwardFn()
      const intermediate = t !== this && (t.backwardFn !== null || t.released)
      if (t.backwardFn && !retainGraph) {
        t.backwardFn = null
        t.parents = []
        t.released = true
      }
      if (intermediate) t.grad = null // intermediate gradients are not kept, with or without retainGraph
    }
  }
}

/** Nodes reachable from `root` that take part in autograd, parents before children; iterative, so depth is no limit. */
function topoSort(root: Tensor): Tensor[] {
  const order: Tensor[] = []
  const visited = new Set<Tensor>()
  const stack: [Tensor, number][] = [[root, 0]]
  visited.add(root)
  while (stack.length > 0) {
    const top = stack[stack.length - 1]
    const [node, next] = top
    if (next < node.parents.length) {
      top[1]++
      const parent = node.parents[next]
      if (parent.requiresGrad && !visited.has(parent)) {
        visited.add(parent)
        stack.push([parent, 0])
      }
    } else {
      stack.pop()
      order.push(node)
    }
  }
  return order
}

/** Wrap a kernel's output as a Tensor; if any parent wants a gradient, remember how to give it one. */
export function fromOp(
  data: Float32Array,
  shape: Shape,
  parents: Tensor[],
  backward: (dy: Float32Array) => void,
): Tensor {
  const out = new Tensor(data, shape)
  if (gradEnabled && parents.some((p) => p.requiresGrad)) {
    // PyTorch's version counter: a parent written in place after this forward would make its gradient wrong
    const versions = parents.map((p) => p.version)
    out.requiresGrad = true
    out.parents = parents
    out.backwardFn = () => {
      // backward() only calls this once out.grad is set
      const i = parents.findIndex((p, j) => p.version !== versions[j])
      if (i >= 0) {
        const [p, was] = [parents[i], versions[i]]
        const what = `input ${i} ${shapeStr(p.shape)} of an op was changed in place after the forward`
        const why = `(version ${was} → ${p.version}, e.g. by an optimizer step), so its gradient would be wrong`
        fail('backward', `${what} ${why}; run the forward again`)
      }
      backward(out.grad!.data)
    }
  }
  return out
}

/**
 * Accumulate `g` into t.grad. Ops may hand one dy to several parents, so a leaf copies its first gradient (its grad
 * is the caller's to change) while an intermediate adopts it, read only by its own backward and never written.
 */
export function addGrad(t: Tensor, g: Float32Array): void {
  if (!t.requiresGrad) return
  const leaf = t.backwardFn === null
  if (t.grad === null) {
    t.grad = new Tensor(leaf ? g.slice() : g, t.shape)
    return
  }
  if (!leaf)
    t.grad = new Tensor(K.add(t.grad.data, g), t.shape) // an intermediate's grad may be shared: a fresh sum
  else for (let i = 0; i < g.length; i++) t.grad.data[i] += g[i]
}

/** Run fn without recording a graph (inference, optimizer steps, evaluation). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled
  gradEnabled = false
  try {
    return fn()
  } finally {
    gradEnabled = prev
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled
}

// ---- creation ----------------------------------------------------------------------------

type CreateOptions = { requiresGrad?: boolean }

function flatten(op: string, value: NestedArray, shape: number[], out: number[], depth: number): void {
  if (typeof value === 'number') {
    if (depth !== shape.length)
      fail(op, `ragged nested array: a number at depth ${depth}, expected depth ${shape.length}`)
    out.push(value)
    return
  }
  if (!Array.isArray(value)) fail(op, `expected numbers or nested arrays of numbers, got ${quote(value)}`)
  if (shape[depth] !== value.length)
    fail(op, `ragged nested array: length ${value.length} at depth ${depth}, expected ${shape[depth]}`)
  for (const v of value) flatten(op, v, shape, out, depth + 1)
}

/** The shape read off the first element at every depth; flatten() then checks all others agree. */
function inferShape(values: NestedArray): number[] {
  const shape: number[] = []
  let probe = values
  while (Array.isArray(probe)) {
    shape.push(probe.length)
    if (probe.length === 0) break
    probe = probe[0]
  }
  return shape
}

/** A tensor from nested arrays (shape inferred) or a flat Float32Array with a shape: tensor([[1, 2]]). */
export function tensor(
  values: NestedArray | Float32Array,
  shapeOrOptions?: Shape | CreateOptions,
  options: CreateOptions = {},
): Tensor {
  const shape = Array.isArray(shapeOrOptions) ? shapeOrOptions : undefined
  const { requiresGrad = false } = Array.isArray(shapeOrOptions)
    ? options
    : ((shapeOrOptions ?? options) as CreateOptions)
  if (values instanceof Float32Array) return new Tensor(values, shape ?? [values.length], requiresGrad)
  const inferred = inferShape(values)
  const flat: number[] = []
  flatten('tensor', values, inferred, flat, 0)
  return new Tensor(Float32Array.from(flat), shape ?? inferred, requiresGrad)
}

export function full(shape: Shape, value: number, { requiresGrad = false }: CreateOptions = {}): Tensor {
  checkShape('full', shape)
  return new Tensor(new Float32Array(sizeOf(shape)).fill(value), shape, requiresGrad)
}

export function zeros(shape: Shape, opts: CreateOptions = {}): Tensor {
  return full(shape, 0, opts)
}

export function ones(shape: Shape, opts: CreateOptions = {}): Tensor {
  return full(shape, 1, opts)
}

/** [start, start + step, ...) up to but excluding end; arange(n) is 0..n-1. */
export function arange(start: number, end?: number, step = 1): Tensor {
  if (end === undefined) [start, end] = [0, start]
  if (step === 0) fail('arange', 'step must not be 0')
  const n = Math.max(0, Math.ceil((end - start) / step))
  const data = new Float32Array(n)
  for (let i = 0; i < n; i++) data[i] = start + i * step
  return new Tensor(data, [n])
}

/** Identity matrix (n, m). */
export function eye(n: number, m = n): Tensor {
  const out = zeros([n, m])
  for (let i = 0; i < Math.min(n, m); i++) out.data[i * m + i] = 1
  return out
}

function fill(op: string, shape: Shape, draw: () => number, requiresGrad: boolean): Tensor {
  checkShape(op, shape)
  const data = new Float32Array(sizeOf(shape))
  for (let i = 0; i < data.length; i++) data[i] = draw()
  return new Tensor(data, shape, requiresGrad)
}

/** Uniform in [low, high) from the seeded stream (default [0, 1)). */
export function rand(shape: Shape, { low = 0, high = 1, requiresGrad = false } = {}): Tensor {
  return fill('rand', shape, () => low + (high - low) * random(), requiresGrad)
}

/** Normal(mean, std) from the seeded stream. */
export function randn(shape: Shape, { mean = 0, std = 1, requiresGrad = false } = {}): Tensor {
  return fill('randn', shape, () => mean + std * randomNormal(), requiresGrad)
}

/** Integers in [low, high), stored as floats (token ids, class ids). */
export function randint(low: number, high: number, shape: Shape): Tensor {
  if (!Number.isInteger(low) || !Number.isInteger(high) || low >= high)
    fail('randint', `expected integers low < high, got [${quote(low)}, ${quote(high)})`)
  return fill('randint', shape, () => randomInt(low, high), false)
}
