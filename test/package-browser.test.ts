// The universal entry in a browser bundle: esbuild (platform 'browser') bundles src/index.ts with no stub and no
// polyfill, nothing in the output imports node:* or webgpu, and the bundle imports and trains in a bare V8
// context that has no SharedArrayBuffer, no Worker, no process, only what every browser page has.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { join } from 'node:path'
import { createContext, runInContext } from 'node:vm'
import { build, type BuildFailure } from 'esbuild'

const root = join(import.meta.dirname, '..')

/** Bundle src/index.ts as a browser would get it; the esbuild errors, or the output's text. */
async function bundle(format: 'esm' | 'iife'): Promise<{ errors: string[]; code: string }> {
  try {
    const result = await build({
      entryPoints: [join(root, 'src/index.ts')],
      bundle: true,
      platform: 'browser',
      format,
      globalName: 'tenny',
      write: false,
      logLevel: 'silent',
    })
    return { errors: [], code: result.outputFiles[0]?.text ?? '' }
  } catch (err) {
    const failure = err as BuildFailure
    return {
      errors: failure.errors.map((e) => `${e.location?.file ?? '?'}:${e.location?.line ?? '?'}: ${e.text}`),
      code: '',
    }
  }
}

test('browser bundle of src/index.ts: no error, no node:* or webgpu import anywhere in the output', async () => {
  const { errors, code } = await bundle('esm')
  assert.equal(errors, [], `esbuild --platform=browser failed:\n${errors.join('\n')}`)
  const nodeOnly = [
    ...code.matchAll(
      /(?:from\s*|import\s*\(\s*|require\s*\(\s*)["'](node:[\w/]+|webgpu|worker_threads|fs|path|os|crypto)["']/g,
    ),
  ].map((m) => m[1])
  assert.equal(nodeOnly, [], `the bundle imports ${nodeOnly.join(', ')}`)
  assert.ok(
    code.includes('serializeSafetensors') && code.includes('decodeNpz'),
    'the byte-level file formats are in the bundle',
  )
})

test('the bundle imports in a bare V8 context (no SharedArrayBuffer, Worker or process) and trains, saves and loads there', async () => {
  const { errors, code } = await bundle('iife')
  assert.equal(errors, [])
  // what a page without cross-origin isolation has: V8's builtins less SharedArrayBuffer (Atomics stays, as in
  // browsers, working on unshared memory), the encoders, a clock, a console
  const context = createContext({ TextEncoder, TextDecoder, performance, console })
  runInContext('delete globalThis.SharedArrayBuffer', context)
  assert.is(
    runInContext('typeof SharedArrayBuffer + typeof Worker + typeof process', context),
    'undefinedundefinedundefined',
  )
  runInContext(code, context) // the import itself: nothing at import time may need what is missing
  const out = runInContext(
    `(() => {
    const { tensor, matmul, randn, manualSeed, mseLoss, nn, optim, serializeSafetensors, parseSafetensors, backendInfo } = tenny
    manualSeed(0)
    const big = matmul(randn([200, 200]), randn([200, 200])) // past every backend threshold: auto probes here
    const model = new nn.Linear(4, 2)
    const opt = new optim.SGD(model.parameters(), { lr: 0.1 })
    const x = randn([16, 4]), target = matmul(x, tensor([[1, -1], [2, 0], [0, 1], [-1, 1]]))
    const losses = []
    for (let step = 0; step < 20; step++) {
      const loss = mseLoss(model.forward(x), target)
      losses.push(loss.item())
      opt.zeroGrad()
      loss.backward()
      opt.step()
    }
    const back = parseSafetensors(serializeSafetensors({ w: model.weight })).tensors.w
    const info = backendInfo()
    return JSON.stringify({ size: big.size, losses, same: Array.from(back.data).join() === Array.from(model.weight.data).join(), backend: info.backend, threads: info.parallel.threads, failure: info.parallel.failure })
  })()`,
    context,
  ) as string
  const result = JSON.parse(out) as {
    size: number
    losses: number[]
    same: boolean
    backend: string
    threads: number
    failure: string
  }
  assert.is(result.size, 40000)
  assert.ok(
    result.losses[19]! < result.losses[0]! / 2,
    `20 SGD steps at least halve the loss: ${result.losses[0]} → ${result.losses[19]}`,
  )
  assert.ok(result.same, 'a tensor saved to safetensors bytes reads back bitwise')
  assert.is.not(result.backend, 'parallel', 'no SharedArrayBuffer, so no thread pool')
  assert.is(result.threads, 1, 'one thread')
  assert.ok(result.failure !== '', `backendInfo says why there are no threads: ${result.failure}`)
})

test.run()
