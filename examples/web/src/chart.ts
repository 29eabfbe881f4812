// The live loss chart: train and validation loss against step, in SVG. Its axes are set when training starts (steps
// 0 to the run's iterations, losses 0 to the first one), so a new point is one more vertex on its curve's polyline;
// the chart is drawn anew only when a loss leaves the range (a diverging run) and when training ends.

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

/** A curve: [step, loss] points in step order. */
type Curve = { name: string; points: [number, number][]; line?: SVGPolylineElement }

export class LossChart {
  private curves: Curve[]
  private svg: SVGSVGElement | null = null
  private lastStep = 1
  private yMax = 1

  constructor(
    private readonly box: HTMLElement,
    names: string[],
  ) {
    this.curves = names.map((name) => ({ name, points: [] }))
  }

  /** Empty curves over steps 0 … `lastStep`. */
  start(lastStep: number): void {
    for (const c of this.curves) c.points = []
    this.lastStep = Math.max(1, lastStep)
    this.yMax = 0
    this.box.replaceChildren()
    this.svg = null
  }

  /** One more point on curve `i`: a vertex appended, or the chart redrawn if the loss is off its scale. */
  add(i: number, step: number, loss: number): void {
    const curve = this.curves[i]
    curve.points.push([step, loss])
    if (!this.svg || loss > this.yMax || !Number.isFinite(loss)) return this.draw()
    const point = this.svg.createSVGPoint()
    ;[point.x, point.y] = [this.x(step), this.y(loss)]
    curve.line!.points.appendItem(point)
  }

  /** Redraw with the x axis ending at `lastStep` (a stopped run) and a mark at the kept step. */
  finish(lastStep: number, kept: { step: number; label: string }): void {
    this.lastStep = Math.max(1, lastStep)
    this.draw()
    if (!this.svg) return
    const x = this.x(kept.step)
    this.svg.insertAdjacentHTML(
      'beforeend',
      `<line x1="${x}" x2="${x}" y1="${TOP}" y2="${H - BOTTOM}" stroke="#999" stroke-dasharray="2 3"/>` +
        `<text x="${x + 4}" y="${H - BOTTOM - 6}" fill="#555">${kept.label}</text>`,
    )
  }

  private x(step: number): number {
    return LEFT + ((W - LEFT - RIGHT) * step) / this.lastStep
  }
  private y(loss: number): number {
    return TOP + ((H - TOP - BOTTOM) * (this.yMax - loss)) / this.yMax
  }

  /** The whole chart from the points: axes, grid lines with their loss, the curves and their legend. */
  private draw(): void {
    const losses = this.curves.flatMap((c) => c.points.map(([, v]) => v)).filter(Number.isFinite)
    if (losses.length === 0) return
    this.yMax = Math.max(...losses) * 1.05
    const font = 'font-size="11" font-family="sans-serif"'
    const parts = [`<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="loss by step" ${font}>`]
    for (let i = 0; i <= 4; i++) {
      const v = (this.yMax * i) / 4 // five horizontal grid lines with their loss
      parts.push(
        `<line x1="${LEFT}" x2="${W - RIGHT}" y1="${this.y(v)}" y2="${this.y(v)}" stroke="#e4e4e4"/>`,
        `<text x="${LEFT - 4}" y="${this.y(v) + 4}" text-anchor="end">${v.toFixed(2)}</text>`,
      )
    }
    parts.push(
      `<text x="${LEFT}" y="${H - 8}">step 0</text>`,
      `<text x="${W - RIGHT}" y="${H - 8}" text-anchor="end">${this.lastStep}</text>`,
    )
    for (const [i, c] of this.curves.entries()) {
      const { stroke, dash } = STYLES[i % STYLES.length]
      const points = c.points
        .filter(([, v]) => Number.isFinite(v))
        .map(([s, v]) => `${this.x(s).toFixed(1)},${this.y(v).toFixed(1)}`)
      const style = `stroke="${stroke}" stroke-dasharray="${dash}"`,
        [legendX, legendY] = [W - RIGHT - 120, TOP + 8 + i * 16] // the legend's entry: a line, then the name
      parts.push(
        `<polyline fill="none" ${style} stroke-width="1.5" points="${points.join(' ')}"/>`,
        `<line x1="${legendX - 30}" x2="${legendX - 6}" y1="${legendY}" y2="${legendY}" ${style} stroke-width="2"/>`,
        `<text x="${legendX}" y="${legendY + 4}">${c.name}</text>`,
      )
    }
    this.box.innerHTML = parts.join('') + '</svg>'
    this.svg = this.box.querySelector('svg')
    const lines = this.box.querySelectorAll('polyline')
    this.curves.forEach((c, i) => (c.line = lines[i]))
  }
}
