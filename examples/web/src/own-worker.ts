// The worker's requests about your own model (own-model.ts does the work): open a folder's files, train LoRA on
// the page's text, answer a prompt, hand out PEFT's adapter files. One model at a time; it replaces the last.
import { nn } from 'tenny'
import {
  openModel,
  promptIds,
  layerNames,
  defaultTargets,
  examplesOf,
  trainOwn,
  answerOf,
  lossOf,
  type Opened,
} from './own-model'
import { MODEL_LIMIT_BYTES, mb } from './model-files'
import type { Reply, Request, OwnSettings } from './messages'
import trainJsonl from '../../data/first-click/train.jsonl?raw'

type OwnRequest = Extract<Request, { type: 'open-model' | 'own-train' | 'own-ask' | 'own-download' }>
/** What the worker lends: posting a reply, and a pause between steps that says whether Stop was pressed. */
type Host = { post(reply: Reply): void; pause(): Promise<boolean> }

/** A first run on a model nobody has tuned for the page: PEFT's rank 8, a few dozen steps on the few examples. */
const OWN_DEFAULTS: Omit<OwnSettings, 'targets'> = {
  rank: 8,
  alpha: 16,
  learningRate: 1e-3,
  iters: 30,
  batchSize: 4,
  qlora: false,
  chat: true,
}
// the weights decode to float32: twice a bf16 file's size, so the loader's cap is twice the page's limit
const MAX_FLOAT32_BYTES = 2 * MODEL_LIMIT_BYTES

// the training text the page offers first: the four questions the examples show, with their answers
const FIRST_TEXT = trainJsonl
  .split('\n')
  .filter((line) => /What is (relu|matmul|softmax|gelu) in/.test(line))
  .map((line) => (JSON.parse(line) as { text: string }).text.replaceAll('\n', '\\n'))
  .join('\n')

let own: { name: string; files: Record<string, Uint8Array>; opened: Opened } | null = null

export async function handleOwn(request: OwnRequest, host: Host): Promise<void> {
  if (request.type === 'open-model') {
    const opened = openModel(request.files, MAX_FLOAT32_BYTES)
    own = { name: request.name, files: request.files, opened }
    const { model } = opened
    host.post({
      type: 'model-opened',
      name: request.name,
      facts: factsOf(opened),
      chatTemplate: opened.tokenizer.hasChatTemplate,
      targets: layerNames(model),
      defaults: { ...OWN_DEFAULTS, targets: defaultTargets(model), chat: chatFits(opened) },
      weights: weightsSize(),
      text: FIRST_TEXT,
    })
    return
  }
  const current = own ?? fail()
  if (request.type === 'own-ask') {
    const adapted = nn.loraLayers(current.opened.model).length > 0
    host.post({
      type: 'own-answer',
      prompt: request.prompt,
      text: answerOf(current.opened, request.prompt, request.chat),
      adapted,
    })
  } else if (request.type === 'own-download') {
    if (nn.loraLayers(current.opened.model).length === 0) throw new Error('train the model first: it has no adapters')
    const files = nn.peftFiles(current.opened.model, { baseModel: current.name })
    host.post({ type: 'own-files', name: current.name, files })
  } else {
    const { settings: s } = request
    const { tokenizer, model } = current.opened
    const examples = examplesOf(tokenizer, request.text, model.contextSize, s.chat)
    const fresh = () => openModel(current.files, MAX_FLOAT32_BYTES)
    let stopped = false
    const done = await trainOwn(fresh, examples, s, async (p) => {
      host.post({ type: 'own-progress', iters: s.iters, ...p })
      stopped = await host.pause()
      return stopped
    })
    current.opened = done.opened
    const loss = lossOf(done.opened.model, examples)
    const { steps, seconds, tokens, quantized } = done
    host.post({ type: 'own-trained', steps, seconds, tokens, stopped, loss, quantized, weights: weightsSize() })
  }
}

/**
 * Whether to go through the chat template at first: when the model has one and the page's first question, asked
 * through it, leaves the model room to answer (a tiny test model's 32 positions do not hold a system turn).
 */
function chatFits({ model, tokenizer }: Opened): boolean {
  const first = /^Q: (.*?)\\nA: /.exec(FIRST_TEXT)
  const prompt = first ? `Q: ${first[1]}\nA: ` : ''
  return tokenizer.hasChatTemplate && promptIds(tokenizer, prompt, true).length < model.contextSize
}

const fail = (): never => {
  throw new Error('open a model first')
}

/** The model in one line: architecture, size, and what the page will use of its tokenizer. */
function factsOf({ model, tokenizer, config }: Opened): string {
  const arch = String(config.model_type ?? model.constructor.name)
  const parameters = model.numParameters().toLocaleString('en-US')
  const chat = tokenizer.hasChatTemplate ? 'answers through its chat template' : 'no chat template: plain text'
  const context = `${model.contextSize}-token context`
  return `${arch}, ${parameters} parameters, ${tokenizer.vocabSize}-token vocabulary, ${context}; ${chat}`
}

/** The model's weights as held: its parameters' bytes (float32; a QLoRA layer's packed codes are not parameters). */
const weightsSize = () => mb(own ? tensorBytes(own.opened.model) : 0)

/** Bytes of the model's parameters and buffers as stored (float32, or packed codes for a quantized layer). */
function tensorBytes(model: nn.PretrainedModel): number {
  let bytes = 0
  for (const [, t] of model.namedParameters()) bytes += t.data.byteLength
  return bytes
}
