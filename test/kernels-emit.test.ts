// The emitter (src/backends/wasm/emit.ts) and the generators on it: with FunctionBody.checks on, every generated
// function's operand types check out instruction by instruction and at its end; the check catches the mistakes it
// is for, naming the instruction; and the emitter lists exactly the instructions the generators emit.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { FunctionBody, OP_NAMES, wasmModule, type OpName } from '../src/backends/wasm/emit'
import { panelKernel, rowDotsKernel } from '../src/backends/wasm/matmul'
import { kernelFunctions } from '../src/backends/wasm/module'
import { webAssembly } from '../src/backends/webassembly'

FunctionBody.checks = true
const generated = () => ({ panel: panelKernel(), rowDots: rowDotsKernel(), ...kernelFunctions() })

test('every generated function passes the stack check and validates as a module', () => {
  const functions = generated()
  const bytes = wasmModule({ shared: false, minPages: 1, maxPages: 2 }, functions) // bytes() runs the end check
  assert.ok(webAssembly?.validate(bytes), 'the module validates')
  assert.equal(Object.keys(functions).sort(), [
    'add',
    'attentionBackward',
    'attentionForward',
    'gelu',
    'geluBackward',
    'layerNorm',
    'layerNormBackward',
    'panel',
    'rowDots',
    'softmaxRows',
    'sumAxis',
    'swiglu',
    'swigluBackward',
  ])
})

test('the emitter lists exactly the instructions the generators emit', () => {
  const used = new Set<OpName>()
  for (const f of Object.values(generated())) for (const name of f.used) used.add(name)
  used.add('end') // every function's closing `end`, which bytes() appends
  assert.equal(
    [...OP_NAMES].filter((name) => !used.has(name)),
    [],
    'listed but never emitted',
  )
  assert.equal(
    [...used].filter((name) => !OP_NAMES.includes(name)),
    [],
    'emitted but not listed',
  )
})

test('the stack check names the instruction that pops the wrong type, or finds the stack left wrong', () => {
  const mixed = new FunctionBody({ x: 'i32', v: 'v128' })
  assert.throws(
    () => mixed.get(mixed.param.v).get(mixed.param.x).op('f32x4.add'),
    /wasm emitter: f32x4\.add \(byte \d+\) wants v128 on the stack, found i32/,
  )
  const empty = new FunctionBody({})
  assert.throws(() => empty.op('i32.add'), /i32\.add .* wants i32 on the stack, found nothing/)
  const leftover = new FunctionBody({ x: 'i32' })
  leftover.get(leftover.param.x)
  assert.throws(() => leftover.bytes(), /the function ends with \[i32\] on the stack, not \[\]/)
  const block = new FunctionBody({ x: 'i32' })
  assert.throws(() => block.block(() => block.get(block.param.x)), /end .* the block leaves \[i32\], not \[\]/)
  const wrongLocal = new FunctionBody({ x: 'i32' })
  assert.throws(() => wrongLocal.f32(1).set(wrongLocal.param.x), /local\.set .* wants i32 on the stack, found f32/)
  const loop = new FunctionBody({})
  assert.throws(() => loop.doWhile(() => {}), /br_if .* wants i32 on the stack, found nothing/)
  const result = new FunctionBody({ x: 'i32' }, ['f32'])
  result.get(result.param.x).ifElse(
    () => result.f32(1),
    () => result.f32(2),
    'f32',
  )
  assert.ok(result.bytes().length > 0, 'an if/else leaving one f32 each way, returned: passes')
})

test('parameters are named in order, locals follow them', () => {
  const f = new FunctionBody({ a: 'i32', scale: 'f32', v: 'v128' })
  assert.equal(f.param, { a: 0, scale: 1, v: 2 })
  assert.equal(f.paramTypes, ['i32', 'f32', 'v128'])
  assert.is(f.local('i32'), 3)
})

test.run()
