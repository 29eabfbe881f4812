// The entries and the backends at import: nothing reachable from src/index.ts in src/backends or src/kernels
// imports node:* or `webgpu` (a browser bundle needs no stubs for them); importing starts no thread and needs
// no SharedArrayBuffer; a bad TENNY_BACKEND is one clear error at the first product, never at import.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { build, type Plugin } from 'esbuild'

const root = join(import.meta.dirname, '..')

/** This process's environment with `extra`, without colours. */
function envWith(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...extra }
  delete env.FORCE_COLOR
  return env
}

/** Run an ES module snippet under tsx in a fresh process, from the repository root. */
function node(code: string, env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: root,
    encoding: 'utf8',
    env: envWith(env),
    timeout: 60_000,
  })
  return { status: run.status, stdout: run.stdout, stderr: run.stderr }
}

test('browser bundle of src/index.ts: no file in src/backends or src/kernels imports node:* or webgpu', async () => {
  const importers: string[] = []
  const record: Plugin = {
    name: 'record-node-imports',
    setup(b) {
      b.onResolve({ filter: /^(node:|webgpu$)/ }, (args) => {
        importers.push(`${args.importer.slice(root.length + 1)} → ${args.path}`)
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
  assert.ok(
    bundled.some((f) => f.startsWith('src/backends/')),
    'the backends are part of the bundle',
  )
  const ours = importers.filter((i) => i.startsWith('src/backends/') || i.startsWith('src/kernels/'))
  assert.equal(ours, [], `backend files reachable from src/index.ts import Node-only modules:\n${ours.join('\n')}`)
  for (const nodeOnly of [
    'src/backends/threads/threads-node.ts',
    'src/backends/gpujs/gpu-node.ts',
    'src/backends/threads/worker-node.ts',
  ]) {
    assert.not.ok(bundled.includes(nodeOnly), `${nodeOnly} is reachable from src/index.ts`)
  }
})

test('importing src/index.ts needs no SharedArrayBuffer, Worker or shared memory: products run, backendInfo says why one thread', () => {
  const run = node(
    [
      'delete globalThis.SharedArrayBuffer; delete globalThis.Worker',
      'const Memory = WebAssembly.Memory', // tsx itself needs WebAssembly: only shared memories are refused
      "WebAssembly.Memory = function (d) { if (d.shared) throw new Error('a shared memory was made'); return new Memory(d) }",
      "const t = await import('./src/index.ts')",
      'const x = t.randn([200, 200])',
      'const y = t.matmul(x, x)', // past every threshold: auto probes here
      'const info = t.backendInfo()',
      'console.log(JSON.stringify({ size: y.size, backend: info.backend, threads: info.parallel.threads, failure: info.parallel.failure }))',
    ].join('\n'),
  )
  assert.is(run.status, 0, run.stderr)
  const out = JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}')
  assert.is(out.size, 40000)
  assert.ok(out.backend === 'cpu' || out.backend === 'wasm', out.backend) // wasm on one thread needs no shared memory
  assert.is(out.threads, 1)
  assert.match(out.failure, /no thread spawner: in Node import the `node` entry/)
})

test('TENNY_BACKEND=bogus: import works, the first product throws one clear error, setBackend() recovers', () => {
  const run = node(
    [
      "const t = await import('./src/index.ts')",
      'console.log(t.backendInfo().reason)',
      'try { t.matmul(t.ones([2, 2]), t.ones([2, 2])); console.log("no error") } catch (err) { console.log(err.message) }',
      "t.setBackend('cpu')",
      'console.log(t.matmul(t.ones([2, 2]), t.ones([2, 2])).data.join())',
    ].join('\n'),
    { TENNY_BACKEND: 'bogus' },
  )
  assert.is(run.status, 0, run.stderr)
  const lines = run.stdout.trim().split('\n')
  assert.match(lines[0], /^TENNY_BACKEND=bogus: not a backend \(expected one of cpu, parallel, wasm, gpujs, auto\)/)
  assert.is(lines[1], 'TENNY_BACKEND=bogus: not a backend (expected one of cpu, parallel, wasm, gpujs, auto)')
  assert.is(lines[2], '2,2,2,2')
})

test('without WebAssembly SIMD: the wasm backend is refused with the reason, and auto picks among the others', () => {
  const run = node(
    [
      'WebAssembly.validate = () => false', // as a runtime without SIMD answers for the probe module
      "const t = await import('./src/node.ts')",
      "try { t.setBackend('wasm'); console.log('no error') } catch (err) { console.log(err.message) }",
      "const info = t.setBackend('auto')",
      'console.log(info.backend, info.wasm)',
    ].join('\n'),
  )
  assert.is(run.status, 0, run.stderr)
  const lines = run.stdout.trim().split('\n')
  assert.is(
    lines[0],
    "setBackend('wasm'): WebAssembly SIMD is not supported here (a 128-bit SIMD module fails validation)",
  )
  assert.match(lines[1], /^(cpu|parallel) WebAssembly SIMD is not supported here/)
})

test('TENNY_BACKEND=bogus: the example still prints its --help', () => {
  const run = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'examples/lora-finetune.ts'), '--help'], {
    cwd: root,
    encoding: 'utf8',
    env: envWith({ TENNY_BACKEND: 'bogus' }),
  })
  assert.is(run.status, 0, run.stderr)
  assert.match(run.stdout, /--help/)
  assert.is(run.stderr.trim(), '')
})

test('Node entry: backendInfo() names worker_threads as ready once parallel starts, and a process using them exits', () => {
  const run = node(
    [
      "const t = await import('./src/node.ts')",
      "const info = t.setBackend('parallel')",
      'console.log(JSON.stringify(info.parallel))',
    ].join('\n'),
  )
  assert.is(run.status, 0, run.stderr)
  const parallel = JSON.parse(run.stdout.trim())
  if (parallel.failure) return console.log(`  (parallel unavailable here: ${parallel.failure})`)
  assert.is(parallel.workersReady, parallel.threads - 1)
})

test('a worker that dies: products stay right on this thread, and backendInfo() says 1 thread and why', () => {
  for (const name of ['wasm', 'parallel']) {
    const run = node(
      [
        "const t = await import('./src/node.ts')",
        "const { cpu } = await import('./src/kernels/index.ts')",
        "const { sharedPool } = await import('./src/backends/threads/pool.ts')",
        `const before = t.setBackend('${name}').threads`,
        'const pool = sharedPool()',
        'let died = ""',
        'try { pool.join(pool.post(99)) } catch (err) { died = err.message } // job kind 99: the worker throws',
        'const a = t.randn([300, 200]), b = t.randn([200, 100])',
        'const got = t.matmul(a, b).data, want = cpu.matmul(a.data, b.data, 300, 200, 100)',
        'let worst = 0',
        'for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]))',
        'const info = t.backendInfo()',
        'const { threads, reason, matmul } = info',
        'console.log(JSON.stringify({ before, died, worst, threads, pool: info.parallel.threads, reason, matmul }))',
      ].join('\n'),
    )
    assert.is(run.status, 0, run.stderr)
    const out = JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}')
    if (out.before < 2) return console.log('  (one core here: no worker to lose)')
    assert.match(out.died, /worker 0: .*unknown job kind 99/)
    assert.ok(out.worst < 1e-3, `${name}: a product after the worker died is off by ${out.worst}`)
    assert.is(out.threads, 1, `${name}: threads after the worker died`)
    assert.is(out.pool, 1, `${name}: backendInfo().parallel.threads after the worker died`)
    assert.match(out.reason, /; the worker threads failed since, products run on this thread: worker 0: /)
    assert.match(out.matmul, /1 thread/)
  }
})

test.run()
