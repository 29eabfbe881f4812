import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Tensor, tensor } from '../src/tensor'
import { SGD, Adam, AdamW, clipGradNorm, linearWarmup, cosineDecay, cosineSchedule } from '../nn/optim'
import { assertClose } from './helpers'
import { saveOptimizer, loadOptimizer } from '../nn/files/checkpoint-node'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A parameter with values w whose gradient we set by hand. */
function param(w: number[]): Tensor {
  return tensor(w, { requiresGrad: true })
}
function setGrad(p: Tensor, g: number[]): void {
  p.grad = tensor(g)
}

test('SGD: plain, with weight decay, and with momentum, against hand-computed steps', () => {
  const p = param([1, -2])
  const sgd = new SGD([p], { lr: 0.1, weightDecay: 0.5 })
  setGrad(p, [1, 1])
  sgd.step() // g + 0.5·w = [1.5, 0];  w − 0.1·g
  assertClose(p.data, [0.85, -2], { atol: 1e-7 })
  const q = param([1])
  const mom = new SGD([q], { lr: 0.1, momentum: 0.9 })
  setGrad(q, [2])
  mom.step() // buf = 2, w = 1 − 0.2
  setGrad(q, [1])
  mom.step() // buf = 0.9·2 + 1 = 2.8, w = 0.8 − 0.28
  assertClose(q.data, [0.52], { atol: 1e-7 })
})

test('Adam and AdamW: two steps match the update rules computed by hand', () => {
  const [lr, b1, b2, eps, wd] = [0.1, 0.9, 0.999, 1e-8, 0.2]
  const grads = [
    [0.5, -1],
    [0.25, 2],
  ]
  for (const decoupled of [false, true]) {
    const p = param([1, -3])
    const opt = decoupled ? new AdamW([p], { lr, weightDecay: wd }) : new Adam([p], { lr, weightDecay: wd })
    const w = [1, -3],
      m = [0, 0],
      v = [0, 0]
    for (let t = 1; t <= 2; t++) {
      setGrad(p, grads[t - 1])
      opt.step()
      for (let i = 0; i < 2; i++) {
        const g = grads[t - 1][i] + (decoupled ? 0 : wd * w[i])
        if (decoupled) w[i] -= lr * wd * w[i]
        m[i] = b1 * m[i] + (1 - b1) * g
        v[i] = b2 * v[i] + (1 - b2) * g * g
        w[i] -= (lr * m[i]) / (1 - b1 ** t) / (Math.sqrt(v[i] / (1 - b2 ** t)) + eps)
      }
      assertClose(p.data, w, { atol: 1e-6, what: `${decoupled ? 'AdamW' : 'Adam'} step ${t}` })
    }
  }
  assert.is(new AdamW([param([1])]).weightDecay, 0.01)
  assert.is(new Adam([param([1])]).lr, 1e-3)
})

test('optimizers: zeroGrad clears .grad; parameters without a gradient keep their values and get no state', () => {
  const a = param([1]),
    b = param([2])
  const opt = new Adam([a, b], { lr: 0.5 })
  setGrad(a, [1])
  opt.step()
  assert.equal(Array.from(b.data), [2])
  assert.equal(Object.keys(opt.stateDict().state), ['0'])
  opt.zeroGrad()
  assert.is(a.grad, null)
  opt.step() // no gradients: nothing moves
  assert.equal(opt.stateDict().state['0'].step, 1)
  assert.throws(() => new SGD([], { lr: 1 }), /empty parameter list/)
})

test('optimizers: stateDict round-trips so the next steps are bitwise equal; lr is settable and restored', () => {
  const run = (opt: AdamW | SGD, p: Tensor, t: number) => {
    setGrad(p, [Math.sin(t), Math.cos(t), 0.1 * t])
    opt.step()
  }
  for (const make of [
    (p: Tensor) => new AdamW([p], { lr: 0.05 }),
    (p: Tensor) => new SGD([p], { lr: 0.05, momentum: 0.9 }),
  ]) {
    const p = param([1, 2, 3])
    const opt = make(p)
    for (let t = 0; t < 3; t++) run(opt, p, t)
    opt.lr = 0.02
    const saved = opt.stateDict(),
      w = p.data.slice()
    for (let t = 3; t < 6; t++) run(opt, p, t)
    const q = param(Array.from(w))
    const resumed = make(q)
    resumed.loadStateDict(saved)
    assert.is(resumed.lr, 0.02)
    for (let t = 3; t < 6; t++) run(resumed, q, t)
    assert.equal(q.data, p.data)
  }
})

test('optimizers: saveOptimizer/loadOptimizer through a file resume bitwise; a wrong class, a damaged file or a wrong size is refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tenny-optim-'))
  try {
    const p = param([1, 2, 3]),
      opt = new AdamW([p], { lr: 0.05 })
    const grads = [
      [0.3, -1, 2],
      [1, 1, -0.5],
      [0.1, 0.2, 0.3],
    ]
    setGrad(p, grads[0])
    opt.step()
    opt.lr = 0.01
    const file = join(dir, 'optimizer.safetensors'),
      w = p.data.slice()
    saveOptimizer(file, opt)
    for (const g of grads.slice(1)) {
      setGrad(p, g)
      opt.step()
    }
    const q = param(Array.from(w)),
      resumed = new AdamW([q], { lr: 0.05 })
    loadOptimizer(resumed, file)
    assert.is(resumed.lr, 0.01)
    for (const g of grads.slice(1)) {
      setGrad(q, g)
      resumed.step()
    }
    assert.equal(q.data, p.data)
    assert.throws(
      () => loadOptimizer(new SGD([q], { lr: 1, momentum: 0.9 }), file),
      /SGD.load: .* holds AdamW state, not SGD/,
    )
    assert.throws(() => loadOptimizer(new AdamW([param([1, 2])]), file), /buffer 0.m has 3 values, parameter has 2/)
    writeFileSync(join(dir, 'bad.safetensors'), 'not a safetensors file')
    assert.throws(() => loadOptimizer(resumed, join(dir, 'bad.safetensors')))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('optimizers: loadStateDict refuses state that does not fit the parameters', () => {
  const opt = new Adam([param([1, 2])])
  const m = new Float32Array(2),
    v = new Float32Array(2)
  assert.throws(
    () => opt.loadStateDict({ lr: 1, state: { 1: { step: 1, buffers: { m, v } } } }),
    /state for parameter 1, but there are 1 parameters/,
  )
  assert.throws(
    () => opt.loadStateDict({ lr: 1, state: { 0: { step: 1, buffers: { m: new Float32Array(3), v } } } }),
    /buffer 0.m has 3 values, parameter has 2/,
  )
  assert.throws(
    () => opt.loadStateDict({ lr: 1, state: { 0: { step: 1, buffers: { momentum: m } } } }),
    /has buffers momentum, expected m,v/,
  )
  assert.throws(() => opt.loadStateDict({ lr: 1, state: { 0: { step: 0, buffers: { m, v } } } }), /step 0/)
})

test('clipGradNorm: returns the global norm and rescales only when it exceeds maxNorm', () => {
  const a = param([0, 0]),
    b = param([0])
  setGrad(a, [3, 0])
  setGrad(b, [4])
  assert.is(clipGradNorm([a, b], 10), 5)
  assert.equal(Array.from(b.grad!.data), [4])
  assert.is(clipGradNorm([a, b], 1), 5)
  assertClose([...a.grad!.data, ...b.grad!.data], [0.6, 0, 0.8], { atol: 1e-6 })
})

test('schedules: linear warmup, cosine decay and their combination hit their endpoints', () => {
  const warm = linearWarmup({ lr: 1, warmupSteps: 4 })
  assert.equal([0, 1, 3, 10].map(warm), [0.25, 0.5, 1, 1])
  const cos = cosineDecay({ lr: 1, totalSteps: 10, minLr: 0.1 })
  assertClose([0, 5, 10, 20].map(cos), [1, 0.55, 0.1, 0.1], { atol: 1e-12 })
  const sched = cosineSchedule({ lr: 1, warmupSteps: 2, totalSteps: 12, minLr: 0 })
  assertClose([0, 1, 2, 7, 12, 50].map(sched), [0.5, 1, 1, 0.5, 0, 0], { atol: 1e-12 })
})

test.run()
