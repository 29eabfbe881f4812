// Loss curves, twice: in the terminal with asciichart, and as a small standalone SVG file written beside the adapters.
import { writeFileSync } from 'node:fs'
import * as asciichart from 'asciichart'

/** A curve: [step, loss] points in step order. */
export type Curve = { name: string; color: string; points: [number, number][] }

/** The curve's value at `width` evenly spaced steps in [0, last], holding each value until the next point. */
function resample(points: [number, number][], last: number, width: number): number[] {
  const out: number[] = []
  let i = 0
  for (let c = 0; c < width; c++) {
    const step = (last * c) / (width - 1)
    while (i + 1 < points.length && points[i + 1][0] <= step) i++
    out.push(points[i][1])
  }
  return out
}

/** The curves as one terminal chart (train green, valid blue), `width` columns wide. */
export function terminalChart(curves: Curve[], { width = 60, height = 12 } = {}): string {
  const last = Math.max(...curves.map((c) => c.points[c.points.length - 1][0]))
  const colors: Record<string, string> = { green: asciichart.green, blue: asciichart.blue, yellow: asciichart.yellow }
  const useColor = process.stdout.isTTY
  const chart = asciichart.plot(curves.map((c) => resample(c.points, last, width)), {
    height, colors: useColor ? curves.map((c) => colors[c.color] ?? asciichart.reset) : undefined, format: (x) => x.toFixed(2).padStart(6),
  })
  const legend = curves.map((c) => `${useColor ? (colors[c.color] ?? '') : ''}── ${c.name}${useColor ? asciichart.reset : ''}`).join('   ')
  return `${chart}\n        step 0 … ${last}   ${legend}`
}

/** Write the curves as an SVG line chart: loss against step, with axes, ticks and a legend. */
export function writeSvg(file: string, curves: Curve[], title: string): void {
  const W = 640, H = 360, left = 56, right = 16, top = 36, bottom = 44
  const all = curves.flatMap((c) => c.points)
  const maxStep = Math.max(1, ...all.map((p) => p[0]))
  const lo = Math.min(...all.map((p) => p[1])), hi = Math.max(...all.map((p) => p[1]))
  const pad = (hi - lo) * 0.05 || 0.5
  const yMin = Math.max(0, lo - pad), yMax = hi + pad
  const x = (s: number) => left + ((W - left - right) * s) / maxStep
  const y = (v: number) => top + ((H - top - bottom) * (yMax - v)) / (yMax - yMin)
  const f = (n: number) => n.toFixed(1)
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`, `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${escape(title)}</text>`]
  for (let i = 0; i <= 4; i++) { // horizontal grid lines with loss labels, vertical ticks with step labels
    const v = yMin + ((yMax - yMin) * i) / 4, s = Math.round((maxStep * i) / 4)
    parts.push(`<line x1="${left}" x2="${W - right}" y1="${f(y(v))}" y2="${f(y(v))}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${f(y(v) + 4)}" text-anchor="end">${v.toFixed(2)}</text>`,
      `<text x="${f(x(s))}" y="${H - bottom + 18}" text-anchor="middle">${s}</text>`)
  }
  parts.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${H - bottom}" stroke="black"/>`,
    `<line x1="${left}" x2="${W - right}" y1="${H - bottom}" y2="${H - bottom}" stroke="black"/>`,
    `<text x="${(left + W - right) / 2}" y="${H - 8}" text-anchor="middle">step</text>`,
    `<text x="14" y="${(top + H - bottom) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(top + H - bottom) / 2})">loss (nats/char)</text>`)
  for (const [i, c] of curves.entries()) {
    const stroke = { green: '#2a9d3a', blue: '#2458c8', yellow: '#c89a00' }[c.color] ?? 'black'
    parts.push(`<polyline fill="none" stroke="${stroke}" stroke-width="1.5" points="${c.points.map(([s, v]) => `${f(x(s))},${f(y(v))}`).join(' ')}"/>`,
      `<line x1="${W - right - 150}" x2="${W - right - 126}" y1="${top + 8 + i * 16}" y2="${top + 8 + i * 16}" stroke="${stroke}" stroke-width="2"/>`,
      `<text x="${W - right - 120}" y="${top + 12 + i * 16}">${escape(c.name)}</text>`)
  }
  parts.push('</svg>')
  writeFileSync(file, parts.join('\n') + '\n')
}

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}
