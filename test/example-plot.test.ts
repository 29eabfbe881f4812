// The example's charts and progress bar: readable without colour and under 100 columns, round SVG ticks, and
// every field of the bar filled in (cli-progress leaves a {tok/s} placeholder as written).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { PassThrough } from 'node:stream'
import { terminalChart, svgChart, niceStep, type Curve } from '../examples/lib/plot'
import { progressBar } from '../examples/lib/progress'

const train: Curve = {
  name: 'train loss',
  points: [
    [0, 2.9],
    [50, 1.4],
    [100, 1.1],
    [150, 0.9],
    [200, 0.5],
    [250, 0.3],
  ],
}
const valid: Curve = {
  name: 'validation loss',
  points: [
    [0, 2.9],
    [50, 1.7],
    [100, 1.65],
    [150, 1.7],
    [200, 1.8],
    [250, 1.9],
  ],
}

test('terminalChart: two curves in distinct line styles with a legend, no colour codes, under 100 columns', () => {
  const chart = terminalChart([train, valid], { mark: { step: 100, label: 'kept (step 100)' } })
  const lines = chart.split('\n')
  assert.not.match(chart, /\x1b\[/, 'no ANSI colour codes')
  for (const line of lines) assert.ok(line.length < 100, `${line.length} columns: ${line}`)
  assert.match(chart, /── train loss {3}══ validation loss/)
  const plot = lines.slice(0, -2).join('\n')
  assert.match(plot, /─/)
  assert.match(plot, /═/)
  // the mark sits under step 100 of 250: 40% of the way across the 60 plotted columns
  const caret = lines[lines.length - 2]
  assert.match(caret, /^ +\^ kept \(step 100\)$/)
  assert.is(caret.indexOf('^') - 7, Math.round((59 * 100) / 250))
  // the y labels run from the highest loss down to the lowest
  const labels = lines.slice(0, -2).map((l) => Number(l.slice(0, 6)))
  assert.is(labels[0], 2.9)
  assert.is(labels[labels.length - 1], 0.3)
})

test('niceStep: 1, 2, 2.5 or 5 times a power of ten, the smallest at least the raw step', () => {
  assert.equal([0.144, 0.3, 0.5, 0.07, 150, 24, 1].map(niceStep), [0.2, 0.5, 0.5, 0.1, 200, 25, 1])
})

test('svgChart: tick labels are round numbers, the mark and both curves are drawn, solid and dashed', () => {
  const svg = svgChart([train, valid], 'LoRA <fine-tune>', { step: 100, label: 'kept (step 100)' })
  const ticks = [...svg.matchAll(/text-anchor="(?:end|middle)">([\d.]+)<\/text>/g)].map((m) => Number(m[1]))
  assert.equal(ticks, [0, 1, 2, 3, 0, 100, 200]) // loss 0.3 to 2.9, steps 0 to 250
  assert.match(svg, /LoRA &lt;fine-tune&gt;/)
  assert.match(svg, />kept \(step 100\)</)
  assert.is([...svg.matchAll(/<polyline /g)].length, 2)
  assert.match(svg, /<polyline [^>]*stroke-dasharray="6 3"/)
})

test('progressBar on a terminal fills every field, tokens/s included', async () => {
  const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 120 })
  let out = ''
  stream.on('data', (chunk) => {
    out += chunk
  })
  const bar = progressBar('train', 10, { loss: 'loss', tokps: 'tok/s' }, stream)
  bar.update(5, { loss: '1.234', tokps: '4321' })
  bar.stop()
  await new Promise((resolve) => setImmediate(resolve))
  assert.match(out, /train \|.*\| 5\/10 \| loss 1\.234 \| tok\/s 4321 \| ETA /)
  assert.not.match(out, /\{\w*\/?\w*\}/, 'no placeholder left unfilled')
  assert.throws(
    () => progressBar('x', 1, { 'tok/s': 'tok/s' }, stream),
    /field key 'tok\/s' must be letters, digits or _/,
  )
})

test.run()
