// What the fine-tune prints after training: what the adapters learned per layer, the loss table (base, last step,
// kept step) and the loss curves.
import { nn } from '../../src/node'
import { terminalChart, type Curve } from './plot'
import type { Losses } from './data'

/** Where a training run ended, the step whose weights it kept, and the losses there. */
export type Ending = { steps: number; keptStep: number; final: Losses; full: boolean; unit: Unit }
/** What the losses are per: the tiny model's characters or a Hugging Face model's tokens. */
export type Unit = 'character' | 'token'

/** A loss for a column: 3 decimals, or in exponent form once a diverging run pushed it past 1e5 (fits either way). */
export const loss3 = (x: number) => (Math.abs(x) < 1e5 ? x.toFixed(3) : x.toExponential(2))

/** What ΔW = scale·B·A turned out to be, per layer (LoRA paper, section 7; nn/files/lora-report.ts). */
export function printLoRAReport(model: nn.Module): void {
  const title = '\nWhat the adapters learned, per layer:'
  console.log(`${title} rank of ΔW (at most r), ‖ΔW‖/‖W‖, largest singular values`)
  const reports = nn.loraReport(model, { log: () => {} })
  const width = Math.max(22, ...reports.map((r) => r.path.length)) // Hugging Face paths run longer than the tiny GPT's
  for (const r of reports) {
    const sigma = r.singularValues
      .slice(0, 4)
      .map((s) => s.toPrecision(3).padStart(5))
      .join(' ')
    const rank = `${r.deltaRank} ≤ ${r.rank}`.padEnd(9)
    console.log(`  ${r.path.padEnd(width)} ${rank} ${r.relativeNorm.toPrecision(3).padStart(6)}   ${sigma} …`)
  }
}

/** Train, valid and test loss of the base and of the adapted model (the kept step), and where training ended. */
export function printSummary(before: Losses, after: Losses, run: Ending | null, unit = run?.unit ?? 'character'): void {
  const row = (name: string, a: number, b: number, c?: number) =>
    console.log(
      name.padEnd(18) +
        loss3(a).padStart(9) +
        (c === undefined ? '' : loss3(c).padStart(12)) +
        loss3(b).padStart(12) +
        `${(((b - a) / a) * 100).toFixed(0)}%`.padStart(9),
    )
  const end = run ? `end: ${run.steps}`.padStart(12) : ''
  const kept = run ? `kept: ${run.keptStep}` : 'adapted'
  const title = unit === 'token' ? '\nLoss per token (nats):\n' : '\n' // the tiny model's table is per character
  console.log(`${title}${''.padEnd(18)}${'base'.padStart(9)}${end}${kept.padStart(12)}${'change'.padStart(9)}`)
  row('train loss', before.train, after.train, run?.final.train)
  row('valid loss', before.valid, after.valid, run?.final.valid)
  row('test loss', before.test, after.test, run?.final.test)
  row('test perplexity', Math.exp(before.test), Math.exp(after.test), run ? Math.exp(run.final.test) : undefined)
  if (run) {
    const what = run.full ? 'weights' : 'adapters'
    console.log(
      `(steps: training ended at ${run.steps}, the ${what} kept are step ${run.keptStep}'s; change: kept vs base)`,
    )
  }
}

/** The train and validation curves in the terminal, with the kept step marked. */
export function printCurves(curves: Curve[], keptStep: number, unit: Unit = 'character'): void {
  const mark = { step: keptStep, label: `kept (step ${keptStep})` }
  console.log(`\nLoss per ${unit} (nats) by step:\n${terminalChart(curves, { mark })}`)
}
