// Turning rows into the three outputs: a Markdown table (terminal + bench/results.md, included by the README),
// bench/results.json (every number with its method), and bench/chart.svg (hand-written bars, log scale).
import type { Cell, Row } from './timing'
import { lowerIsBetter } from './timing'

export type Meta = {
  date: string
  cpu: string
  cores: number
  node: string
  tfjs: string
  jaxjs?: string
  mode: string
  load: string
  tennyBackends: string
  notes: string[]
}

export type Comparison = { tennyColumn: string; tfjsColumn: string; tennyOverTfjs: number; advantage: number }

/** Tenny's best column against one tfjs column; advantage > 1 means Tenny did better (faster or smaller). */
export function compare(row: Row, tfjsColumn: string): Comparison | null {
  const tfjs = row.cells[tfjsColumn]
  const tenny = Object.entries(row.cells).filter((e): e is [string, Cell] => e[0].startsWith('Tenny') && e[1] !== null)
  if (!tfjs || tenny.length === 0) return null
  const lower = lowerIsBetter(row)
  const [tennyColumn, best] = tenny.reduce((a, b) =>
    (lower ? b[1].value < a[1].value : b[1].value > a[1].value) ? b : a,
  )
  const ratio = best.value / tfjs.value
  return { tennyColumn, tfjsColumn, tennyOverTfjs: ratio, advantage: lower ? 1 / ratio : ratio }
}

function fmt(v: number): string {
  if (v >= 100) return v.toFixed(0)
  if (v >= 10) return v.toFixed(1)
  if (v >= 1) return v.toFixed(2)
  return v.toFixed(3)
}

function words(row: Row, c: Comparison, tennyColumns: number): string {
  const better = row.unit === 'MB' ? ['less memory', 'more memory'] : ['faster', 'slower']
  const how =
    Math.abs(c.advantage - 1) < 0.005
      ? 'the same'
      : c.advantage >= 1
        ? `${c.advantage.toFixed(2)}× ${better[0]}`
        : `${(1 / c.advantage).toFixed(2)}× ${better[1]}`
  const which = tennyColumns > 1 ? `, ${c.tennyColumn.replace('Tenny ', '')}` : ''
  return `${c.tennyOverTfjs.toFixed(2)} (${how}${which})`
}

/** Tenny's columns, and the peers' (tfjs, jax-js, then PyTorch) that Tenny's best is compared with. */
export function columnsOf(rows: Row[]): { tenny: string[]; tfjs: string[] } {
  const all = [...new Set(rows.flatMap((r) => Object.keys(r.cells)))]
  return {
    tenny: all.filter((c) => c.startsWith('Tenny')),
    tfjs: ['tfjs', 'jax-js', 'PyTorch'].flatMap((peer) => all.filter((c) => c.startsWith(peer))),
  }
}

export function markdown(rows: Row[], meta: Meta): string {
  const { tenny, tfjs } = columnsOf(rows)
  const head = ['workload', 'unit', ...tenny, ...tfjs, ...tfjs.map((c) => `Tenny/${c}`)]
  const lines = [
    `Measured ${meta.date} on ${meta.cpu} (${meta.cores} cores), Node ${meta.node}, TensorFlow.js ` +
      `${meta.tfjs}${meta.jaxjs ? `, jax-js ${meta.jaxjs}` : ''}; ${meta.mode}; load average ${meta.load}.`,
    `Tenny backends: ${meta.tennyBackends}.`,
    '',
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`,
  ]
  let section = ''
  for (const row of rows) {
    if (row.section !== section) {
      section = row.section
      lines.push(`| **${section}** |${' |'.repeat(head.length - 1)}`)
    }
    const cells = [...tenny, ...tfjs].map((c) => (row.cells[c] ? fmt(row.cells[c]!.value) : '—'))
    const ratios = tfjs.map((c) => {
      const cmp = compare(row, c)
      return cmp ? words(row, cmp, tenny.length) : '—'
    })
    lines.push(`| ${row.name} | ${row.unit} | ${[...cells, ...ratios].join(' | ')} |`)
  }
  lines.push(
    '',
    `Tenny/peer is Tenny's best column divided by the peer's (a tfjs or jax-js column), in the row's ` +
      `unit (ms and MB: lower is better; tok/s: higher is better). — = not measured (see the notes).`,
    '',
    '**Notes**',
    '',
  )
  for (const n of meta.notes) lines.push(`- ${n}`)
  for (const row of rows) if (row.notes.length) lines.push(`- *${row.name}*: ${row.notes.join('; ')}.`)
  return lines.join('\n') + '\n'
}

export function json(rows: Row[], meta: Meta): string {
  const { tfjs } = columnsOf(rows)
  return (
    JSON.stringify(
      {
        meta,
        rows: rows.map((r) => ({
          ...r,
          gflops: r.flops
            ? Object.fromEntries(
                Object.entries(r.cells).map(([k, c]) => [k, c ? +(r.flops! / (c.value * 1e6)).toFixed(2) : null]),
              )
            : undefined,
          comparisons: tfjs.map((c) => compare(r, c)).filter((c) => c !== null),
        })),
      },
      null,
      2,
    ) + '\n'
  )
}

/** A row's name, with the matmul mode added where two sections share row names. */
function label(row: Row): string {
  if (row.section.startsWith('matmul'))
    return `${row.name}${row.section.includes('read-back') ? ', + create/read back' : ', product alone'}`
  if (row.section.startsWith('tiny GPT')) return `GPT ${row.name}`
  return row.name
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** Horizontal bars of Tenny's advantage over each tfjs column, on a log2 axis centred at 1× (right = Tenny better). */
export function svg(rows: Row[], meta: Meta): string {
  const { tfjs } = columnsOf(rows)
  const colors = ['#e07a5f', '#3d5a80', '#81b29a', '#f2cc8f', '#9b5de5']
  const bar = 9,
    gap = 4,
    labelW = 430,
    margin = 45,
    plotW = 420,
    top = 56,
    maxLog = 4 // ±16×; margin holds a left bar's value label
  const rowH = tfjs.length * bar + gap * 2
  const height = top + rows.length * rowH + 40
  const x0 = labelW + margin + plotW / 2
  const scale = (adv: number) => (Math.max(-maxLog, Math.min(maxLog, Math.log2(adv))) / maxLog) * (plotW / 2)
  const subtitle =
    `${meta.date}, ${meta.cpu}, ${meta.cores} cores, Node ${meta.node}, ${meta.mode}. ` +
    'Right of 1×: Tenny faster / smaller; left: tfjs.'
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${labelW + margin + plotW + 150}" height="${height}" ` +
      `font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="18" font-size="14" font-weight="bold">Tenny vs TensorFlow.js and jax-js: how many ` +
      `times better Tenny's best backend is (log scale)</text>`,
    `<text x="10" y="36" fill="#555">${esc(subtitle)}</text>`,
  ]
  tfjs.forEach((c, i) =>
    out.push(
      `<rect x="${labelW + margin + plotW + 10}" y="${top + i * 16}" width="10" height="10" ` +
        `fill="${colors[i % colors.length]}"/><text x="${labelW + margin + plotW + 24}" ` +
        `y="${top + i * 16 + 9}">vs ${esc(c)}</text>`,
    ),
  )
  for (let t = -maxLog; t <= maxLog; t++) {
    const x = x0 + (t / maxLog) * (plotW / 2)
    out.push(`<line x1="${x}" y1="${top - 6}" x2="${x}" y2="${height - 30}" stroke="${t === 0 ? '#000' : '#ddd'}"/>`)
    out.push(`<text x="${x}" y="${height - 16}" text-anchor="middle">${t < 0 ? `1/${2 ** -t}` : 2 ** t}×</text>`)
  }
  rows.forEach((row, r) => {
    const y = top + r * rowH
    out.push(
      `<text x="${labelW - 6}" y="${y + rowH / 2 + 4}" text-anchor="end">` +
        `${esc(label(row).length > 70 ? label(row).slice(0, 69) + '…' : label(row))}</text>`,
    )
    tfjs.forEach((c, i) => {
      const cmp = compare(row, c)
      if (!cmp) return
      const w = scale(cmp.advantage)
      const by = y + gap + i * bar
      out.push(
        `<rect x="${Math.min(x0, x0 + w)}" y="${by}" width="${Math.max(1, Math.abs(w))}" height="${bar - 1}" ` +
          `fill="${colors[i % colors.length]}"><title>` +
          `${esc(`${label(row)} vs ${c}: ${cmp.advantage.toFixed(2)}×`)}</title></rect>`,
      )
      const text = cmp.advantage >= 1 ? `${cmp.advantage.toFixed(1)}×` : `1/${(1 / cmp.advantage).toFixed(1)}`
      out.push(
        `<text x="${x0 + w + (w >= 0 ? 3 : -3)}" y="${by + bar - 2}" font-size="8" fill="#444" ` +
          `text-anchor="${w >= 0 ? 'start' : 'end'}">${text}</text>`,
      )
    })
  })
  out.push('</svg>')
  return out.join('\n') + '\n'
}

/** A peer comparison in words: 2.00× better (Tenny ahead), 2.00× worse. */
function betterOrWorse(advantage: number): string {
  return advantage >= 1 ? `${advantage.toFixed(2)}× better` : `${(1 / advantage).toFixed(2)}× worse`
}

/** --quick's compact table: each row's best Tenny column, and each peer's value and ratio. */
export function compact(rows: Row[]): string {
  const { tfjs } = columnsOf(rows)
  const lines = [
    `| workload | unit | Tenny best | ${tfjs.join(' | ')} |`,
    `|---|---|---:|${tfjs.map(() => '---:').join('|')}|`,
  ]
  for (const row of rows) {
    const tenny = Object.entries(row.cells).filter(
      (e): e is [string, Cell] => e[0].startsWith('Tenny') && e[1] !== null,
    )
    if (tenny.length === 0) continue
    const lower = lowerIsBetter(row)
    const [name, best] = tenny.reduce((a, b) => ((lower ? b[1].value < a[1].value : b[1].value > a[1].value) ? b : a))
    const peers = tfjs.map((c) => {
      const cell = row.cells[c],
        cmp = compare(row, c)
      return cell && cmp ? `${fmt(cell.value)} (${betterOrWorse(cmp.advantage)})` : '—'
    })
    lines.push(
      `| ${label(row)} | ${row.unit} | ${fmt(best.value)} (${name.replace('Tenny ', '')}) | ${peers.join(' | ')} |`,
    )
  }
  return lines.join('\n') + '\n'
}
