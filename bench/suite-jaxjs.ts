// jax-js's cells in the matmul and GPT rows: the same shapes and data as Tenny's, parity-checked first. Its
// training step runs once through `jit` (traced and compiled on the first call, which is reported apart) and
// once eagerly; generation is eager (every step has a new shape, so `jit` would compile each one).
import { numpy as np } from '@jax-js/jax'
import { JaxGPT } from './jaxjs-gpt'
import { medianOf, timeCall, type Cell, type Row } from './timing'
import { ADAMW, PARITY_TOL } from './config'
import type { GPTConfig, NamedWeights } from './config'

export const JAXJS_VERSION = '0.1.25' // pinned in package.json (devDependencies)

/** jax-js's column in a square matmul row: eager np.matmul, read back (jax-js runs lazily, so dataSync is what computes). */
export function jaxMatmulCell(
  a: Float32Array,
  b: Float32Array,
  n: number,
  transB: boolean,
  quick: boolean,
  check: (out: Float32Array) => void,
): Cell {
  const ta = np.array(a.slice()).reshape([n, n]),
    tb = np.array(b.slice()).reshape([n, n])
  const product = () => {
    const c = np.matmul(ta.ref, transB ? tb.ref.transpose([1, 0]) : tb.ref)
    return c.dataSync() as Float32Array // dataSync consumes c
  }
  check(product())
  const cell = timeCall(
    () => {
      product()
    },
    { quick },
  )
  ta.dispose()
  tb.dispose()
  return { ...cell, method: `${cell.method}, eager, read back` }
}

/** The full training step's jax-js columns ('jax-js jit', 'jax-js eager'), refused unless the losses match Tenny's. */
export function jaxTrainingCells(
  row: Row,
  cfg: GPTConfig,
  weights: NamedWeights,
  idx: Int32Array,
  targets: Int32Array,
  B: number,
  tenny: { first: number; second: number },
  quick: boolean,
): void {
  for (const useJit of [true, false]) {
    const column = `jax-js ${useJit ? 'jit' : 'eager'}`
    const model = new JaxGPT(cfg, weights, ADAMW)
    const first = model.lossValue(idx, targets, B)
    if (!(Math.abs(first - tenny.first) <= PARITY_TOL)) {
      row.cells[column] = null
      row.notes.push(`${column} refused: its first loss ${first} differs from Tenny's ${tenny.first}`)
      model.dispose()
      continue
    }
    const t0 = performance.now()
    const losses = [model.step(idx, targets, B, { useJit }), 0]
    const firstStep = performance.now() - t0
    losses[1] = model.step(idx, targets, B, { useJit })
    const cell = quick
      ? { value: NaN, method: '', samples: 0 }
      : medianOf(
          () => {
            model.step(idx, targets, B, { useJit })
          },
          { warmup: 0, runs: useJit ? 5 : 3 },
        )
    if (quick) {
      // one more step, timed alone
      const t1 = performance.now()
      model.step(idx, targets, B, { useJit })
      Object.assign(cell, { value: performance.now() - t1, method: 'one step after two (--quick)', samples: 1 })
    } else {
      cell.method = `median of ${cell.samples} steps after 2 warm-up steps`
    }
    row.cells[column] = cell
    row.notes.push(
      `${column}: first loss within ${Math.abs(first - tenny.first).toExponential(1)} of Tenny's, after one AdamW step within ${Math.abs(losses[1] - tenny.second).toExponential(1)}; its first step took ${firstStep.toFixed(0)} ms${useJit ? ' (tracing and compiling)' : ''}`,
    )
    model.dispose()
  }
}

/** jax-js's generation cell (eager, KV cache by concatenation), its tokens checked against Tenny's. */
export function jaxGenerationCell(
  row: Row,
  cfg: GPTConfig,
  weights: NamedWeights,
  reference: Int32Array | null,
  quick: boolean,
): void {
  const n = cfg.blockSize - 1
  const model = new JaxGPT(cfg, weights, ADAMW)
  const tokens = model.generate(new Int32Array([0]), n)
  const same = reference !== null && tokens.join() === reference.join()
  row.notes.push(`jax-js eager: ${same ? 'the same greedy tokens as Tenny' : "greedy tokens differ from Tenny's"}`)
  const cell = medianOf(
    () => {
      model.generate(new Int32Array([0]), n)
    },
    { warmup: 0, runs: quick ? 1 : 3 },
  )
  row.cells['jax-js eager'] = {
    ...cell,
    value: n / (cell.value / 1000),
    method: `${n} tokens ÷ the median time of ${cell.samples} run(s), eager`,
  }
  model.dispose()
}
