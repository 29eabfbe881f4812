// mlx-lm's data formats for a Hugging Face model (examples/lib/hf-data.ts), in process: each line's format, the one
// line naming file:line for each wrong shape and for mixed formats, and --mask-prompt masking exactly the prompt's
// tokens — the loss sends no gradient to them and changes with every completion token.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { Tensor, crossEntropy, nn } from '../src/node'
import { lineFormat, readLines, loadHFData } from '../examples/lib/hf-data'
import { IGNORE } from '../examples/lib/batches'
import { exampleFlags, parseFlags, helpText } from '../examples/lib/flags'
import { checkpointLayers } from '../examples/lib/grad-checkpoint'
import { manualSeed } from '../src/random'

const LLAMA = join(import.meta.dirname, 'fixtures', 'example-hf', 'llama')
const GPT2 = join(import.meta.dirname, 'fixtures', 'example-hf', 'gpt2')
const dir = mkdtempSync(join(tmpdir(), 'tenny-hf-data-'))
process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
const quiet = <T>(f: () => T): T => {
  const log = console.log
  console.log = () => {}
  try {
    return f()
  } finally {
    console.log = log
  }
}

/** A data folder of these rows (each split the same), as jsonl. */
function dataDir(name: string, rows: unknown[]): string {
  const d = join(dir, name)
  mkdirSync(d, { recursive: true })
  for (const split of ['train', 'valid', 'test'])
    writeFileSync(join(d, `${split}.jsonl`), rows.map((r) => JSON.stringify(r)).join('\n') + '\n')
  return d
}

test('each line shape is read as mlx-lm reads it', () => {
  assert.is(lineFormat({ text: 'a b' }, 'f:1'), 'text')
  assert.is(lineFormat({ prompt: 'a', completion: 'b' }, 'f:1'), 'completions')
  assert.is(lineFormat({ messages: [{ role: 'user', content: 'a' }] }, 'f:1'), 'chat')
  assert.is(lineFormat({ messages: [{ role: 'user', content: 'a' }], tools: [{ type: 'function' }] }, 'f:1'), 'chat')
})

test('every wrong shape is refused in one line naming file:line and what was expected', () => {
  const bad: [unknown, RegExp][] = [
    [[1, 2], /f\.jsonl:3: expected an object/],
    ['text', /f\.jsonl:3: expected an object/],
    [{ txt: 'a' }, /f\.jsonl:3: expected \{"text": \.\.\.\}.*got keys \["txt"\]/],
    [{ text: '' }, /f\.jsonl:3: expected/],
    [{ prompt: 'a' }, /f\.jsonl:3: expected "prompt" and a non-empty "completion"/],
    [{ prompt: 1, completion: 'b' }, /f\.jsonl:3: expected "prompt" and a non-empty "completion"/],
    [{ messages: [] }, /f\.jsonl:3: "messages" must be a non-empty list/],
    [{ messages: 'hi' }, /f\.jsonl:3: "messages" must be a non-empty list/],
    [{ messages: [{ content: 'a' }] }, /f\.jsonl:3: messages\[0\] must be \{"role": string, "content": string\}/],
    [{ messages: [{ role: 'user', content: 'a' }], tools: 'x' }, /f\.jsonl:3: "tools" must be a list/],
  ]
  for (const [row, message] of bad) {
    const file = join(dir, 'f.jsonl')
    writeFileSync(file, `{"text": "fine"}\n\n${JSON.stringify(row)}\n`)
    assert.throws(
      () => readLines(file),
      (e: Error) => message.test(e.message) && !e.message.includes('\n'),
    )
  }
  const file = join(dir, 'bad-json.jsonl')
  writeFileSync(file, '{"text": "fine"}\n{"text": \n')
  assert.throws(() => readLines(file), /bad-json\.jsonl:2: not valid JSON/)
})

test('a file mixing formats is refused at the first line of another format, naming both lines', () => {
  const file = join(dir, 'mixed.jsonl')
  writeFileSync(file, '{"text": "a"}\n{"text": "b"}\n{"prompt": "c", "completion": "d"}\n')
  assert.throws(
    () => readLines(file),
    (e: Error) => /mixed\.jsonl:3: a completions line in a file of text lines \(.*mixed\.jsonl:1\)/.test(e.message),
  )
})

test('chat data on a model without a chat template is refused naming the line; completions then need none', () => {
  const gpt2 = nn.loadPretrained(GPT2).tokenizer!
  assert.not.ok(gpt2.hasChatTemplate, 'the GPT-2 fixture has no template')
  const chat = dataDir('chat-gpt2', [{ messages: [{ role: 'user', content: 'hi' }] }])
  const options = { maxLength: 128, maskPrompt: false, batchSize: 1 }
  assert.throws(
    () => quiet(() => loadHFData(chat, gpt2, options)),
    /train\.jsonl:1: chat data needs a chat template, and this model's tokenizer_config\.json has none/,
  )
  // prompt/completion without a template: the prompt's tokens, the completion's, then eos — prompt masked exactly
  const comp = dataDir('comp-gpt2', [{ prompt: 'the cat', completion: ' sat on the mat' }])
  const data = quiet(() => loadHFData(comp, gpt2, { ...options, maskPrompt: true }))
  const prompt = gpt2.encode('the cat'),
    completion = gpt2.encode(' sat on the mat', { addSpecialTokens: false })
  assert.equal(data.train[0], [...prompt, ...completion, gpt2.eosTokenId])
  const targets = Array.from(data.batch(data.train).targets.data)
  assert.equal(targets, [...prompt.slice(1).map(() => IGNORE), ...completion, gpt2.eosTokenId])
})

test('--mask-prompt masks exactly the prompt: no gradient reaches those positions, every completion token gets one', () => {
  const { tokenizer } = nn.loadPretrained(LLAMA)
  const rows = [
    { prompt: 'the cat', completion: 'sat on the mat' },
    {
      messages: [
        { role: 'user', content: 'a dog' },
        { role: 'assistant', content: 'ran far' },
      ],
    },
  ]
  for (const [i, row] of rows.entries()) {
    const data = quiet(() =>
      loadHFData(dataDir(`mask-${i}`, [row]), tokenizer!, { maxLength: 128, maskPrompt: true, batchSize: 1 }),
    )
    // the prompt as the template writes it, spelled out here: the user's turn and the assistant's header
    const user = 'prompt' in row ? row.prompt : row.messages![0].content
    const header = tokenizer!.encode(`<|im_start|>user\n${user}<|im_end|>\n<|im_start|>assistant\n`, {
      addSpecialTokens: false,
    })
    const ids = data.train[0]
    assert.equal(ids.slice(0, header.length), header, 'the conversation starts with the prompt')
    const batch = data.batch(data.train)
    const [, T] = batch.targets.shape
    assert.is(batch.tokens, ids.length - header.length, 'targets trained: the completion and what closes it')
    // gradient of the loss to each position's logits: zero exactly at the positions that predict prompt tokens
    const logits = new Tensor(
      Float32Array.from({ length: T * 320 }, (_, k) => Math.sin(k)),
      [1, T, 320],
      true,
    )
    crossEntropy(logits, batch.targets).backward()
    for (let t = 0; t < T; t++) {
      const row = logits.grad!.data.subarray(t * 320, (t + 1) * 320)
      const norm = row.reduce((s, g) => s + Math.abs(g), 0)
      if (t < header.length - 1) assert.is(norm, 0, `position ${t} predicts a prompt token: no gradient`)
      else assert.ok(norm > 1e-6, `position ${t} predicts a completion token: a gradient`)
    }
    // and the loss is blind to the prompt's targets: changing them all leaves it as it was
    const changed = new Tensor(batch.targets.data.slice(), batch.targets.shape)
    const before = crossEntropy(logits, batch.targets).item()
    for (let t = 0; t < header.length - 1; t++) changed.data[t] = (t * 7) % 320
    const masked = quiet(() =>
      loadHFData(dataDir(`mask-${i}`, [row]), tokenizer!, { maxLength: 128, maskPrompt: true, batchSize: 1 }),
    )
    assert.is(crossEntropy(logits, masked.batch(masked.train).targets).item(), before)
    assert.is.not(crossEntropy(logits, changed).item(), before, 'unmasked, those targets would count')
  }
})

test('examples longer than --max-seq-length are cut to it, and counted', () => {
  const { tokenizer } = nn.loadPretrained(LLAMA)
  const d = dataDir('long', [{ text: 'the cat sat on the mat '.repeat(8) }, { text: 'a dog' }])
  const lines: string[] = []
  const log = console.log
  console.log = (line: string) => lines.push(line)
  let data
  try {
    data = loadHFData(d, tokenizer!, { maxLength: 20, maskPrompt: false, batchSize: 1 })
  } finally {
    console.log = log
  }
  assert.is(data.train[0].length, 20)
  assert.ok(data.train[1].length < 20)
  const where = relative(process.cwd(), join(d, 'train.jsonl'))
  assert.ok(
    lines.some((l) => l.includes(`3 example(s) (first: ${where}:1) longer than 20 tokens`)),
    lines.join('\n'),
  )
  // with --mask-prompt, a prompt that fills the cut leaves nothing to train on: left out, and a split of only those
  // is refused (its loss would be 0 / 0)
  const long = dataDir('long-prompt', [{ prompt: 'the cat sat on the mat '.repeat(4), completion: 'yes' }])
  const masked = { maxLength: 20, maskPrompt: true, batchSize: 1 }
  assert.throws(
    () => quiet(() => loadHFData(long, tokenizer!, masked)),
    /train\.jsonl: no example has a completion token within the first 20 tokens/,
  )
})

test("--model's flags: mlx-lm's defaults where none is given, and the combinations that cannot work refused", () => {
  const f = exampleFlags(['--model', 'm', '--rank', '4'])
  if (f === 'help') throw new Error('help')
  assert.equal([f.rank, f.alpha, f.lr, f.batchSize, f.iters, f.loraLayers, f.mask], [4, 160, 1e-5, 4, 1000, 16, 'none'])
  const tiny = exampleFlags([])
  if (tiny === 'help') throw new Error('help')
  assert.equal([tiny.rank, tiny.batchSize, tiny.mask], [32, 16, 'name'], 'without --model: as before')
  const masked = exampleFlags(['--model', 'm', '--mask-prompt'])
  assert.is(masked !== 'help' && masked.mask, 'prompt')
  assert.throws(() => exampleFlags(['--model', 'm', '--base', 'b']), /--base and --model each name the model/)
  assert.throws(() => exampleFlags(['--model', 'm', '--mask', 'name']), /--mask is for the tiny model/)
  assert.throws(() => exampleFlags(['--chat']), /--chat goes with --model DIR/)
  assert.throws(() => exampleFlags(['--model', 'm', '--full']), /--full trains the tiny model only/)
  assert.ok(parseFlags('generate', ['--model', 'm', '--chat']) !== 'help')
  const help = helpText('example')
  assert.match(help, /--model DIR +a Hugging Face model folder/)
  assert.match(help, /--mask-prompt +train on the completion/)
  assert.match(help, /--rank N +LoRA rank \(default 32; with --model 8\)/)
})

test('--grad-checkpoint gives the same loss and the same gradients as the plain backward, with LoRA dropout', () => {
  const ids = new Tensor(
    Float32Array.from({ length: 2 * 12 }, (_, i) => (i * 37) % 320),
    [2, 12],
  )
  const targets = new Tensor(
    Float32Array.from({ length: 2 * 12 }, (_, i) => (i * 11 + 3) % 320),
    [2, 12],
  )
  const gradients = (checkpointed: boolean, dir: string) => {
    const { model } = nn.loadPretrained(dir)
    manualSeed(7)
    nn.applyLoRA(model, { targets: dir === LLAMA ? ['q_proj', 'v_proj'] : ['c_attn'], rank: 4, dropout: 0.3 })
    for (const [, a] of nn.loraAdapters(model)) a.loraB.data.fill(0.01) // B = 0 would give A no gradient
    if (checkpointed) assert.is(checkpointLayers(model), 2)
    model.train()
    manualSeed(11) // the same dropout masks in both runs
    const loss = crossEntropy(model.forward(ids), targets)
    loss.backward()
    return { loss: loss.item(), grads: model.trainableParameters().map((p) => Array.from(p.grad!.data)) }
  }
  for (const dir of [LLAMA, GPT2]) {
    const plain = gradients(false, dir),
      checkpointed = gradients(true, dir)
    assert.is(checkpointed.loss, plain.loss)
    assert.equal(checkpointed.grads, plain.grads)
    assert.ok(
      plain.grads.every((g) => g.some((x) => x !== 0)),
      'every adapter got a gradient',
    )
  }
})

test.run()
