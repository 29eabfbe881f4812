// The one-line error helpers (src/errors.ts) and the engine's messages built with them: short, one line, naming the
// op, whatever size or depth of value a user or a file hands in.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { fail, quote } from '../src/errors'
import { shapeStr } from '../src/shape'
import { Tensor, tensor, zeros } from '../src/tensor'
import { rngState, setRngState, random, manualSeed, type RngState } from '../src/random'
import { crossEntropy, mseLoss, permute, reshape, split } from '../ops'

/** The message of what `f` throws (and that it threw an Error, not a TypeError from deep inside). */
function message(f: () => unknown): string {
  try {
    f()
  } catch (err) {
    assert.instance(err, Error)
    assert.is((err as Error).constructor, Error, `a plain Error, got ${(err as Error).constructor.name}`)
    return (err as Error).message
  }
  throw new Error('expected a throw')
}

test('fail throws `op: message`; quote writes small values as JSON, with a space after each comma and colon', () => {
  assert.throws(() => fail('reshape', 'bad'), /^reshape: bad$/)
  for (const v of ['text "quoted"', 3.5, [], {}, null]) assert.is(quote(v), JSON.stringify(v))
  assert.is(quote([1, 1]), '[1, 1]')
  assert.is(quote({ a: 1, b: [true, null] }), '{"a": 1, "b": [true, null]}')
  assert.is(quote(NaN), 'NaN')
  assert.is(quote(undefined), 'undefined')
  assert.is(quote(new Float32Array(5)), 'Float32Array(5)')
})

test('quote stays short and safe on huge, deep and cyclic values', () => {
  assert.is(quote('x'.repeat(50_000_000)).length, 201)
  assert.is(quote(new Array(5_000_000).fill(7)).length, 201)
  let deep: unknown[] = []
  for (let i = 0; i < 100_000; i++) deep = [deep]
  assert.is(quote(deep).length, 201)
  const cyclic: Record<string, unknown> = { a: 1 }
  cyclic.self = cyclic
  assert.is(quote(cyclic), '{"a": 1, "self": [cycle]}')
})

test('shapes in messages: a 5M-dim or non-numeric shape is shown in a few hundred characters', () => {
  assert.is(shapeStr([2, 3]), '(2,3)')
  const huge = new Array(5_000_000).fill(1)
  assert.ok(shapeStr(huge).length < 260, shapeStr(huge))
  assert.match(shapeStr(huge), /…, 5000000 dims\)$/)
  const m = message(() => new Tensor(new Float32Array(1), huge.concat(-1)))
  assert.match(m, /^Tensor: invalid shape \(1,1,.*…, 5000001 dims\): dims must be non-negative integers$/)
  assert.ok(m.length < 320, `${m.length} characters`)
  assert.match(
    message(() => zeros(null as unknown as number[])),
    /^full: invalid shape null: dims must be/,
  )
  assert.match(
    message(() => zeros('abc' as unknown as number[])),
    /^full: invalid shape "abc"/,
  )
})

test('messages quote user values instead of echoing them whole', () => {
  const x = zeros([2, 3])
  const long = new Array(100_000).fill(0)
  const m = message(() => split(x, long, 0))
  assert.match(m, /^split: sizes \[0, 0, 0, .*…/)
  assert.ok(m.length < 300, `${m.length} characters`)
  assert.match(
    message(() => permute(x, [1, 1])),
    /^permute: \[1, 1\] is not a permutation of 0\.\.1$/,
  )
  assert.match(
    message(() => reshape(x, [4, -1, -1])),
    /^reshape: only one dim may be -1/,
  )
})

test('setRngState refuses what rngState() never gives, instead of silently reseeding', () => {
  manualSeed(3)
  const state = rngState()
  const next = random()
  for (const bad of [null, undefined, {}, { i: 0, j: 0, S: [1, 2] }, { ...state, i: 1.5 }, { ...state, S: 'x' }]) {
    assert.match(
      message(() => setRngState(bad as unknown as RngState)),
      /^setRngState: expected \{ i, j, S \}/,
    )
  }
  setRngState(state)
  assert.is(random(), next, 'a state from rngState() still restores the stream')
})

test("losses refuse an unknown reduction instead of treating it as 'sum'", () => {
  const logits = tensor([[1, 2, 3]]),
    targets = tensor([2])
  const avg = { reduction: 'avg' as 'mean' }
  assert.match(
    message(() => crossEntropy(logits, targets, avg)),
    /^crossEntropy: reduction must be .*got "avg"$/,
  )
  assert.match(
    message(() => mseLoss(logits, logits, avg)),
    /^mseLoss: reduction must be 'mean', 'sum' or 'none'/,
  )
})

test.run()
