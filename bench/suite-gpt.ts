// Rows (3)–(5): the tiny GPT's training step (all weights, then LoRA r=8 on qProj and vProj with the base
// frozen) and greedy generation, Tenny vs the same model in tfjs. Parity before speed: tfjs is built from
// Tenny's exported weights and must reproduce Tenny's first loss to 1e-4, or its row is refused.
import type { GPTConfig } from '../nn/gpt'
import { TfGPT, useTf, type TfBackend } from './tfjs-gpt'
import { TINY_GPT, BATCH, ADAMW, LORA, PARITY_TOL, SEED, batchData } from './config'
import { buildTennyGPT, exportWeights, tennyLoss, tennyTrainer, ids } from './tenny-gpt'
import { medianOf, type Cell, type Row } from './timing'
import type { TennyBackends } from './tenny-backends'
import { jaxTrainingCells, jaxGenerationCell } from './suite-jaxjs'

/** Time training steps; also return the losses of the first two steps for the cross-engine check. */
function timeSteps(step: () => number, quick: boolean, slow: boolean): { cell: Cell; losses: number[] } {
  const first = step() // warm-up
  const t0 = performance.now()
  const second = step()
  if (quick)
    return {
      cell: { value: performance.now() - t0, method: 'one step after one warm-up step (--quick)', samples: 1 },
      losses: [first, second],
    }
  const cell = medianOf(
    () => {
      step()
    },
    { warmup: 0, runs: slow ? 3 : 5 },
  )
  cell.method = `median of ${cell.samples} steps after 2 warm-up steps`
  return { cell, losses: [first, second] }
}

export type GptOptions = {
  quick: boolean
  tenny: TennyBackends
  tfBackends: TfBackend[]
  jaxjs: boolean
  cfg?: GPTConfig
  B?: number
}

export async function gptRows({
  quick,
  tenny,
  tfBackends,
  jaxjs,
  cfg = TINY_GPT,
  B = BATCH,
}: GptOptions): Promise<Row[]> {
  const T = cfg.blockSize
  const { idx, targets } = batchData(cfg, B)
  const section = `tiny GPT (vocab ${cfg.vocabSize}, context ${T}, C ${cfg.nEmbd}, ${cfg.nHead} heads, ${cfg.nLayer} layers, MLP 4x, batch ${B}, AdamW)`
  const rows: Row[] = []
  let jaxLater: (() => void) | undefined
  for (const lora of [false, true]) {
    const row: Row = {
      section,
      name: lora ? `training step, LoRA r=${LORA.rank} on qProj, vProj (base frozen)` : 'training step, all weights',
      unit: 'ms',
      cells: {},
      notes: [],
    }
    rows.push(row)
    const fresh = () => buildTennyGPT(cfg, SEED, { lora })
    const model0 = fresh()
    const weights = exportWeights(model0)
    const first = tennyLoss(model0, idx, targets, B)
    const trainable = model0.trainableParameters().reduce((s, p) => s + p.size, 0)
    row.notes.push(
      `trainable parameters: ${trainable.toLocaleString('en-US')} of ${model0.numParameters().toLocaleString('en-US')}`,
    )
    let tennySecond = NaN
    for (const backend of tenny.names) {
      await tenny.use(backend)
      const { cell, losses } = timeSteps(tennyTrainer(fresh(), idx, targets, B), quick, false)
      if (Math.abs(losses[0] - first) > PARITY_TOL) {
        row.notes.push(`Tenny ${backend} refused: first loss ${losses[0]} differs from the CPU's ${first}`)
        row.cells[`Tenny ${backend}`] = null
        continue
      }
      if (Number.isNaN(tennySecond)) tennySecond = losses[1] // the first backend that ran is the reference
      row.cells[`Tenny ${backend}`] = cell
    }
    await tenny.use('cpu')
    for (const backend of tfBackends) {
      const column = `tfjs ${backend}`
      if (quick && backend === 'cpu') {
        row.notes.push(`${column}: not run under --quick (seconds per step)`)
        row.cells[column] = null
        continue
      }
      await useTf(backend)
      const model = new TfGPT(cfg, weights, lora ? LORA : undefined)
      const loss0 = model.lossValue(idx, targets, B, T)
      if (!(Math.abs(loss0 - first) <= PARITY_TOL)) {
        row.notes.push(
          `${column} refused: its first loss ${loss0} differs from Tenny's ${first} by more than ${PARITY_TOL}`,
        )
        row.cells[column] = null
      } else {
        const { cell, losses } = timeSteps(() => model.step(idx, targets, B, T, ADAMW), quick, backend === 'cpu')
        row.cells[column] = cell
        row.notes.push(
          `${column}: first loss within ${Math.abs(loss0 - first).toExponential(1)} of Tenny's; after one AdamW step within ${Math.abs(losses[1] - tennySecond).toExponential(1)}`,
        )
      }
      model.dispose()
    }
    // jax-js trains last, after every Tenny and tfjs cell: its arrays and compiled kernels would otherwise weigh on
    // the garbage collector during the rows measured after it (the LoRA row measured slower than the full one)
    if (jaxjs && !lora)
      jaxLater = () => jaxTrainingCells(row, cfg, weights, idx, targets, B, { first, second: tennySecond }, quick)
  }
  rows.push(await generationRow({ quick, tenny, tfBackends, jaxjs, cfg }, section))
  jaxLater?.()
  return rows
}

/** Row (5): greedy generation from a 1-token prompt to a full context, batch 1, with each engine's KV cache. */
async function generationRow(
  { quick, tenny, tfBackends, jaxjs, cfg = TINY_GPT }: GptOptions,
  section: string,
): Promise<Row> {
  const n = cfg.blockSize - 1
  const row: Row = {
    section,
    name: `generation, greedy, ${n} new tokens, KV cache, batch 1`,
    unit: 'tok/s',
    cells: {},
    notes: [],
  }
  const model = buildTennyGPT(cfg, SEED)
  const weights = exportWeights(model)
  const prompt = new Int32Array([0])
  let reference: Int32Array | null = null
  const tokensPerSecond = (cell: Cell): Cell => ({
    ...cell,
    value: n / (cell.value / 1000),
    method: `${n} tokens ÷ the median time of ${cell.samples} run(s)`,
  })
  for (const backend of tenny.names) {
    await tenny.use(backend)
    const gen = () => Int32Array.from(model.generate(ids(prompt, 1, 1), n, { temperature: 0 }).data.subarray(1))
    const tokens = gen()
    reference ??= tokens
    if (tokens.join() !== reference.join()) row.notes.push(`Tenny ${backend}: greedy tokens differ from Tenny cpu's`)
    row.cells[`Tenny ${backend}`] = tokensPerSecond(
      medianOf(
        () => {
          gen()
        },
        { warmup: 0, runs: quick ? 1 : 5 },
      ),
    )
  }
  await tenny.use('cpu')
  for (const backend of tfBackends) {
    await useTf(backend)
    const tfModel = new TfGPT(cfg, weights)
    const tokens = tfModel.generate(prompt, n)
    const same = reference !== null && tokens.join() === reference.join()
    row.notes.push(`tfjs ${backend}: ${same ? 'the same greedy tokens as Tenny' : "greedy tokens differ from Tenny's"}`)
    row.cells[`tfjs ${backend}`] = tokensPerSecond(
      medianOf(
        () => {
          tfModel.generate(prompt, n)
        },
        { warmup: 0, runs: quick ? 1 : 5 },
      ),
    )
    tfModel.dispose()
  }
  if (jaxjs) jaxGenerationCell(row, cfg, weights, reference, quick)
  return row
}
