/// <reference lib="dom" />
// The playground in a real browser (headless Chromium): built with Vite, served cross-origin isolated, it
// answers the relu question as Node does, trains a LoRA adapter in its Web Worker with the loss falling and
// the page responsive, downloads the adapters in three layouts that Node loads bit for bit, and loads files
// dropped on it with Node's one-line errors. Also: served without COOP/COEP it still runs, on one thread.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { unzipSync } from 'fflate'
import type { Page } from 'puppeteer-core'
import { Tensor, nn, parseSafetensors, type StoredTensor } from '../src/node'
import { loadBase } from '../examples/lib/checkpoint'
import { buildPlayground, serve, launch, root } from '../examples/web/headless'
import { FLAGS, exampleFlags } from '../examples/lib/flags'
import { loadData, inBatches } from '../examples/lib/data'
import { evaluate, EVAL_BATCH } from '../examples/lib/step'
import { FIRST_CLICK } from '../examples/web/src/defaults'

const PROMPT = 'Q: What is relu in tenny?\nA: '
const BASE = join(root, 'examples/base/base.safetensors')
const exampleDefaults = exampleFlags([]) as Record<string, unknown>

type Site = Awaited<ReturnType<typeof serve>>
type Chrome = Awaited<ReturnType<typeof launch>>
let dist = '',
  site: Site,
  chrome: Chrome,
  page: Page,
  downloads = ''
let baseAnswer = '',
  trainedAnswer = ''

const text = (id: string) => page.$eval(`#${id}`, (e) => e.textContent ?? '')
const setValue = (id: string, value: string) =>
  page.$eval(
    `#${id}`,
    (e, v) => {
      if (!(e instanceof HTMLInputElement)) throw new Error(`#${e.id} is not an input`)
      e.value = v
      e.dispatchEvent(new Event('input'))
    },
    value,
  )
/** Wait until the page's #status matches `pattern` (or shows an error, which fails at once). */
async function statusMatches(pattern: RegExp, timeout = 60_000): Promise<string> {
  await page.waitForFunction(
    (source) => {
      const status = document.getElementById('status')
      return !!status && (status.classList.contains('error') || new RegExp(source).test(status.textContent ?? ''))
    },
    { timeout, polling: 100 },
    pattern.source,
  )
  const status = await text('status')
  assert.not.ok(
    await page.$eval('#status', (e) => e.classList.contains('error')),
    `the page reports an error: ${status}`,
  )
  return status
}
/**
 * Ask (click), then wait for the answer to the prompt now in the box (an answer to an earlier prompt, asked by the
 * page itself when training ended, may still arrive first).
 */
async function ask(): Promise<string> {
  await page.$eval('#answer', (e) => {
    e.textContent = ''
  })
  await page.click('#ask')
  await page.waitForFunction(
    () => {
      const answer = document.getElementById('answer')?.textContent ?? ''
      return answer !== '' && answer.startsWith((document.getElementById('prompt') as HTMLTextAreaElement).value)
    },
    { timeout: 30_000 },
  )
  return text('answer')
}

/** The greedy answer Node gives with `model` (the Node example's rule: up to the first newline). */
function nodeAnswer(model: nn.GPT, tokenizer: ReturnType<typeof loadBase>['tokenizer']): string {
  const ids = tokenizer.encode(PROMPT)
  const out = model.generate(
    new Tensor(Float32Array.from(ids), [1, ids.length]),
    Math.min(100, model.config.blockSize - ids.length),
    { temperature: 0, seed: 0 },
  )
  return PROMPT + tokenizer.decode(out.data.subarray(ids.length)).split('\n')[0]
}

// NOTE: uvu does not print an error thrown in a before hook, so set-up failures (no Chromium, say) are kept and
// thrown by each test, where they are printed
let setup: Error | null = null
test.before(async () => {
  try {
    dist = await buildPlayground()
    site = await serve(dist)
    chrome = await launch()
    page = await chrome.browser.newPage()
    downloads = mkdtempSync(join(tmpdir(), 'tenny-downloads-'))
    const cdp = await page.createCDPSession()
    await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads })
  } catch (err) {
    setup = err instanceof Error ? err : new Error(String(err))
  }
})
test.before.each(() => {
  if (setup) throw setup
})

test.after(async () => {
  await chrome?.close()
  await site?.close()
  for (const dir of [dist, downloads]) if (dir) rmSync(dir, { recursive: true, force: true })
})

test('playground: served cross-origin isolated, it loads the base and answers the relu question as Node does', async () => {
  await page.goto(site.url)
  await statusMatches(/^Ready\.$/)
  assert.ok(await page.evaluate(() => crossOriginIsolated), 'the page is cross-origin isolated')
  baseAnswer = await text('base-answer')
  assert.is(await text('answer'), baseAnswer)
  const { model, tokenizer } = loadBase(BASE)
  assert.is(baseAnswer, nodeAnswer(model, tokenizer), 'greedy answers of the same base agree across engines')
  assert.match(await text('backend'), /^(TS kernels|WebAssembly SIMD) on (one thread|\d threads)|^gpu\.js webgl/)
  // auto timed gpu.js webgl2 in the Worker (OffscreenCanvas), which it does only after the self-check passed
  assert.match(await text('backend-detail'), /gpujs webgl2 \d/)
  // cross-origin isolated, the training worker starts Web Workers over shared memory, one per extra core
  const cores = await page.evaluate(() => navigator.hardwareConcurrency)
  const threads = /^(\d+) \(this worker \+ (\d+) Web Workers? ready\)$/.exec(await text('threads'))
  const expected = Math.min(cores, 32) // the pool's MAX_WORKERS (31) plus this worker
  if (cores > 1)
    assert.ok(
      threads && Number(threads[1]) === expected && Number(threads[2]) === expected - 1,
      `${cores} cores: ${await text('threads')}`,
    )
})

/** The trained answer to each of the four questions the examples show, from examples/data/first-click/train.jsonl. */
const FOUR = ['relu', 'matmul', 'softmax', 'gelu']
const trainedAnswers = new Map(
  readFileSync(join(root, 'examples/data/first-click/train.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line).text as string)
    .map((text) => [/^Q: What is (\S+) in tenny\?/.exec(text)![1], text.slice(text.indexOf('\nA: ') + 4)]),
)
let kept = { step: 0, loss: 0 }

test('playground: the first Train click, at the defaults it shows, learns the four answers and keeps the best step', async () => {
  // the form shows the Node example's defaults (its flag table) but a shorter run (examples/web/src/defaults.ts)
  const form = { rank: 'rank', alpha: 'alpha', lr: 'lr', batchSize: 'batch', stepsPerEval: 'eval-every' }
  const value = async (id: string) => Number(await page.$eval(`#${id}`, (e) => (e as HTMLInputElement).value))
  for (const [flag, id] of Object.entries(form)) assert.is(await value(id), exampleDefaults[flag], flag)
  assert.is(await value('iters'), FIRST_CLICK.iters)
  const checked = await page.$$eval('#targets input:checked', (boxes) =>
    boxes.map((b) => (b as HTMLInputElement).value),
  )
  assert.equal(checked, FLAGS.targets.default)
  const clicked = Date.now()
  await page.click('#train')
  const losses: number[] = [],
    delays: number[] = []
  while (await page.$eval('#stop', (e) => !(e as HTMLButtonElement).disabled)) {
    // the page's own thread answers a timer at once while the worker trains
    delays.push(
      await page.evaluate(
        () =>
          new Promise<number>((resolve) => {
            const t0 = performance.now()
            setTimeout(() => resolve(performance.now() - t0), 0)
          }),
      ),
    )
    const loss = Number(await text('loss'))
    if (Number.isFinite(loss) && loss !== losses[losses.length - 1]) losses.push(loss)
    await new Promise((resolve) => setTimeout(resolve, 150))
  }
  const status = await statusMatches(/^Trained /)
  const m =
    /^Trained (\d+) steps in ([\d.]+) s \((\d+) tokens\/s\)\. Kept the adapters of step (\d+): validation loss ([\d.]+), the lowest \(step (\d+): ([\d.]+)\)\.$/.exec(
      status,
    )
  assert.ok(m, status)
  // the time is a measurement to read, not to assert (the machine is shared)
  console.log(`  (the first click: ${((Date.now() - clicked) / 1000).toFixed(1)} s to "${status}")`)
  const [steps, keptStep, keptLoss, lastStep, lastLoss] = [1, 4, 5, 6, 7].map((i) => Number(m![i]))
  assert.is(steps, FIRST_CLICK.iters)
  assert.is(lastStep, steps)
  assert.ok(keptStep % FIRST_CLICK.stepsPerEval === 0 || keptStep === steps, `kept a validated step: ${keptStep}`)
  assert.ok(keptLoss <= lastLoss, 'the kept step has the lowest validation loss')
  assert.is(await text('kept'), `step ${keptStep}`)
  kept = { step: keptStep, loss: keptLoss }
  assert.ok(losses.length >= 4, `saw ${losses.length} loss readings`)
  assert.ok(
    losses[losses.length - 1] < losses[0] - 1,
    `train loss fell from ${losses[0]} (readings ${losses.join(' ')})`,
  )
  assert.ok(
    Math.max(...delays) < 250,
    `the page answered timers within ${Math.max(...delays).toFixed(0)} ms while training`,
  )
  const ranks = await page.$$eval('#report tbody tr td:nth-child(2)', (tds) => tds.map((td) => td.textContent ?? ''))
  assert.is(ranks.length, 13, 'one report row per adapted layer (6 targets in each of 2 blocks, and the LM head)')
  for (const cell of ranks) {
    const r = /^(\d+) ≤ 32$/.exec(cell)
    assert.ok(r && Number(r[1]) >= 1 && Number(r[1]) <= 32, `rank(ΔW) ≤ r: ${cell}`)
  }
  for (const name of FOUR) {
    await page.$eval('#prompt', (e, n) => ((e as HTMLTextAreaElement).value = `Q: What is ${n} in tenny?\nA: `), name)
    const prompt = `Q: What is ${name} in tenny?\nA: `
    assert.is(await ask(), prompt + trainedAnswers.get(name), `the ${name} answer is the docstring it was taught`)
  }
  await page.$eval('#prompt', (e, p) => ((e as HTMLTextAreaElement).value = p), PROMPT)
  trainedAnswer = await ask()
  assert.is.not(trainedAnswer, baseAnswer, 'the adapted answer differs from the base one')
  assert.match(await text('answer-who'), /adapted, strength 1/)
})

test('playground: the strength slider re-answers as it moves; at 0 the adapter is off and the base answers', async () => {
  await page.$eval('#answer', (e) => {
    e.textContent = ''
  })
  await setValue('strength', '0')
  await page.waitForFunction(() => /strength 0\)/.test(document.getElementById('answer-who')?.textContent ?? ''), {
    timeout: 30_000,
  })
  assert.is(await text('answer'), baseAnswer)
  await setValue('strength', '1')
  await page.waitForFunction(() => /strength 1\)/.test(document.getElementById('answer-who')?.textContent ?? ''), {
    timeout: 30_000,
  })
  assert.is(await text('answer'), trainedAnswer)
})

/** Click a download button and wait for its zip to land; returns the files inside. */
async function downloadZip(
  layout: 'tenny' | 'peft' | 'mlx',
): Promise<{ path: string; files: Record<string, Uint8Array> }> {
  const name = `tenny-adapters-${layout}.zip`
  await page.click(`#download-${layout}`)
  const deadline = Date.now() + 20_000
  while (!readdirSync(downloads).includes(name) && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 100))
  const path = join(downloads, name)
  await new Promise((resolve) => setTimeout(resolve, 200)) // Chromium renames the .crdownload when complete
  return { path, files: unzipSync(readFileSync(path)) }
}

/** Write `files` into a new folder; returns it. */
function unpack(files: Record<string, Uint8Array>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tenny-adapter-'))
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes)
  return dir
}

const f32 = (t: StoredTensor | undefined) => (t?.data instanceof Float32Array ? t.data : new Float32Array())
const bitwise = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]))

test("playground: downloads in Tenny, PEFT and MLX layouts; Node loads each by path: identical tensors, the same answer, the kept step's loss", async () => {
  const tenny = await downloadZip('tenny'),
    peft = await downloadZip('peft'),
    mlx = await downloadZip('mlx')
  assert.equal(Object.keys(tenny.files).sort(), ['adapter_config.json', 'adapters.safetensors'])
  assert.equal(Object.keys(peft.files).sort(), ['adapter_config.json', 'adapter_model.safetensors'])
  assert.equal(Object.keys(mlx.files).sort(), ['adapter_config.json', 'adapters.safetensors'])
  const dirs = [tenny, peft, mlx].map((d) => unpack(d.files))
  try {
    const load = (how: (model: nn.GPT) => void) => {
      const { model, tokenizer } = loadBase(BASE)
      how(model)
      return { model, answer: nodeAnswer(model, tokenizer) }
    }
    const byTenny = load((m) => nn.loadAdapters(m, join(dirs[0], 'adapters.safetensors')))
    const byPeft = load((m) => nn.importPEFT(m, dirs[1]))
    const byMlx = load((m) => nn.importMLX(m, join(dirs[2], 'adapters.safetensors')))
    for (const loaded of [byTenny, byPeft, byMlx])
      assert.is(loaded.answer, trainedAnswer, 'Node answers as the page did with its adapter')
    // they are the kept step's adapters: with them Node measures the validation loss the page kept them for
    const { tokenizer } = loadBase(BASE)
    const data = loadData(
      join(root, 'examples/data/first-click'),
      tokenizer,
      byTenny.model.config.blockSize,
      FLAGS.mask.default,
    )
    const valid = evaluate(byTenny.model, inBatches(data.valid, EVAL_BATCH, data.batch))
    assert.is(valid.toFixed(3), kept.loss.toFixed(3), `the validation loss of step ${kept.step}'s adapters`)
    // the loaded model writes the very bytes the browser wrote: every value survived, and so did the config
    const again = nn.adapterFiles(byTenny.model)
    assert.ok(
      Buffer.from(again['adapters.safetensors']).equals(Buffer.from(tenny.files['adapters.safetensors'])),
      'adapters.safetensors round-trips byte for byte',
    )
    assert.equal(
      JSON.parse(new TextDecoder().decode(again['adapter_config.json'])),
      JSON.parse(new TextDecoder().decode(tenny.files['adapter_config.json'])),
    )
    // the three layouts carry the same A and B (MLX's transposed)
    const own = parseSafetensors(tenny.files['adapters.safetensors']).tensors
    const hf = parseSafetensors(peft.files['adapter_model.safetensors']).tensors
    const loraA = f32(own['blocks.0.attn.qProj.loraA'])
    assert.ok(
      loraA.length > 0 && bitwise(loraA, f32(hf['base_model.model.blocks.0.attn.qProj.lora_A.weight'])),
      'PEFT lora_A = Tenny loraA',
    )
    const [qProj] = nn.loraAdapters(byMlx.model).filter(([p]) => p === 'blocks.0.attn.qProj')
    assert.ok(bitwise(qProj[1].loraA.data, loraA), 'MLX lora_a, transposed back, = Tenny loraA')
  } finally {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  }
})

test('playground: a dropped PEFT zip loads back; a damaged file is refused in one line and the model keeps its adapter', async () => {
  const input = await page.$('input#adapter-input')
  if (!input) throw new Error('the page has no #adapter-input')
  await input.uploadFile(join(downloads, 'tenny-adapters-peft.zip'))
  assert.match(await statusMatches(/^Loaded /), /PEFT's layout/)
  assert.is(await ask(), trainedAnswer)
  const bad = mkdtempSync(join(tmpdir(), 'tenny-bad-'))
  try {
    const config = unzipSync(readFileSync(join(downloads, 'tenny-adapters-tenny.zip')))['adapter_config.json']
    writeFileSync(join(bad, 'adapter_config.json'), config)
    writeFileSync(join(bad, 'adapters.safetensors'), new Uint8Array(64).fill(7)) // a header length far past the file
    await page.$eval('#status', (e) => {
      e.textContent = ''
    })
    await input.uploadFile(join(bad, 'adapter_config.json'), join(bad, 'adapters.safetensors'))
    await page.waitForFunction(() => document.getElementById('status')?.classList.contains('error'), {
      timeout: 20_000,
    })
    const error = await text('status')
    assert.match(error, /^loadAdapters: .*adapters\.safetensors|safetensors/)
    assert.not.match(error, /\n/, 'one line')
    assert.not.match(error, /at \w+ \(/, 'no stack trace')
  } finally {
    rmSync(bad, { recursive: true, force: true })
  }
  assert.is(await ask(), trainedAnswer, 'the refused file changed nothing')
})

test('playground: Stop ends training after the current step and keeps the adapters learned so far', async () => {
  await setValue('iters', '5000')
  await page.click('#train')
  await page.waitForFunction(() => /^([3-9]|\d\d+) \/ 5000$/.test(document.getElementById('step')?.textContent ?? ''), {
    timeout: 30_000,
    polling: 50,
  })
  await page.click('#stop')
  const status = await statusMatches(/^Stopped after \d+ steps/)
  const steps = Number(/after (\d+) steps/.exec(status)?.[1])
  assert.ok(steps >= 3 && steps < 5000, status)
  assert.not.ok(
    await page.$eval('#download-tenny', (e) => (e as HTMLButtonElement).disabled),
    'the kept adapters can be downloaded',
  )
  assert.is.not(await ask(), '', 'and answered with')
})

test('playground: served without COOP/COEP it still runs, on one thread, and says why', async () => {
  const plain = await serve(dist, { isolated: false })
  const other = await chrome.browser.newPage()
  try {
    await other.goto(plain.url)
    await other.waitForFunction(
      () =>
        /^Ready\.$/.test(document.getElementById('status')?.textContent ?? '') ||
        document.getElementById('status')?.classList.contains('error'),
      { timeout: 60_000 },
    )
    assert.not.ok(await other.evaluate(() => crossOriginIsolated))
    assert.is(await other.$eval('#base-answer', (e) => e.textContent), baseAnswer)
    assert.match(await other.$eval('#threads', (e) => e.textContent ?? ''), /not cross-origin isolated/)
  } finally {
    await other.close()
    await plain.close()
  }
})

test('bench page: every column, Tenny (cpu, parallel, wasm, gpu.js webgl2 and webgl) and tfjs (webgl, wasm), matches the CPU kernel before it is timed', async () => {
  const bench = await chrome.browser.newPage()
  try {
    await bench.goto(`${site.url}bench.html?parity`)
    await bench.waitForFunction(() => /^(Done\.|Error)/.test(document.getElementById('status')?.textContent ?? ''), {
      timeout: 90_000,
    })
    assert.is(await bench.$eval('#status', (e) => e.textContent), 'Done.')
    const rows = await bench.$$eval('#parity tbody tr', (trs) =>
      trs.map((tr) => ({
        column: tr.getAttribute('data-column'),
        ok: tr.getAttribute('data-ok'),
        text: tr.textContent,
      })),
    )
    assert.equal(
      rows.map((r) => r.column),
      [
        'Tenny cpu',
        'Tenny parallel',
        'Tenny wasm 1 thread',
        'Tenny wasm',
        'Tenny gpujs webgl2',
        'Tenny gpujs webgl',
        'tfjs webgl',
        'tfjs wasm',
      ],
    )
    for (const r of rows) assert.is(r.ok, 'true', `${r.column}: ${r.text}`)
  } finally {
    await bench.close()
  }
})

test.run()
