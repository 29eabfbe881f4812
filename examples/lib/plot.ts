// Loss curves, twice: in the terminal with asciichart, and as a small standalone SVG file the run saves beside its
// adapters. Each curve has its own line style (not only a colour), so both read in black and white.
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

/** An SVG element: `<name a="1" b="2"/>`, or with text inside, `<name …>text</name>`. */
function el(name: string, attributes: Record<string, string | number>, text?: string): string {
  const attrs = Object.entries(attributes)
    .map(([key, value]) => ` ${key}="${typeof value === 'number' ? value.toFixed(1).replace(/\.0$/, '') : value}"`)
    .join('')
  return text === undefined ? `<${name}${attrs}/>` : `<${name}${attrs}>${escape(text)}</${name}>`
}

/** The curves as a standalone SVG line chart: loss against step, round ticks, a legend, and `mark` as a dashed line. */
export function svgChart(curves: Curve[], title: string, mark?: { step: number; label: string }): string {
  const [W, H, left, right, top, bottom] = [640, 360, 56, 16, 36, 44]
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
  const decimals =
    Math.max(0, -Math.floor(Math.log10(dy) + 1e-9)) + (dy / 10 ** Math.floor(Math.log10(dy)) === 2.5 ? 1 : 0)
  const [plotBottom, plotRight, middle] = [H - bottom, W - right, (top + H - bottom) / 2]
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}"`
  const parts = [
    `${svg} font-family="sans-serif" font-size="12">`,
    el('rect', { width: W, height: H, fill: 'white' }),
    el('text', { x: W / 2, y: 20, 'text-anchor': 'middle', 'font-size': 14 }, title),
  ]
  for (let i = 0; yMin + i * dy <= yMax + dy * 1e-9; i++) {
    // horizontal grid lines with loss labels
    const v = yMin + i * dy
    parts.push(
      el('line', { x1: left, x2: plotRight, y1: y(v), y2: y(v), stroke: '#ddd' }),
      el('text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end' }, v.toFixed(decimals)),
    )
  }
  for (let s = 0; s <= maxStep; s += dx)
    parts.push(el('text', { x: x(s), y: plotBottom + 18, 'text-anchor': 'middle' }, String(s)))
  parts.push(
    el('line', { x1: left, x2: left, y1: top, y2: plotBottom, stroke: 'black' }),
    el('line', { x1: left, x2: plotRight, y1: plotBottom, y2: plotBottom, stroke: 'black' }),
    el('text', { x: (left + plotRight) / 2, y: H - 8, 'text-anchor': 'middle' }, 'step'),
    el(
      'text',
      { x: 14, y: middle, 'text-anchor': 'middle', transform: `rotate(-90 14 ${middle})` },
      'loss (nats/char)',
    ),
  )
  if (mark) {
    const at = { x1: x(mark.step), x2: x(mark.step), y1: top, y2: plotBottom }
    parts.push(
      el('line', { ...at, stroke: '#888', 'stroke-dasharray': '2 3' }),
      el('text', { x: x(mark.step) + 4, y: top + 12, fill: '#555' }, mark.label),
    )
  }
  const styles: Record<string, string>[] = [{ stroke: '#2a9d3a' }, { stroke: '#2458c8', 'stroke-dasharray': '6 3' }]
  for (const [i, c] of curves.entries()) {
    const style = styles[i % styles.length] // solid, then dashed
    const points = c.points.map(([s, v]) => `${x(s).toFixed(1)},${y(v).toFixed(1)}`).join(' ')
    const legendY = top + 8 + i * 16
    parts.push(
      el('polyline', { fill: 'none', ...style, 'stroke-width': 1.5, points }),
      el('line', { x1: plotRight - 150, x2: plotRight - 126, y1: legendY, y2: legendY, ...style, 'stroke-width': 2 }),
      el('text', { x: plotRight - 120, y: legendY + 4 }, c.name),
    )
  }
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}
