// The playground page: controls and views only. The model lives in a Web Worker (worker.ts), so training never
// freezes the page; this file turns clicks into requests and the worker's replies into text, a chart and a table.
import type { BackendName } from 'tenny'
import { LossChart } from './chart'
import { download, readDropped } from './files'
import { showReport } from './report'
import { ownModelPage, ownError, isOwnReply } from './own-page'
import { LAYOUT_NAMES, type Request, type Reply, type Settings, type Layout } from './messages'

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const element = document.getElementById(id)
  if (!element) throw new Error(`the page has no #${id}`)
  return element as T
}
const input = (id: string) => $<HTMLInputElement>(id)
const button = (id: string) => $<HTMLButtonElement>(id)

const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' })
const send = (request: Request, transfer: Transferable[] = []) => worker.postMessage(request, transfer)
const onOwnReply = ownModelPage(send)
// ?backend=wasm&threads=1 in the page's address starts that backend instead of auto (to compare them)
const query = new URLSearchParams(location.search)
send({
  type: 'start',
  backend: { name: query.get('backend') as BackendName | null, threads: Number(query.get('threads')) || null },
})

const chart = new LossChart($('chart'), ['train loss', 'validation loss'])
let baseAnswerShown = false
let trainingNow = false
let hasAdapter = false

// ---- asking ----------------------------------------------------------------------------------------
function ask(): void {
  send({
    type: 'ask',
    prompt: input('prompt').value,
    temperature: Number(input('temperature').value),
    strength: Number(input('strength').value),
  })
}
button('ask').addEventListener('click', ask)
for (const id of ['temperature', 'strength']) {
  input(id).addEventListener('input', () => {
    $(`${id}-value`).textContent = input(id).value
    if (hasAdapter || id === 'temperature') ask() // re-answer as the slider moves
  })
}

// ---- training --------------------------------------------------------------------------------------
function settings(): Settings {
  const targets = [...document.querySelectorAll<HTMLInputElement>('#targets input:checked')].map((box) => box.value)
  return {
    rank: Number(input('rank').value),
    alpha: Number(input('alpha').value),
    targets,
    learningRate: Number(input('lr').value),
    iters: Number(input('iters').value),
    batchSize: Number(input('batch').value),
    stepsPerEval: Number(input('eval-every').value),
  }
}

/** The form at the worker's defaults for this model (the Node example's, from its flag table). */
function showSettings(targets: string[], s: Settings): void {
  const values = { rank: s.rank, alpha: s.alpha, lr: s.learningRate, iters: s.iters, batch: s.batchSize }
  for (const [id, value] of Object.entries({ ...values, 'eval-every': s.stepsPerEval })) input(id).value = String(value)
  const box = (name: string) =>
    `<label><input type="checkbox" value="${name}"${s.targets.includes(name) ? ' checked' : ''}> ${name}</label>`
  $('targets').insertAdjacentHTML('beforeend', targets.map(box).join(''))
}
button('train').addEventListener('click', () => {
  const s = settings()
  if (s.targets.length === 0) return status('Pick at least one target layer.')
  chart.start(s.iters)
  setTraining(true)
  send({ type: 'train', settings: s })
})
button('stop').addEventListener('click', () => send({ type: 'stop' }))

function setTraining(on: boolean): void {
  trainingNow = on
  button('train').disabled = on
  button('stop').disabled = !on
  status(on ? 'Training in a Web Worker: the page stays responsive; Stop keeps what was learned so far.' : '')
}

// ---- adapter files ---------------------------------------------------------------------------------
for (const layout of ['tenny', 'peft', 'mlx'] as const)
  button(`download-${layout}`).addEventListener('click', () => send({ type: 'download', layout }))
const drop = $('drop')
drop.addEventListener('dragover', (e) => {
  e.preventDefault()
  drop.classList.add('over')
})
drop.addEventListener('dragleave', () => drop.classList.remove('over'))
drop.addEventListener('drop', (e) => {
  e.preventDefault()
  drop.classList.remove('over')
  if (e.dataTransfer) void loadFiles(e.dataTransfer.files)
})
input('adapter-input').addEventListener('change', () => {
  const files = input('adapter-input').files
  if (files) void loadFiles(files)
})
async function loadFiles(list: FileList): Promise<void> {
  try {
    send({ type: 'load', files: await readDropped(list) })
  } catch (err) {
    status(`Could not read the files: ${err instanceof Error ? err.message : String(err)}`, true)
  }
}

// ---- the worker's replies --------------------------------------------------------------------------
function status(text: string, isError = false): void {
  $('status').textContent = text
  $('status').classList.toggle('error', isError)
}

function onReply(reply: Reply): void {
  if (reply.type === 'ready') {
    $('backend').textContent =
      reply.backend.gflops === null
        ? reply.backend.name
        : `${reply.backend.name}, ${reply.backend.gflops.toFixed(1)} GFLOP/s measured`
    $('backend-detail').textContent = reply.backend.reason
    $('threads').textContent = reply.backend.threads
    $('model-facts').textContent = `Base model: ${reply.model}.`
    $('data-facts').textContent = `Data: ${reply.data}.`
    showSettings(reply.targets, reply.defaults)
    for (const id of ['ask', 'train']) button(id).disabled = false
    status('Ready. Asking the base model…')
    ask()
  } else if (reply.type === 'answer') {
    $('answer').textContent = reply.prompt + reply.text
    $('answer-who').textContent = reply.adapted ? `(adapted, strength ${reply.strength})` : '(base model)'
    if (!baseAnswerShown && !reply.adapted) {
      $('base-answer').textContent = reply.prompt + reply.text
      baseAnswerShown = true
      status('Ready.')
    }
  } else if (reply.type === 'progress') {
    showProgress(reply)
  } else if (reply.type === 'trained') {
    setTraining(false)
    adapterReady(reply.report)
    const { steps, seconds, tokens, kept, last } = reply
    chart.finish(steps, { step: kept.step, label: `kept (step ${kept.step})` })
    const done = `${reply.stopped ? 'Stopped after' : 'Trained'} ${steps} steps in ${seconds.toFixed(1)} s`
    const speed = `${(tokens / seconds).toFixed(0)} tokens/s`
    const lowest = `validation loss ${kept.loss.toFixed(3)}, the lowest (step ${last.step}: ${last.loss.toFixed(3)})`
    $('kept').textContent = `step ${kept.step}`
    status(`${done} (${speed}). Kept the adapters of step ${kept.step}: ${lowest}.`)
    ask()
  } else if (reply.type === 'loaded') {
    adapterReady(reply.report)
    status(`Loaded ${reply.what}.`)
    ask()
  } else if (reply.type === 'files') {
    download(reply.layout, reply.files)
    status(`Downloaded the adapters in ${LAYOUT_NAMES[reply.layout]}.`)
  } else if (reply.type === 'status') {
    status(reply.text)
  } else if (isOwnReply(reply)) {
    onOwnReply(reply)
  } else if (reply.own) {
    ownError(reply.text, reply.training)
  } else {
    if (trainingNow && !reply.training) setTraining(false)
    status(reply.text, true)
  }
}
worker.addEventListener('message', (e: MessageEvent<Reply>) => onReply(e.data))
worker.addEventListener('error', (e) => status(`The model's worker failed: ${e.message}`, true))

/** The numbers above the chart, and the chart's new points. */
function showProgress(p: Extract<Reply, { type: 'progress' }>): void {
  $('step').textContent = `${p.step} / ${p.iters}`
  if (p.trainLoss !== null) $('loss').textContent = p.trainLoss.toFixed(4)
  if (p.validLoss !== null) $('valid').textContent = p.validLoss.toFixed(4)
  $('kept').textContent = `step ${p.kept.step}`
  const perStep = p.seconds / Math.max(1, p.step)
  $('tokps').textContent = p.step > 0 ? (p.tokens / p.seconds).toFixed(0) : '–'
  $('eta').textContent = p.step > 0 ? `${(perStep * (p.iters - p.step)).toFixed(0)} s` : '–'
  if (p.trainLoss !== null) chart.add(0, p.step, p.trainLoss)
  if (p.validLoss !== null) chart.add(1, p.step, p.validLoss)
}

function adapterReady(report: Parameters<typeof showReport>[1]): void {
  hasAdapter = true
  showReport($('report'), report)
  for (const layout of ['tenny', 'peft', 'mlx'] satisfies Layout[]) button(`download-${layout}`).disabled = false
}
