// The universal entry as a browser bundle sees it (issue 13, item 1): esbuild with platform 'browser' bundles
// src/index.ts — the whole library: ops, nn, adapters and checkpoints as bytes, every backend — and nothing in
// it imports node:*, webgpu or gpu.js, so a page needs no stubs or polyfills.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { join } from 'node:path'
import { build, type Plugin } from 'esbuild'

const root = join(import.meta.dirname, '..')

test('browser bundle of src/index.ts: no module anywhere imports node:*, webgpu or gpu.js', async () => {
  const imports: string[] = []
  const record: Plugin = {
    name: 'record-node-only-imports',
    setup(b) {
      // a bare builtin ('fs') without a browser mapping already fails esbuild's browser build (seedrandom maps crypto to false)
      b.onResolve({ filter: /^(node:|webgpu$|gpu\.js$)/ }, (args) => {
        imports.push(`${args.importer.slice(root.length + 1)} → ${args.path}`)
        return { path: args.path, external: true }
      })
    },
  }
  const result = await build({
    entryPoints: [join(root, 'src/index.ts')],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    logLevel: 'silent',
    metafile: true,
    plugins: [record],
  })
  const bundled = Object.keys(result.metafile.inputs)
  for (const part of [
    'nn/files/adapters.ts',
    'nn/files/checkpoint.ts',
    'src/formats/safetensors.ts',
    'src/backends/wasm/index.ts',
    'src/backends/gpujs/gpu-web.ts',
  ]) {
    assert.ok(bundled.includes(part), `${part} is part of the bundle`)
  }
  assert.equal(
    imports,
    [],
    `modules reachable from src/index.ts import Node-only or optional packages:\n${imports.join('\n')}`,
  )
  assert.not.ok(
    bundled.some((f) => /-node\.ts$/.test(f)),
    `a *-node.ts module is reachable: ${bundled.filter((f) => /-node\.ts$/.test(f)).join(', ')}`,
  )
})

test.run()
