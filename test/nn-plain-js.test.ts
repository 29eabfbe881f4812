// The nn modules called from plain JavaScript, as a browser page or a script without types calls them: a null
// options object, a setting of the wrong type, a file's malformed state. Each gave a raw TypeError deep inside
// (`Cannot destructure property … of null`, `betas.every is not a function`) or a silent NaN; now one line naming
// the op, what it got and what it expected.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { tensor } from '../src/tensor'
import { Linear } from '../nn/linear'
import { LayerNorm } from '../nn/layernorm'
import { CausalSelfAttention } from '../nn/attention'
import { GPT } from '../nn/gpt'
import { LoRALinear } from '../nn/lora'
import { quantize } from '../nn/quantized'
import { applyLoRA, setAdapters } from '../nn/lora-model'
import { Adam, AdamW, SGD } from '../nn/optim'
import { TINY_GPT, Toy } from './fixtures'

/** What `f` throws: a plain Error (not a TypeError or RangeError) with a one-line message. */
function message(f: () => unknown): string {
  try {
    f()
  } catch (err) {
    assert.is((err as Error).constructor, Error, `${(err as Error).constructor.name}: ${(err as Error).message}`)
    assert.not.match((err as Error).message, /\n/)
    return (err as Error).message
  }
  throw new Error('expected a throw')
}

const nil = null as never

test('null options mean the defaults, as undefined does', () => {
  const layer = LoRALinear.fromLinear(new Linear(4, 3), nil)
  assert.equal([layer.rank, layer.scale], [8, 2])
  assert.is(new AdamW([layer.loraA], nil).weightDecay, 0.01)
  assert.is(new Adam([layer.loraA], nil).lr, 1e-3)
  assert.is(new LayerNorm(4, nil).eps, 1e-5)
  assert.equal(quantize(new Toy(), nil).skipped.length, 10) // groups of 64 do not split 16 in-features
  const gpt = new GPT(TINY_GPT)
  assert.equal(gpt.generate(tensor([[1, 2]]), 2, nil).shape, [1, 4])
})

test('settings of the wrong type are refused in one line, not a TypeError or a NaN later', () => {
  const w = new Linear(4, 3).weight
  assert.match(
    message(() => new Adam([w], { betas: nil })),
    /^Adam: betas must be two numbers in \[0, 1\), got null$/,
  )
  assert.match(
    message(() => new AdamW([w], { eps: NaN })),
    /^AdamW: eps must be a finite number ≥ 0, got NaN$/,
  )
  assert.match(
    message(() => new Adam([w], { weightDecay: -1 })),
    /^Adam: weightDecay must be a finite number ≥ 0/,
  )
  assert.match(
    message(() => new SGD([w], nil)),
    /^SGD: lr must be a finite number ≥ 0, got undefined$/,
  )
  assert.match(
    message(() => new SGD([w], { lr: 0.1, momentum: NaN })),
    /^SGD: momentum must be a finite number/,
  )
  assert.match(
    message(() => new SGD(nil, { lr: 0.1 })),
    /^SGD: expected the parameters as a list of Tensors/,
  )
  assert.match(
    message(() => new LayerNorm(4, { eps: -1 })),
    /^LayerNorm: eps must be a finite number ≥ 0, got -1$/,
  )
  assert.match(
    message(() => new CausalSelfAttention(nil)),
    /^CausalSelfAttention: nEmbd undefined must split/,
  )
  assert.match(
    message(() => new GPT(nil)),
    /^GPT: config must be an object, got null$/,
  )
  assert.match(
    message(() => setAdapters(new Toy(), nil)),
    /^setAdapters: expected strengths by adapter name/,
  )
  assert.match(
    message(() => new Toy().loadStateDict(nil)),
    /^loadStateDict: expected \{ name: Tensor \}, got null$/,
  )
  assert.match(
    message(() => new Toy().getModule(nil)),
    /^getModule: expected a dotted path, got null$/,
  )
  const m = new Toy()
  applyLoRA(m, { rank: 2 })
  const dict = { ...m.stateDict(), 'head.weight': 1 as never }
  assert.match(
    message(() => m.loadStateDict(dict)),
    /^loadStateDict: head\.weight is 1, not a Tensor$/,
  )
})

test("an optimizer's state from a file with the wrong layout is refused, and nothing changes", () => {
  const w = new Linear(2, 1).weight
  const opt = new Adam([w], { lr: 0.1 })
  const m = new Float32Array(2)
  for (const [dict, why] of [
    [null, /expected \{ lr, state \} as stateDict\(\) gives, got null/],
    [{ lr: 0.1 }, /expected \{ lr, state \}/],
    [{ lr: 0.1, state: { 0: null } }, /parameter 0 has state null, not \{ step, buffers \}/],
    [{ lr: 0.1, state: { 0: { step: 1 } } }, /parameter 0 has state .*not \{ step, buffers \}/],
    [{ lr: 0.1, state: { 0: { step: 1, buffers: { m, v: null } } } }, /buffer 0\.v is null, not a Float32Array/],
    [{ lr: '1', state: {} }, /lr must be a finite number ≥ 0, got "1"/],
  ] as const)
    assert.match(
      message(() => opt.loadStateDict(dict as never)),
      new RegExp(`^Adam.loadStateDict: .*${why.source}`),
    )
  assert.is(opt.lr, 0.1)
})

test.run()
