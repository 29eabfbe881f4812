// The live loss chart: train and validation loss against step, as an SVG redrawn on every step (a few hundred
// points at most, so redrawing is simpler than patching and costs well under a millisecond).

/** A curve: [step, loss] points in step order. */
export type Curve = { name: string; points: [number, number][] }

const W = 640,
  H = 260,
  LEFT = 48,
  RIGHT = 12,
  TOP = 12,
  BOTTOM = 28
const STYLES = [
  { stroke: '#2a9d3a', dash: '' },
  { stroke: '#2458c8', dash: '6 3' },
] // solid train, dashed validation

/** Draw the curves into `box` (replacing what was there): axes from 0 to the last step and the losses' range. */
export function drawChart(box: HTMLElement, curves: Curve[]): void {
  const all = curves.flatMap((c) => c.points)
  if (all.length === 0) return
  const lastStep = Math.max(1, ...all.map(([s]) => s))
  const lo = Math.min(...all.map(([, v]) => v)),
    hi = Math.max(...all.map(([, v]) => v))
  const pad = Math.max(hi - lo, 1e-3) * 0.05
  const [yMin, yMax] = [lo - pad, hi + pad]
  const x = (step: number) => LEFT + ((W - LEFT - RIGHT) * step) / lastStep
  const y = (loss: number) => TOP + ((H - TOP - BOTTOM) * (yMax - loss)) / (yMax - yMin)
  const font = 'font-size="11" font-family="sans-serif"'
  const parts = [`<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="loss by step" ${font}>`]
  for (let i = 0; i <= 4; i++) {
    // five horizontal grid lines with their loss
    const v = yMin + ((yMax - yMin) * i) / 4
    parts.push(
      `<line x1="${LEFT}" x2="${W - RIGHT}" y1="${y(v)}" y2="${y(v)}" stroke="#e4e4e4"/>`,
      `<text x="${LEFT - 4}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(2)}</text>`,
    )
  }
  parts.push(
    `<text x="${LEFT}" y="${H - 8}">step 0</text>`,
    `<text x="${W - RIGHT}" y="${H - 8}" text-anchor="end">${lastStep}</text>`,
  )
  for (const [i, c] of curves.entries()) {
    const { stroke, dash } = STYLES[i % STYLES.length]
    const points = c.points.map(([s, v]) => `${x(s).toFixed(1)},${y(v).toFixed(1)}`).join(' ')
    const style = `stroke="${stroke}" stroke-dasharray="${dash}"`,
      [legendX, legendY] = [W - RIGHT - 120, TOP + 8 + i * 16] // the legend's entry: a line, then the name
    parts.push(
      `<polyline fill="none" ${style} stroke-width="1.5" points="${points}"/>`,
      `<line x1="${legendX - 30}" x2="${legendX - 6}" y1="${legendY}" y2="${legendY}" ${style} stroke-width="2"/>`,
      `<text x="${legendX}" y="${legendY + 4}">${c.name}</text>`,
    )
  }
  box.innerHTML = parts.join('') + '</svg>'
}
