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
      const bars = r.singularValues
        .map(
          (s) =>
            `<span class="bar" title="σ = ${s.toPrecision(3)}" style="height:${Math.max(1, (40 * s) / largest).toFixed(1)}px"></span>`,
        )
        .join('')
      return `<tr><td>${r.path}</td><td>${r.deltaRank} ≤ ${r.rank}</td><td>${r.relativeNorm.toPrecision(3)}</td><td class="bars">${bars}</td></tr>`
    })
    .join('')
}
