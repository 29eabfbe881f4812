// The bench page: starts bench-worker.ts, shows the parity table as it fills and the results as Markdown (the
// same table `npm run bench` prints). `bench.html?parity` checks parity only; `?run=quick|full` starts at once.
import type { BenchMode, BenchReply, ParityRow } from './bench-worker'

const $ = (id: string): HTMLElement => {
  const element = document.getElementById(id)
  if (!element) throw new Error(`the page has no #${id}`)
  return element
}

const worker = new Worker(new URL('./bench-worker.ts', import.meta.url), { type: 'module' })
const buttons = [$('run'), $('run-quick')].filter((b): b is HTMLButtonElement => b instanceof HTMLButtonElement)

function start(mode: BenchMode): void {
  for (const b of buttons) b.disabled = true
  $('markdown').textContent = ''
  worker.postMessage({ mode })
}
$('run').addEventListener('click', () => start('full'))
$('run-quick').addEventListener('click', () => start('quick'))

function showParity(rows: ParityRow[]): void {
  const body = $('parity').querySelector('tbody')
  if (!body) return
  const error = (r: ParityRow, i: number) =>
    r.errors[i] === undefined ? '–' : `${r.errors[i].toExponential(1)} (≤ ${r.tolerances[i].toExponential(1)})`
  const row = (r: ParityRow) => {
    const time = r.errors.length ? `${r.ms256.toFixed(1)} ms` : '–'
    const cells = [r.column, error(r, 0), error(r, 1), error(r, 2), time, r.ok ? 'ok' : r.note]
    return `<tr data-column="${r.column}" data-ok="${r.ok}">${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`
  }
  body.innerHTML = rows.map(row).join('')
}

worker.addEventListener('message', (e: MessageEvent<BenchReply>) => {
  const reply = e.data
  if (reply.type === 'status') $('status').textContent = reply.text
  else if (reply.type === 'parity') showParity(reply.rows)
  else if (reply.type === 'error') $('status').textContent = `Error: ${reply.text}`
  else {
    $('markdown').textContent = reply.markdown
    $('status').textContent = 'Done.'
    for (const b of buttons) b.disabled = false
  }
})

/** What runs here: the browser, its threads and the WebGL renderer (in software, gpu.js and tfjs webgl use the CPU). */
function describeEnvironment(): void {
  const gl = document.createElement('canvas').getContext('webgl')
  const debug = gl?.getExtension('WEBGL_debug_renderer_info')
  const renderer = gl ? String(gl.getParameter(debug ? debug.UNMASKED_RENDERER_WEBGL : gl.RENDERER)) : 'no WebGL'
  const threads = `${navigator.hardwareConcurrency} hardware threads`
  $('environment').textContent =
    `${navigator.userAgent}; ${threads}; cross-origin isolated: ${crossOriginIsolated}; WebGL renderer: ${renderer}`
  if (/swiftshader|llvmpipe|software/i.test(renderer)) {
    $('software-gl').hidden = false
    $('software-gl').textContent =
      `WebGL here is software (${renderer}): gpu.js and tfjs webgl run on the CPU through an emulator, ` +
      'so their numbers say nothing about a GPU.'
  }
}

describeEnvironment()
const wanted = new URLSearchParams(location.search)
const runAtOnce = wanted.get('run')
if (wanted.has('parity')) start('parity')
else if (runAtOnce === 'quick' || runAtOnce === 'full') start(runAtOnce)
