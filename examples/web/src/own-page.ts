// "Your own model", the page's side: a Hugging Face folder opened (folder picker, file picker or a dropped folder),
// sized against the tab's limit before it is read, sent to the worker; then the controls to train it with LoRA, ask
// it and download its PEFT adapters. The worker's side is own-worker.ts.
import { zipSync } from 'fflate'
import { readModelFolder, droppedFiles, MODEL_LIMIT_BYTES, mb } from './model-files'
import type { Reply, Request, OwnSettings } from './messages'

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T
const input = (id: string) => $<HTMLInputElement>(id)
const button = (id: string) => $<HTMLButtonElement>(id)
type OwnReply = Extract<Reply, { type: `own-${string}` | 'model-opened' }>
export const isOwnReply = (r: Reply): r is OwnReply => r.type === 'model-opened' || r.type.startsWith('own-')

/** Wire the section's controls to `send`; returns what handles the worker's replies about the model. */
export function ownModelPage(send: (request: Request, transfer?: Transferable[]) => void) {
  $('model-limit').textContent = mb(MODEL_LIMIT_BYTES)
  const status = (text: string, isError = false) => {
    $('own-status').textContent = text
    $('own-status').classList.toggle('error', isError)
  }
  const setTraining = (on: boolean) => {
    button('own-train').disabled = on
    button('own-stop').disabled = !on
  }

  async function open(files: File[], name: string): Promise<void> {
    try {
      const bytes = await readModelFolder(files)
      const total = Object.values(bytes).reduce((s, b) => s + b.length, 0)
      status(`Opening ${name} (${mb(total)})…`)
      send({ type: 'open-model', name, files: bytes }, [...new Set(Object.values(bytes).map((b) => b.buffer))])
    } catch (err) {
      status(`${name}: ${err instanceof Error ? err.message : String(err)}`, true)
    }
  }
  const folderName = (files: File[]) => files[0]?.webkitRelativePath.split('/')[0] || 'local-model'
  for (const id of ['model-folder', 'model-files'])
    input(id).addEventListener('change', () => {
      const files = [...(input(id).files ?? [])]
      if (files.length) void open(files, folderName(files))
      input(id).value = '' // the same folder can be opened again
    })
  const drop = $('model-drop')
  drop.addEventListener('dragover', (e) => {
    e.preventDefault()
    drop.classList.add('over')
  })
  drop.addEventListener('dragleave', () => drop.classList.remove('over'))
  drop.addEventListener('drop', (e) => {
    e.preventDefault()
    drop.classList.remove('over')
    const transfer = e.dataTransfer
    if (!transfer) return
    const item = [...transfer.items].map((i) => i.webkitGetAsEntry()).find((entry) => entry?.isDirectory)
    void droppedFiles(transfer).then((files) => open(files, item?.name ?? 'local-model'))
  })

  button('own-train').addEventListener('click', () => {
    const settings: OwnSettings = {
      rank: Number(input('own-rank').value),
      alpha: Number(input('own-alpha').value),
      learningRate: Number(input('own-lr').value),
      iters: Number(input('own-iters').value),
      batchSize: Number(input('own-batch').value),
      qlora: input('own-qlora').checked,
      chat: input('own-chat').checked,
      targets: [...document.querySelectorAll<HTMLInputElement>('#own-targets input:checked')].map((b) => b.value),
    }
    if (settings.targets.length === 0) return status('Pick at least one target layer.', true)
    setTraining(true)
    status('Training in the Web Worker…')
    send({ type: 'own-train', settings, text: $<HTMLTextAreaElement>('own-data').value })
  })
  button('own-stop').addEventListener('click', () => send({ type: 'stop' }))
  const ask = () =>
    send({ type: 'own-ask', prompt: $<HTMLTextAreaElement>('own-prompt').value, chat: input('own-chat').checked })
  button('own-ask').addEventListener('click', ask)
  button('own-download').addEventListener('click', () => send({ type: 'own-download' }))

  function showOpened(r: Extract<Reply, { type: 'model-opened' }>): void {
    $('own-facts').textContent = `${r.name}: ${r.facts}.`
    showMemory(r.weights)
    const s = r.defaults
    const values = { rank: s.rank, alpha: s.alpha, lr: s.learningRate, iters: s.iters, batch: s.batchSize }
    for (const [id, value] of Object.entries(values)) input(`own-${id}`).value = String(value)
    input('own-qlora').checked = s.qlora
    input('own-chat').checked = s.chat
    input('own-chat').disabled = !r.chatTemplate
    const box = (name: string) =>
      `<label><input type="checkbox" value="${name}"${s.targets.includes(name) ? ' checked' : ''}> ${name}</label>`
    const fieldset = $('own-targets')
    fieldset.replaceChildren(fieldset.querySelector('legend')!)
    fieldset.insertAdjacentHTML('beforeend', r.targets.map(box).join(''))
    if (!$<HTMLTextAreaElement>('own-data').value) $<HTMLTextAreaElement>('own-data').value = r.text
    $('own-controls').hidden = false
    button('own-download').disabled = true
    status(`Opened ${r.name}. Asking it…`)
    ask()
  }

  return function onOwnReply(reply: OwnReply): void {
    if (reply.type === 'model-opened') return showOpened(reply)
    if (reply.type === 'own-progress') {
      $('own-step').textContent = `${reply.step} / ${reply.iters}`
      $('own-loss').textContent = reply.trainLoss.toFixed(4)
      $('own-tokps').textContent = (reply.tokens / reply.seconds).toFixed(0)
    } else if (reply.type === 'own-trained') {
      setTraining(false)
      button('own-download').disabled = false
      showMemory(reply.weights)
      const { steps, seconds, loss, quantized } = reply
      const qlora = quantized ? `, ${quantized} layers at 4 bits` : ''
      const done = `${reply.stopped ? 'Stopped after' : 'Trained'} ${steps} steps in ${seconds.toFixed(1)} s${qlora}`
      status(`${done}. Loss on the training text with the adapters: ${loss.toFixed(6)}.`)
      ask()
    } else if (reply.type === 'own-answer') {
      $('own-answer').textContent = reply.text
      $('own-answer-who').textContent = reply.adapted ? '(with the adapters)' : '(the model as opened)'
    } else {
      const zip = zipSync(reply.files, { level: 0 })
      const link = document.createElement('a')
      link.href = URL.createObjectURL(new Blob([zip], { type: 'application/zip' }))
      link.download = `${reply.name}-peft-adapters.zip`
      link.click()
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000)
      status(`Downloaded ${link.download}: adapter_model.safetensors and adapter_config.json, PEFT's layout.`)
    }
  }
}

type Measured = { bytes: number; breakdown: { bytes: number; attribution: { scope: string }[] }[] }
/**
 * Memory in use: the page and its workers as Chromium measures them (performance.measureUserAgentSpecificMemory,
 * which counts the workers' arrays and the wasm memory, but exists only in a cross-origin isolated page and
 * answers after the next garbage collection, ~10 s). Elsewhere: the model's parameters only, and why.
 */
function showMemory(weights: string): void {
  const measure = Reflect.get(performance, 'measureUserAgentSpecificMemory') as (() => Promise<Measured>) | undefined
  const params = `the model's parameters: ${weights}`
  if (!measure || !crossOriginIsolated) {
    $('memory').textContent = `${params} (this browser cannot measure a page's memory)`
    return
  }
  $('memory').textContent = `measuring… (${params})`
  measure.call(performance).then(
    (m) => {
      const inWorkers = m.breakdown
        .filter((b) => b.attribution.some((a) => a.scope === 'DedicatedWorkerGlobalScope'))
        .reduce((sum, b) => sum + b.bytes, 0)
      const what = `${mb(m.bytes)} in all, ${mb(inWorkers)} of it in the workers`
      $('memory').textContent = `${what} (measureUserAgentSpecificMemory); ${params}`
    },
    (err: unknown) => ($('memory').textContent = `${params} (measuring failed: ${String(err)})`),
  )
}

/** A worker's error about your own model: shown in the section, and Train is back unless training goes on. */
export function ownError(text: string, training: boolean): void {
  $('own-status').textContent = text
  $('own-status').classList.add('error')
  if (!training) {
    button('own-train').disabled = false
    button('own-stop').disabled = true
  }
}
