// `npm run bench`: Tenny against TensorFlow.js and jax-js, side by side in one process, same shapes, same data.
//   npm run bench                  full run; writes bench/results.md, bench/results.json, bench/chart.svg
//   npm run bench -- --quick       smoke test: the same backends and peers as the full run on small sizes with
//                                  few samples; prints a compact table, writes nothing (add --write to save)
//   npm run bench -- --profile     share of a tiny-GPT training step per kernel (bench/profile.ts), then stop
//   options: --only=matmul,mlp,gpt,memory,hf  --sizes=64,256  --backends=cpu,parallel,wasm-1t,wasm-2t  --tfjs=cpu,wasm
//            --jaxjs=off  --merge (with --only: re-measure those sections, keep the other rows of bench/results.json)
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { tfInfo, useTf, type TfBackend } from './tfjs-gpt'
import { loadTennyBackends } from './tenny-backends'
import { matmulRows } from './suite-matmul'
import { mlpRows } from './suite-mlp'
import { gptRows } from './suite-gpt'
import { memoryRows } from './suite-memory'
import { hfRows } from './suite-hf'
import { markdown, json, svg, compact, type Meta } from './report'
import { JAXJS_VERSION } from './suite-jaxjs'
import type { Row } from './timing'

function option(name: string): string[] | undefined {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`))
  return arg
    ? arg
        .slice(name.length + 3)
        .split(',')
        .filter(Boolean)
    : undefined
}

const SECTIONS = ['matmul', 'mlp', 'gpt', 'memory', 'hf']

/** The report's notes: how each engine runs and is checked, and what this run left out. */
function notesOf(wasm: ReturnType<typeof tfInfo>, tennyNotes: string[], merged: string[], jaxjs: boolean): string[] {
  return [
    "Same process, same shapes, same input data for every column; Tenny's matmul backends are switched " +
      'with setBackend() (src/backends/).',
    `tfjs wasm runs its SIMD build (SIMD ${wasm.simd ? 'on' : 'off'}) single-threaded: its threads are ` +
      `off in Node by design (threads ${wasm.threads ? 'on' : 'off'}), so no tfjs column uses the second ` +
      `core.`,
    "`@tensorflow/tfjs-node` (TensorFlow's native C library) is not measured: it cannot be installed " +
      'here, since its install step downloads a prebuilt library.',
    "The tfjs GPT (bench/tfjs-gpt.ts) is written for tfjs's fastest paths: weights stored (in, out) so " +
      "every forward product is a plain A·B (XNNPACK on wasm), tf.matMul + tf.add (tf.fused.matMul's " +
      'gradient also computes dW for frozen weights: 2.6× slower LoRA steps on wasm), and a one-hot matmul ' +
      "embedding (tfjs-wasm has no UnsortedSegmentSum kernel for tf.gather's gradient). Its backward " +
      "products (A·Bᵀ, Aᵀ·B) take tfjs-wasm's scalar path, as any tfjs model's do.",
    "Parity before speed: the tfjs GPT is built from Tenny's exported weights and must reproduce Tenny's " +
      'first loss to 1e-4 on the same batch, or its cell is refused; the MLP likewise. Matmul results are ' +
      "checked against Tenny's CPU kernel.",
    'Peak memory: each engine and configuration trains in a Node process of its own ' +
      '(bench/memory-child.ts) that imports only that engine, and reads its peak RSS from ' +
      "/proc/self/status (VmHWM; ru_maxrss would carry the parent's RSS across fork + exec); every child " +
      "runs under the tsx TypeScript loader, which both engines' figures include alike.",
    'Timers: calls under 50 ms go through benchmark.js (mean of calibrated samples); slower calls and ' +
      'training steps through a plain median-of-N timer (N in results.json).',
    ...tennyNotes,
    ...(merged.length
      ? [
          `--merge: only the ${merged.join(', ')} rows were measured in this run; the others are kept from ` +
            `bench/results.json.`,
        ]
      : []),
    ...(jaxjs
      ? [
          'jax-js (@jax-js/jax, pinned) runs its WebAssembly backend on one thread in Node (its worker pool ' +
            'needs a global Web `Worker`); its GPT (bench/jaxjs-gpt.ts) embeds tokens by a one-hot matmul, since ' +
            "its `jit` cannot differentiate np.take, and is built from Tenny's weights and parity-checked like " +
            "the tfjs GPT. Its first jit step (tracing and compiling) is reported in the row's notes, not in the " +
            'median.',
        ]
      : []),
  ]
}

async function main(): Promise<void> {
  if (process.argv.includes('--profile')) {
    await import('./profile')
    return
  }
  const quick = process.argv.includes('--quick')
  const jaxjs = option('jaxjs')?.[0] !== 'off'
  const write = !quick || process.argv.includes('--write')
  const only = option('only') ?? SECTIONS
  const unknown = only.filter((s) => !SECTIONS.includes(s))
  if (unknown.length)
    throw new Error(`bench: unknown section(s) ${unknown.join(', ')}; expected some of ${SECTIONS.join(', ')}`)
  const sizes = (option('sizes') ?? (quick ? ['64', '128'] : ['64', '128', '256', '512', '1024'])).map(Number)
  const tfBackends = (option('tfjs') ?? ['cpu', 'wasm']) as TfBackend[]
  const started = performance.now()
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ')
  const tenny = await loadTennyBackends(option('backends'))
  await useTf('wasm')
  const wasm = tfInfo()
  const log = (what: string) => console.error(`[bench ${((performance.now() - started) / 1000).toFixed(0)} s] ${what}`)

  const suites: Record<string, () => Promise<Row[]>> = {
    matmul: () => matmulRows({ quick, sizes, tenny, tfBackends, jaxjs }),
    mlp: () => mlpRows({ quick, tenny, tfBackends }),
    gpt: () => gptRows({ quick, tenny, tfBackends, jaxjs }),
    // the memory rows also measure `auto`, what a user gets by default (its probe included), unless --backends
    // narrows them
    memory: async () =>
      memoryRows({
        quick,
        tennyBackends: option('backends') ? tenny.names : [...tenny.names, 'auto'],
        tfBackends,
        jaxjs,
      }),
    // Hugging Face architectures at real size, random weights (bench/suite-hf.ts): own processes, ~10 minutes
    // with PyTorch and jax-js beside them (--jaxjs=off leaves jax-js's real-size LoRA step out)
    hf: async () => hfRows({ quick, peers: jaxjs }),
  }
  const here = (f: string) => fileURLToPath(new URL(f, import.meta.url))
  const kept: Row[] =
    process.argv.includes('--merge') && existsSync(here('./results.json'))
      ? (JSON.parse(readFileSync(here('./results.json'), 'utf8')) as { rows: Row[] }).rows.filter(
          (r) => r.suite && !only.includes(r.suite),
        )
      : []
  const rows: Row[] = []
  for (const suite of SECTIONS) {
    if (only.includes(suite)) {
      for (const row of await suites[suite]()) rows.push({ ...row, suite })
      log(`${suite} done`)
    } else {
      rows.push(...kept.filter((r) => r.suite === suite))
    }
  }

  const meta: Meta = {
    date: new Date().toISOString().slice(0, 10),
    cpu: cpus()[0]?.model ?? 'unknown CPU',
    cores: cpus().length,
    node: process.version,
    tfjs: wasm.version,
    jaxjs: jaxjs ? JAXJS_VERSION : undefined,
    mode: quick ? '--quick (few samples: a smoke test, not a measurement)' : 'full run',
    load,
    tennyBackends: tenny.names.map((n) => `${n} = ${tenny.details[n]}`).join('; '),
    notes: notesOf(wasm, tenny.notes, kept.length ? only : [], jaxjs),
  }
  report(rows, meta, { quick, write, here, log })
  log('done')
}

/** Print the table (--quick: the compact one) and, for a full run or with --write, write the three files. */
function report(
  rows: Row[],
  meta: Meta,
  {
    quick,
    write,
    here,
    log,
  }: { quick: boolean; write: boolean; here: (f: string) => string; log: (what: string) => void },
): void {
  const md = markdown(rows, meta)
  if (quick)
    console.log(
      `--quick: a smoke test (small sizes, few samples), not a measurement; the full run writes the ` +
        `tables.\n\n${compact(rows)}`,
    )
  else console.log(md)
  if (!write) return
  writeFileSync(
    here('./results.md'),
    `# Tenny vs TensorFlow.js and jax-js\n\nGenerated by \`npm run bench\`.\n\n![chart](chart.svg)\n\n${md}`,
  )
  writeFileSync(here('./results.json'), json(rows, meta))
  writeFileSync(here('./chart.svg'), svg(rows, meta))
  log('wrote bench/results.md, bench/results.json, bench/chart.svg')
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err))
    process.exit(1)
  },
)
