/// <reference lib="dom" />
// "Your own model" in the playground, in headless Chromium through the page's own file input: small random-weight
// Hugging Face folders (GPT-2 and Llama layouts, one in shards) open, train a few LoRA steps in the worker (one with
// QLoRA's 4-bit base), and download PEFT adapters; Node loads each folder, imports the adapters with nn.importPEFT
// and gives the page's answer and the page's loss on the training text. A folder over the tab's limit is refused,
// with its size and the limit, before it is read.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  copyFileSync,
  writeFileSync,
} from 'node:fs'
import { ftruncateSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { unzipSync } from 'fflate'
import type { Page } from 'puppeteer-core'
import { nn } from '../src/node'
import { buildPlayground, serve, launch, root } from '../examples/web/headless'
import { answerOf, examplesOf, lossOf, type Opened } from '../examples/web/src/own-model'
import { MODEL_LIMIT_BYTES, mb } from '../examples/web/src/model-files'

const FIXTURES = join(root, 'test/fixtures/hf')
type Site = Awaited<ReturnType<typeof serve>>
type Chrome = Awaited<ReturnType<typeof launch>>
let dist = '',
  site: Site,
  chrome: Chrome,
  page: Page,
  downloads = ''

const text = (id: string) => page.$eval(`#${id}`, (e) => e.textContent ?? '')
const value = (id: string, v: string) =>
  page.$eval(`#${id}`, (e, v) => ((e as HTMLInputElement | HTMLTextAreaElement).value = v), v)
/** Wait until #own-status matches `pattern`; an error shown there fails at once with its text. */
async function ownStatus(pattern: RegExp, { error = false, timeout = 120_000 } = {}): Promise<string> {
  // (the caller cleared the status before the action it waits on: see clearStatus)
  await page.waitForFunction(
    (source) => {
      const s = document.getElementById('own-status')!
      return s.classList.contains('error') || new RegExp(source).test(s.textContent ?? '')
    },
    { timeout, polling: 100 },
    pattern.source,
  )
  const [shown, isError] = await page.$eval('#own-status', (e) => [e.textContent ?? '', e.classList.contains('error')])
  assert.is(isError, error, `#own-status: ${shown}`)
  assert.match(shown as string, pattern)
  return shown as string
}
/** Empty #own-status, so that what it shows next is the answer to what the test does next. */
const clearStatus = () =>
  page.$eval('#own-status', (e) => {
    e.textContent = ''
    e.classList.remove('error')
  })
/** Ask (click) and wait for an answer shown after the click. */
async function ask(): Promise<string> {
  await page.$eval('#own-answer', (e) => (e.textContent = '\u0000'))
  await page.click('#own-ask')
  await page.waitForFunction(() => document.getElementById('own-answer')?.textContent !== '\u0000', {
    timeout: 60_000,
  })
  return text('own-answer')
}
/** Open a fixture folder through the page's file input: every file in it, as a person picks them. */
async function open(folder: string): Promise<string> {
  const input = (await page.$('input#model-files'))!
  const files = readdirSync(join(FIXTURES, folder)).map((name) => join(FIXTURES, folder, name))
  await clearStatus()
  await input.uploadFile(...files)
  return ownStatus(/^Opened local-model\. /)
}

let setup: Error | null = null
test.before(async () => {
  try {
    dist = await buildPlayground()
    site = await serve(dist)
    chrome = await launch()
    page = await chrome.browser.newPage()
    downloads = mkdtempSync(join(tmpdir(), 'tenny-own-downloads-'))
    const cdp = await page.createCDPSession()
    await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads })
    await page.goto(site.url)
    await page.waitForFunction(() => /^Ready\.$/.test(document.getElementById('status')?.textContent ?? ''), {
      timeout: 120_000,
    })
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

test('own model: a folder whose files are over the limit is refused, with its size and the limit', async () => {
  const big = mkdtempSync(join(tmpdir(), 'tenny-big-model-'))
  try {
    copyFileSync(join(FIXTURES, 'gpt2-f32/config.json'), join(big, 'config.json'))
    const fd = openSync(join(big, 'model.safetensors'), 'w')
    ftruncateSync(fd, MODEL_LIMIT_BYTES + 2 ** 20) // sparse: as big as it says, and nothing on disk
    closeSync(fd)
    await clearStatus()
    await (await page.$('input#model-files'))!.uploadFile(join(big, 'config.json'), join(big, 'model.safetensors'))
    const shown = await ownStatus(/over this tab's limit/, { error: true, timeout: 30_000 })
    const size = mb(MODEL_LIMIT_BYTES + 2 ** 20 + readFileSync(join(big, 'config.json')).length)
    assert.is(shown, `local-model: the model's files are ${size}, over this tab's limit of ${mb(MODEL_LIMIT_BYTES)}`)
    assert.ok(await page.$eval('#own-controls', (e) => (e as HTMLElement).hidden), 'no model was opened')
  } finally {
    rmSync(big, { recursive: true, force: true })
  }
})

/** The PEFT zip the page downloads, unpacked into a new folder. */
async function downloadPeft(): Promise<string> {
  for (const f of readdirSync(downloads)) rmSync(join(downloads, f))
  await clearStatus()
  await page.click('#own-download')
  await ownStatus(/^Downloaded local-model-peft-adapters\.zip/)
  const zip = join(downloads, 'local-model-peft-adapters.zip')
  for (let i = 0; i < 100 && !readdirSync(downloads).includes('local-model-peft-adapters.zip'); i++)
    await new Promise((resolve) => setTimeout(resolve, 100))
  const dir = mkdtempSync(join(tmpdir(), 'tenny-own-peft-'))
  for (const [name, bytes] of Object.entries(unzipSync(readFileSync(zip)))) writeFileSync(join(dir, name), bytes)
  return dir
}

/** Open, train `steps` steps, download; then Node's answer and loss with the downloaded adapters. */
async function trainAndCheck(folder: string, { steps, qlora, chat }: { steps: number; qlora: boolean; chat: boolean }) {
  const facts = await open(folder)
  assert.match(facts, /Asking it/)
  await page.$eval('#own-chat', (e, on) => ((e as HTMLInputElement).checked = on), chat)
  const before = await ask()
  await value('own-iters', String(steps))
  await value('own-lr', '0.01')
  await page.$eval('#own-qlora', (e, on) => ((e as HTMLInputElement).checked = on), qlora)
  const trainingText = await page.$eval('#own-data', (e) => (e as HTMLTextAreaElement).value)
  await clearStatus()
  await page.click('#own-train')
  const status = await ownStatus(/^Trained \d+ steps/)
  const m =
    /^Trained (\d+) steps in [\d.]+ s(?:, (\d+) layers at 4 bits)?\. Loss on the training text with the adapters: ([\d.]+)\.$/.exec(
      status,
    )
  assert.ok(m, status)
  assert.is(Number(m![1]), steps)
  assert.is(m![2] !== undefined, qlora, `QLoRA: ${status}`)
  const answer = await ask()
  assert.is(await text('own-answer-who'), '(with the adapters)')
  const peft = await downloadPeft()
  try {
    const config = JSON.parse(readFileSync(join(peft, 'adapter_config.json'), 'utf8'))
    assert.is(config.base_model_name_or_path, 'local-model')
    const checked = await page.$$eval('#own-targets input:checked', (b) => b.map((x) => (x as HTMLInputElement).value))
    assert.equal(config.target_modules, [...checked].sort(), 'target_modules: the layers picked, by their HF names')
    // Node: the same folder, the downloaded adapters, the same answer and the same loss on the same text
    const loaded = nn.loadPretrained(join(FIXTURES, folder))
    const opened: Opened = { model: loaded.model, tokenizer: loaded.tokenizer!, config: {} }
    const examples = examplesOf(opened.tokenizer, trainingText, opened.model.contextSize, chat)
    const baseLoss = lossOf(opened.model, examples)
    if (qlora) nn.quantize(opened.model, { bits: 4, groupSize: 32 })
    nn.importPEFT(opened.model, peft)
    const prompt = await page.$eval('#own-prompt', (e) => (e as HTMLTextAreaElement).value)
    assert.is(answerOf(opened, prompt, chat), answer, "Node's answer with the downloaded adapters is the page's")
    const loss = lossOf(opened.model, examples)
    assert.ok(Math.abs(loss - Number(m![3])) < 1e-4, `Node's loss ${loss}, the page's ${m![3]}`)
    assert.ok(loss < baseLoss - 0.1, `the adapters lowered the loss on the training text: ${baseLoss} → ${loss}`)
    return { before, answer }
  } finally {
    rmSync(peft, { recursive: true, force: true })
  }
}

test('own model: a GPT-2 folder opens through the file input, trains LoRA on c_attn, and its PEFT adapters give Node the same answer and loss', async () => {
  // its 32-token context cannot hold a chat-template prompt: plain text
  const { before, answer } = await trainAndCheck('gpt2-f32', { steps: 12, qlora: false, chat: false })
  // memory in use, as Chromium measures a cross-origin isolated page and its workers (after a garbage collection)
  await page.waitForFunction(() => !/measuring/.test(document.getElementById('memory')?.textContent ?? ''), {
    timeout: 60_000,
  })
  const memory =
    /^([\d.]+) MB in all, ([\d.]+) MB of it in the workers \(measureUserAgentSpecificMemory\); the model's parameters: ([\d.]+) MB$/.exec(
      await text('memory'),
    )
  assert.ok(memory, await text('memory'))
  const [all, workers, params] = memory!.slice(1).map(Number)
  assert.ok(all >= workers && workers > params, `${all} ≥ ${workers} > ${params} MB`)
  assert.match(await text('own-facts'), /^local-model: gpt2, [\d,]+ parameters, \d+-token vocabulary/)
  assert.is.not(answer, before, 'the adapters changed the answer')
})

test('own model: a Llama folder with a chat template trains with QLoRA (4-bit base), asked through the template', async () => {
  await trainAndCheck('llama-tied-f32', { steps: 12, qlora: true, chat: true })
  assert.match(await text('own-facts'), /^local-model: llama, .*answers through its chat template/)
})

test('own model: a Llama folder in two shards (with its index) opens and trains; no chat template, so plain text', async () => {
  await trainAndCheck('llama-untied-bf16-sharded', { steps: 12, qlora: false, chat: false })
  assert.ok(await page.$eval('#own-chat', (e) => (e as HTMLInputElement).disabled), 'no template to choose')
})

test('own model: a folder without a tokenizer is refused in one line', async () => {
  const input = (await page.$('input#model-files'))!
  await input.uploadFile(
    join(FIXTURES, 'llama-tied-f32/config.json'),
    join(FIXTURES, 'llama-tied-f32/model.safetensors'),
  )
  await ownStatus(/^the folder has no tokenizer\.json/, { error: true })
})

test.run()
