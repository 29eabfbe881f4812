// Loss curves, twice: in the terminal with asciichart, and as a small standalone SVG file written beside the
// adapters. Each curve has its own line style (not only a colour), so both read in black and white.
import { writeFileSync } from 'node:fs'
import * as asciichart from 'asciichart'

/** A curve: [step, loss] points in step order. */
export type Curve = { name: string; points: [number, number][] }

// asciichart's symbols: axis cross, axis tick, (unused), (unused), horizontal, then the four corners and vertical.
const SINGLE = ['┼', '┤', '╶', '╴', '─', '╰', '╭', '╮', '╯', '│']
const DOUBLE = ['┼', '┤', '╶', '╴', '═', '╚', '╔', '╗', '╝', '║']
const STYLES = [
  { symbols: SINGLE, legend: '──' },
  { symbols: DOUBLE, legend: '══' },
]

/** The curve at `width` evenly spaced steps in [0, last], straight lines between its points. */
function resample(points: [number, number][], last: number, width: number): number[] {
  const out: number[] = []
  let i = 0
  for (let c = 0; c < width; c++) {
    const step = (last * c) / (width - 1)
    while (i + 2 < points.length && points[i + 1][0] <= step) i++
    const [[s0, v0], [s1, v1]] = [points[i], points[Math.min(i + 1, points.length - 1)]]
    const t = s1 === s0 ? 0 : Math.min(1, Math.max(0, (step - s0) / (s1 - s0)))
    out.push(v0 + (v1 - v0) * t)
  }
  return out
}

/**
 * Up to two curves as one terminal chart, the first in single lines, the second in double lines, drawn one over
 * the other with asciichart on the same axes; `mark` puts a ^ under a step. About width + 10 columns wide.
 */
export function terminalChart(
  curves: Curve[],
  { width = 60, height = 10, mark }: { width?: number; height?: number; mark?: { step: number; label: string } } = {},
): string {
  if (curves.length > STYLES.length)
    throw new Error(`terminalChart: at most ${STYLES.length} curves, got ${curves.length}`)
  const last = Math.max(...curves.map((c) => c.points[c.points.length - 1][0]))
  const series = curves.map((c) => resample(c.points, last, width))
  const all = series.flat()
  // asciichart puts the whole label in one cell: with offset 2 a row reads label (7 characters), axis, curve
  const axes = {
    height,
    min: Math.min(...all),
    max: Math.max(...all),
    offset: 2,
    format: (x: number) => x.toFixed(2).padStart(6) + ' ',
  }
  const layers = series.map((s, i) => asciichart.plot(s, { ...axes, symbols: STYLES[i].symbols }).split('\n'))
  // later curves on top: a cell keeps the last curve that drew in it
  const rows = layers[0].map((_, r) =>
    Array.from(layers[0][r], (ch, c) =>
      layers.reduce((top, l) => (l[r][c] !== ' ' && l[r][c] !== undefined ? l[r][c] : top), ch),
    ).join(''),
  )
  const lines = [
    ...rows.map((r) => r.trimEnd()),
    `${' '.repeat(8)}step 0 … ${last}    ${curves.map((c, i) => `${STYLES[i].legend} ${c.name}`).join('   ')}`,
  ]
  if (mark)
    lines.splice(
      rows.length,
      0,
      `${' '.repeat(7 + Math.round(((width - 1) * mark.step) / Math.max(1, last)))}^ ${mark.label}`,
    )
  return lines.join('\n')
}

/** The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `raw`: a tick spacing people read at a glance. */
export function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(raw))
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw * (1 - 1e-9))!
}

/** Write the curves as an SVG line chart: loss against step, round ticks, a legend, and `mark` as a dashed line. */
export function writeSvg(file: string, curves: Curve[], title: string, mark?: { step: number; label: string }): void {
  const W = 640,
    H = 360,
    left = 56,
    right = 16,
    top = 36,
    bottom = 44
  const all = curves.flatMap((c) => c.points)
  const maxStep = Math.max(1, ...all.map((p) => p[0]))
  const lo = Math.min(...all.map((p) => p[1])),
    hi = Math.max(...all.map((p) => p[1]))
  const dy = niceStep(Math.max(hi - lo, 1e-6) / 5),
    dx = niceStep(maxStep / 4)
  const yMin = Math.floor(lo / dy) * dy,
    yMax = Math.max(yMin + dy, Math.ceil(hi / dy) * dy)
  const x = (s: number) => left + ((W - left - right) * s) / maxStep
  const y = (v: number) => top + ((H - top - bottom) * (yMax - v)) / (yMax - yMin)
  const f = (n: number) => n.toFixed(1)
  const decimals =
    Math.max(0, -Math.floor(Math.log10(dy) + 1e-9)) + (dy / 10 ** Math.floor(Math.log10(dy)) === 2.5 ? 1 : 0)
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${escape(title)}</text>`,
  ]
  for (let i = 0; yMin + i * dy <= yMax + dy * 1e-9; i++) {
    // horizontal grid lines with loss labels
    const v = yMin + i * dy
    parts.push(
      `<line x1="${left}" x2="${W - right}" y1="${f(y(v))}" y2="${f(y(v))}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${f(y(v) + 4)}" text-anchor="end">${v.toFixed(decimals)}</text>`,
    )
  }
  for (let s = 0; s <= maxStep; s += dx)
    parts.push(`<text x="${f(x(s))}" y="${H - bottom + 18}" text-anchor="middle">${s}</text>`)
  parts.push(
    `<line x1="${left}" x2="${left}" y1="${top}" y2="${H - bottom}" stroke="black"/>`,
    `<line x1="${left}" x2="${W - right}" y1="${H - bottom}" y2="${H - bottom}" stroke="black"/>`,
    `<text x="${(left + W - right) / 2}" y="${H - 8}" text-anchor="middle">step</text>`,
    `<text x="14" y="${(top + H - bottom) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(top + H - bottom) / 2})">loss (nats/char)</text>`,
  )
  if (mark)
    parts.push(
      `<line x1="${f(x(mark.step))}" x2="${f(x(mark.step))}" y1="${top}" y2="${H - bottom}" stroke="#888" stroke-dasharray="2 3"/>`,
      `<text x="${f(x(mark.step) + 4)}" y="${top + 12}" fill="#555">${escape(mark.label)}</text>`,
    )
  const styles = [
    { stroke: '#2a9d3a', dash: '' },
    { stroke: '#2458c8', dash: ' stroke-dasharray="6 3"' },
  ] // solid, dashed
  for (const [i, c] of curves.entries()) {
    const { stroke, dash } = styles[i % styles.length]
    parts.push(
      `<polyline fill="none" stroke="${stroke}" stroke-width="1.5"${dash} points="${c.points.map(([s, v]) => `${f(x(s))},${f(y(v))}`).join(' ')}"/>`,
      `<line x1="${W - right - 150}" x2="${W - right - 126}" y1="${top + 8 + i * 16}" y2="${top + 8 + i * 16}" stroke="${stroke}" stroke-width="2"${dash}/>`,
      `<text x="${W - right - 120}" y="${top + 12 + i * 16}">${escape(c.name)}</text>`,
    )
  }
  parts.push('</svg>')
  writeFileSync(file, parts.join('\n') + '\n')
}

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}
