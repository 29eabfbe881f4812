// The package as a user gets it: `npm pack`, the tarball installed into a new project outside the repository,
// type-checked there under a consumer's strictest settings, compiled, and run with plain `node` (no tsx).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync, spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'

const repo = process.cwd()
const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc')
const work = mkdtempSync(join(tmpdir(), 'tenny-package-'))
const consumer = join(work, 'consumer')

/** npm with the repository's cache and no network round trips it can avoid; output as text, errors thrown. */
function npm(args: string[], cwd: string): string {
  return execFileSync('npm', [...args, '--prefer-offline', '--no-audit', '--no-fund'], {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

type Packed = { filename: string; files: { path: string }[] }
let packed: Packed | undefined

/** `npm pack` once (its prepack builds dist/), then install the tarball into a fresh project. */
function install(): Packed {
  if (packed) return packed
  const [info] = JSON.parse(npm(['pack', '--json', '--pack-destination', work], repo)) as Packed[]
  mkdirSync(consumer)
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  npm(['install', join(work, info.filename)], consumer)
  packed = info
  return info
}

/** tsc on `files` in the consumer with the strictest common settings; `options` adds or overrides. Returns its errors. */
function typecheck(files: string[], options: Record<string, unknown>): string {
  const strict = {
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    skipLibCheck: false,
    target: 'ES2022',
    noEmit: true,
  }
  const config = join(consumer, `tsconfig.${files[0]}.json`)
  writeFileSync(config, JSON.stringify({ compilerOptions: { ...strict, ...options }, files }))
  const run = spawnSync(process.execPath, [tsc, '-p', config], { cwd: consumer, encoding: 'utf8' })
  return run.stdout + run.stderr
}

test('package: the tarball holds dist (ES modules, .d.ts, declaration maps), the .ts sources the maps point to, and no tests, bench or examples', () => {
  const { files } = install()
  const paths = new Set(files.map((f) => f.path))
  for (const entry of [
    'dist/src/index.js',
    'dist/src/index.d.ts',
    'dist/src/index.d.ts.map',
    'dist/src/node.js',
    'dist/src/node.d.ts',
    'dist/nn/gpt.js',
    'dist/ops/matmul.d.ts',
  ]) {
    assert.ok(paths.has(entry), `${entry} is in the tarball`)
  }
  const outside = [...paths].filter(
    (p) => !/^(dist|src|ops|nn)\//.test(p) && !['package.json', 'README.md', 'LICENSE'].includes(p),
  )
  assert.equal(outside, [], 'nothing but the library, its sources and the three top-level files')
  assert.ok(![...paths].some((p) => p.endsWith('.tsbuildinfo')), 'no build state')
  // go to definition lands in readable source: each declaration map names a .ts file that ships beside it
  const maps = [...paths].filter((p) => p.endsWith('.d.ts.map'))
  assert.ok(maps.length > 30, `${maps.length} declaration maps`)
  for (const map of maps) {
    const { sources } = JSON.parse(readFileSync(join(consumer, 'node_modules', 'tenny', map), 'utf8')) as {
      sources: string[]
    }
    for (const source of sources) {
      const target = join(dirname(map), source).replaceAll('\\', '/')
      assert.ok(target.endsWith('.ts') && paths.has(target), `${map} points to ${target}, which ships`)
    }
  }
  const manifest = JSON.parse(readFileSync(join(consumer, 'node_modules', 'tenny', 'package.json'), 'utf8')) as Record<
    string,
    unknown
  >
  assert.ok(!('tsx' in (manifest.dependencies as object)), 'tsx is not a dependency')
})

test('package: a strict NodeNext project type-checks against the published .d.ts, then runs compiled with plain node: autograd, a LoRA step, adapters saved and loaded', () => {
  install()
  copyFileSync(join(repo, 'test', 'package', 'consumer.ts'), join(consumer, 'consumer.ts'))
  const errors = typecheck(['consumer.ts'], {
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    types: ['node'],
    typeRoots: [join(repo, 'node_modules', '@types')],
    noEmit: false,
    outDir: 'out',
  })
  assert.is(errors, '', 'tsc --strict NodeNext: no errors')
  const run = spawnSync(process.execPath, [join(consumer, 'out', 'consumer.js')], {
    cwd: consumer,
    encoding: 'utf8',
    timeout: 60_000,
  })
  assert.is(run.status, 0, `plain node ran the compiled consumer: ${run.stderr}`)
  type Report = {
    cores: number
    loss: number[]
    info: { backend: string; parallel: { threads: number; workersReady: number; blocksByWorkers: number } }
  }
  const report = JSON.parse(run.stdout.trim().split('\n').pop() ?? '') as Report
  assert.ok(report.loss[1] < report.loss[0], `the LoRA step lowered the loss: ${report.loss.join(' → ')}`)
  assert.is(report.info.backend, 'parallel')
  assert.is(report.info.parallel.threads, report.cores, 'one thread per core')
  assert.is(report.info.parallel.workersReady, report.cores - 1, 'every worker ready')
  assert.ok(report.info.parallel.blocksByWorkers > 0, 'the workers computed blocks')
})

test('package: installing the tarball brings Tenny, fflate, seedrandom and the Hugging Face tokenizer and jinja only: no gpu.js, webgpu or native gl', () => {
  install()
  const installed = readdirSync(join(consumer, 'node_modules'))
    .filter((name) => !name.startsWith('.'))
    .sort()
  assert.equal(installed, ['@huggingface', 'fflate', 'seedrandom', 'tenny'])
  assert.equal(readdirSync(join(consumer, 'node_modules', '@huggingface')).sort(), ['jinja', 'tokenizers'])
  const manifest = JSON.parse(readFileSync(join(consumer, 'node_modules', 'tenny', 'package.json'), 'utf8')) as {
    peerDependenciesMeta?: Record<string, { optional?: boolean }>
  }
  assert.ok(manifest.peerDependenciesMeta?.['gpu.js']?.optional, 'gpu.js is an optional peer dependency')
})

test('package: a browser project (bundler resolution, DOM, no @types/node) type-checks against the universal entry', () => {
  install()
  const code = [
    "import { tensor, matmul, sum, nn, parseSafetensors, serializeSafetensors, decodeNpz, backendInfo, type BackendInfo } from 'tenny'",
    'const w = tensor([[1, 2], [3, 4]], { requiresGrad: true })',
    'sum(matmul(w, w)).backward()',
    "const bytes: Uint8Array = serializeSafetensors({ w }, { note: 'browser' })",
    "const back = parseSafetensors(bytes, 'w.safetensors', { maxBytes: 1 << 20 }).tensors['w']",
    "const arrays: Map<string, { shape: number[] }> = decodeNpz(new Uint8Array(0), 'none.npz')",
    'const info: BackendInfo = backendInfo()',
    'export const used = [back?.shape, arrays.size, info.backend, new nn.Linear(2, 2)]',
  ].join('\n')
  writeFileSync(join(consumer, 'browser.ts'), code)
  const errors = typecheck(['browser.ts'], {
    module: 'ESNext',
    moduleResolution: 'Bundler',
    lib: ['ES2022', 'DOM'],
    types: [],
  })
  assert.is(errors, '', 'tsc --strict, bundler resolution, no Node types: no errors')
})

test('package-lock.json is what npm install computes from package.json: `npm ci` then `npm install` changes nothing', () => {
  const copy = join(work, 'lock')
  mkdirSync(copy)
  for (const file of ['package.json', 'package-lock.json']) copyFileSync(join(repo, file), join(copy, file))
  npm(['install', '--package-lock-only', '--ignore-scripts'], copy)
  assert.ok(
    readFileSync(join(copy, 'package-lock.json')).equals(readFileSync(join(repo, 'package-lock.json'))),
    'npm install rewrote package-lock.json',
  )
})

test("package: require('tenny') works on this Node (require(esm), Node ≥ 20.19) with the node entry", () => {
  install()
  const script =
    "const { tensor, sum, saveSafetensors } = require('tenny'); console.log(`${sum(tensor([1, 2, 3])).item()} ${typeof saveSafetensors}`)"
  writeFileSync(join(consumer, 'cjs.cjs'), script)
  const run = spawnSync(process.execPath, [join(consumer, 'cjs.cjs')], { cwd: consumer, encoding: 'utf8' })
  assert.is(run.status, 0, run.stderr)
  assert.is(run.stdout.trim(), '6 function')
})

test.after(() => rmSync(work, { recursive: true, force: true }))

test.run()
