// The example scripts on a Hugging Face folder (--model), as child processes with tiny settings, on the random-weight
// Llama (chat template) and GPT-2 (none) of test/fixtures/example-hf: each data format trains, with and without
// --mask-prompt; run.json is in tokens and names the model; a run resumes on its model and is refused on another;
// generate answers through the tokenizer; fuse writes a folder that loadPretrained reads back with the adapted logits.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { cpSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Tensor, nn } from '../src/node'
import { modelHash, answerHF } from '../examples/lib/hf'
import { example, generate, fuse, failsClearly, root, type Run } from './example-helpers'

const LLAMA = join(root, 'test', 'fixtures', 'example-hf', 'llama')
const GPT2 = join(root, 'test', 'fixtures', 'example-hf', 'gpt2')
const dir = mkdtempSync(join(tmpdir(), 'tenny-example-hf-'))
process.on('exit', () => rmSync(dir, { recursive: true, force: true }))

// a small vocabulary of words, so that a few steps at a high rate lower the loss of held-out lines too
const WORDS = 'the cat sat on a mat dog ran far blue sky red sun'.split(' ')
const words = (seed: number, n: number) => Array.from({ length: n }, (_, i) => WORDS[(seed * 7 + i * 5) % 13]).join(' ')
const ROWS = {
  text: (i: number) => ({ text: words(i, 8) }),
  completions: (i: number) => ({ prompt: words(i, 3), completion: words(i + 1, 4) }),
  chat: (i: number) => ({
    messages: [
      { role: 'user', content: words(i, 3) },
      { role: 'assistant', content: words(i + 2, 4) },
    ],
  }),
}
type Format = keyof typeof ROWS

/** train (12 lines), valid and test (4 each) of one format. */
function dataOf(format: Format, rows = ROWS[format]): string {
  const d = join(dir, `data-${format}`)
  mkdirSync(d, { recursive: true })
  const lines = (from: number, n: number) => Array.from({ length: n }, (_, i) => JSON.stringify(rows(from + i)))
  writeFileSync(join(d, 'train.jsonl'), lines(0, 12).join('\n') + '\n')
  writeFileSync(join(d, 'valid.jsonl'), lines(12, 4).join('\n') + '\n')
  writeFileSync(join(d, 'test.jsonl'), lines(16, 4).join('\n') + '\n')
  return d
}

let runs = 0
/** Train on `model` and `data` for 6 steps; the run's folder and its run.json. */
function train(model: string, data: string, ...extra: string[]): { run: Run; folder: string; record: any } {
  const folder = join(dir, `run-${runs++}`)
  const args = ['--model', model, '--data', data, '--iters', '6', '--steps-per-eval', '3', '--lr', '1e-2']
  const run = example(...args, '--adapter-path', folder, ...extra)
  assert.is(run.status, 0, run.stderr)
  return { run, folder, record: JSON.parse(readFileSync(join(folder, 'run.json'), 'utf8')) }
}

/** What every run on a Hugging Face model shows: tokens, the model's hash, and a validation loss that fell. */
function checkRun({ run, record }: ReturnType<typeof train>, model: string, format: Format): void {
  assert.match(run.stdout, new RegExp(`formats: train ${format}, valid ${format}, test ${format}`))
  assert.match(run.stdout, /tokens\/s\)/)
  assert.match(run.stdout, /\nLoss per token \(nats\):\n {18} +base +end: 6 +kept: \d\s/, 'the summary is per token')
  assert.match(run.stdout, /\nLoss per token \(nats\) by step:/)
  assert.is(record.base.sha256, modelHash(model))
  assert.is(record.training.model, model)
  assert.ok(record.trained.tokens > 0 && record.trained.tokensPerSecond > 0, JSON.stringify(record.trained))
  assert.ok(
    record.kept.valid < record.before.valid,
    `validation loss fell: ${record.before.valid} → ${record.kept.valid}`,
  )
}

/** The share --mask-prompt printed, in percent. */
const maskedShare = (run: Run) =>
  Number(/--mask-prompt: \d+ of \d+ training targets \(([\d.]+)%\)/.exec(run.stdout)?.[1])

const trained: Record<string, ReturnType<typeof train>> = {}

test('the Llama fixture trains on text, completions and chat, --mask-prompt masking the prompts', () => {
  checkRun((trained.text = train(LLAMA, dataOf('text'))), LLAMA, 'text')
  assert.equal(trained.text.record.training.targets, ['q_proj', 'v_proj'], "mlx-lm's default targets")
  assert.is(trained.text.record.training.rank, 8)
  assert.not.match(trained.text.run.stdout, /--mask-prompt:/)
  for (const format of ['completions', 'chat'] as const) {
    const masked = (trained[format] = train(LLAMA, dataOf(format), '--mask-prompt'))
    checkRun(masked, LLAMA, format)
    assert.ok(maskedShare(masked.run) > 20 && maskedShare(masked.run) < 90, masked.run.stdout)
    assert.is(masked.record.training.maskPrompt, true)
  }
})

test('the GPT-2 fixture trains on text (QLoRA), completions without a template, and chat with one added', () => {
  const text = (trained.qlora = train(GPT2, dataOf('text'), '--quantize', '4'))
  checkRun(text, GPT2, 'text')
  assert.match(text.run.stdout, /Quantized \d+ Linear layers to 4 bits/)
  assert.equal(text.record.training.targets, ['c_attn'])
  assert.is(text.record.training.quantize, 4)
  const completions = (trained.gpt2 = train(GPT2, dataOf('completions'), '--mask-prompt'))
  checkRun(completions, GPT2, 'completions')
  // chat on GPT-2 needs a template: a copy of the fixture with the Llama fixture's (the same tokenizer)
  const withTemplate = join(dir, 'gpt2-chat')
  cpSync(GPT2, withTemplate, { recursive: true })
  const config = JSON.parse(readFileSync(join(GPT2, 'tokenizer_config.json'), 'utf8'))
  const template = JSON.parse(readFileSync(join(LLAMA, 'tokenizer_config.json'), 'utf8')).chat_template
  writeFileSync(join(withTemplate, 'tokenizer_config.json'), JSON.stringify({ ...config, chat_template: template }))
  checkRun(train(withTemplate, dataOf('chat'), '--mask-prompt'), withTemplate, 'chat')
})

test('bad data and chat on a model without a template are refused in one line naming file and line', () => {
  // each wrong shape and mixed formats: test/example-hf-data.test.ts, in process; here the line the user sees
  const args = ['--iters', '1', '--adapter-path', join(dir, 'never')]
  failsClearly(
    example('--model', GPT2, '--data', dataOf('chat'), ...args),
    /train\.jsonl:1: chat data needs a chat template/,
  )
  failsClearly(example('--model', LLAMA, '--data', dataOf('text'), '--mask-prompt', ...args), /holds text lines/)
})

test('a run resumes on its own model and is refused on another', () => {
  const adapters = join(trained.text.folder, 'adapters.safetensors')
  const resumed = train(LLAMA, dataOf('text'), '--resume-adapter-file', adapters)
  assert.match(resumed.run.stdout, /Resuming from .*adapters\.safetensors \(rank 8, scale 20\)/)
  failsClearly(generate('--model', GPT2, '--adapter-path', trained.text.folder), /was trained on another base model/)
})

test('generate answers through the tokenizer and the chat template, as the adapted model in process does', () => {
  const folder = trained.chat.folder
  const run = generate(
    '--model',
    LLAMA,
    '--adapter-path',
    folder,
    '--prompt',
    'the cat',
    '--chat',
    '--max-tokens',
    '12',
  )
  assert.is(run.status, 0, run.stderr)
  const { model, tokenizer } = nn.loadPretrained(LLAMA)
  nn.loadAdapters(model, join(folder, 'adapters.safetensors'))
  // spelled out here: the user's turn and the assistant's header, 12 greedy tokens, cut at <|im_end|> (id 2)
  const prompt = tokenizer!.encode('<|im_start|>user\nthe cat<|im_end|>\n<|im_start|>assistant\n', {
    addSpecialTokens: false,
  })
  const out = model.generate(new Tensor(Float32Array.from(prompt), [1, prompt.length]), 12, { temperature: 0 })
  const tokens = Array.from(out.data.subarray(prompt.length))
  const end = tokens.indexOf(2)
  const expected = tokenizer!.decode(end < 0 ? tokens : tokens.slice(0, end), { skipSpecialTokens: true })
  assert.ok(run.stdout.endsWith(`Adapted model:\nthe cat${expected}\n`), `${run.stdout}\nexpected …${expected}`)
  const flags = { prompt: 'the cat', maxTokens: 12, temp: 0, seed: 0, chat: true }
  assert.is(answerHF(model, tokenizer!, flags), expected, 'lib/hf.ts answers the same in process')
  // an answer stops at eos: the 4th token forced to eos and every later one to id 100, the answer is the first 3
  const first3 = answerHF(model, tokenizer!, { ...flags, prompt: 'a dog', maxTokens: 3 })
  const head = model.head.bind(model)
  let calls = 0
  model.head = (h: Tensor) => {
    const logits = head(h) // (1, 1, 320): one call per generated token
    const k = calls++
    if (k >= 3) logits.data[k === 3 ? 2 : 100] = 1e4
    return logits
  }
  assert.is(answerHF(model, tokenizer!, { ...flags, prompt: 'a dog' }), first3)
  assert.is(calls, 12, 'it generated on past eos (maxTokens), and cut the answer there')
})

test('fuse writes a Hugging Face folder that loadPretrained reads back with the adapted logits', () => {
  for (const [source, folder, dtype, tolerance] of [
    [LLAMA, trained.chat.folder, 'F32', 1e-5],
    [GPT2, trained.gpt2.folder, 'F16', 0.05],
  ] as const) {
    const run = fuse('--model', source, '--adapter-path', folder, '--data', dataOf('text'))
    assert.is(run.status, 0, run.stderr)
    const fused = join(folder, 'fused_model')
    assert.match(run.stdout, /npm run generate -- --model .*fused_model --no-adapter/)
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json'])
      assert.equal(readFileSync(join(fused, f)), readFileSync(join(source, f)), `${f} copied`)
    const header = readFileSync(join(fused, 'model.safetensors'))
    const json = JSON.parse(header.subarray(8, 8 + Number(header.readBigUInt64LE(0))).toString())
    assert.ok(
      Object.entries(json).every(([k, v]: [string, any]) => k === '__metadata__' || v.dtype === dtype),
      `every weight is ${dtype}, the source's dtype`,
    )
    const adapted = nn.loadPretrained(source).model
    nn.loadAdapters(adapted, join(folder, 'adapters.safetensors'))
    const ids = new Tensor(Float32Array.from([5, 80, 200, 17, 33, 140, 2, 99]), [1, 8])
    const want = adapted.forward(ids).data,
      got = nn.loadPretrained(fused).model.forward(ids).data
    const base = nn.loadPretrained(source).model.forward(ids).data
    const diff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0)
    assert.ok(diff(want, got) < tolerance, `fused vs adapted logits: max |Δ| ${diff(want, got)}`)
    assert.ok(diff(want, base) > 10 * diff(want, got), 'the adapters changed the logits, and the fused model kept it')
  }
})

test('fuse on a QLoRA run requantizes the layers on quantized bases, then writes floats that load back', () => {
  // the fixture's down_proj (64 inputs) is the one layer groups of 64 quantize; q_proj and v_proj stay float
  const { folder } = train(LLAMA, dataOf('text'), '--quantize', '4', '--targets', 'q_proj,v_proj,down_proj')
  const run = fuse('--model', LLAMA, '--adapter-path', folder, '--data', dataOf('text'))
  assert.is(run.status, 0, run.stderr)
  const report = /Fused 6 layers \(2 on quantized bases\) by requantizing W \+ dW: \d+\.\d% of codes changed,\n {2}\d+%/
  assert.match(run.stdout, report)
  const { model } = nn.loadPretrained(join(folder, 'fused_model'))
  const logits = model.forward(new Tensor(Float32Array.from([5, 80, 200]), [1, 3])).data
  assert.ok(logits.every(Number.isFinite))
  // GPT-2's c_attn (32 inputs) was not quantized: a plain fuse, no report over no layers (it printed NaN% before)
  const gpt2 = fuse('--model', GPT2, '--adapter-path', trained.qlora.folder, '--data', dataOf('text'))
  assert.is(gpt2.status, 0, gpt2.stderr)
  assert.match(gpt2.stdout, /\nFused 2 layers: W \+ scale·B·A\n/)
  assert.not.match(gpt2.stdout, /NaN/)
})

test.run()
