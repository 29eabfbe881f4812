// What the adapters learned, as a table: per layer rank(ΔW) ≤ r, ‖ΔW‖/‖W‖, and the singular values of ΔW
// drawn as bars (nn.loraReport's numbers). LoRA's paper (section 7) reads adapters the same way.
import type { LayerReport } from './messages'

/** Fill the table's body with one row per adapted layer. */
export function showReport(table: HTMLElement, report: LayerReport[]): void {
  const body = table.querySelector('tbody')
  if (!body) return
  const largest = Math.max(1e-12, ...report.flatMap((r) => r.singularValues))
  body.innerHTML = report
    .map((r) => {
      const height = (s: number) => Math.max(1, (40 * s) / largest).toFixed(1) // px, the largest 40
      const bar = (s: number) =>
        `<span class="bar" title="σ = ${s.toPrecision(3)}" style="height:${height(s)}px"></span>`
      const cells = [r.path, `${r.deltaRank} ≤ ${r.rank}`, r.relativeNorm.toPrecision(3)]
      const bars = `<td class="bars">${r.singularValues.map(bar).join('')}</td>`
      return `<tr>${cells.map((c) => `<td>${c}</td>`).join('')}${bars}</tr>`
    })
    .join('')
}
