// How much of the fine-tune data the adapted model recalls: ask every question of a split, greedily, and compare
// the answer with the docstring it was trained on.   npx tsx examples/recall.ts [--split train|valid|test] [--show]
//   [--adapter-path DIR (default: the newest run in examples/out)] [--base FILE --no-adapter] (a full or fused model)
// Loss says how surprised the model is on average; this says what a user sees when asking.
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Tensor, nn } from '../src/node'
import { loadBase } from './lib/checkpoint'
import { readJsonl } from './lib/data'
import { BASE_PATH } from './pretrain'
import { runMain } from './lib/cli'
import { findRun, checkBase, readRun, shown, ADAPTERS } from './lib/runs'

runMain(async () => {
  const here = import.meta.dirname
  const { values: v } = parseArgs({
    options: {
      split: { type: 'string', default: 'train' },
      show: { type: 'boolean' },
      'no-adapter': { type: 'boolean' },
      base: { type: 'string', default: BASE_PATH },
      'adapter-path': { type: 'string' },
      data: { type: 'string', default: join(here, 'data') },
    },
  })
  const { model, tokenizer } = loadBase(v.base!)
  if (!v['no-adapter']) {
    const run = findRun(v['adapter-path'])
    checkBase(run, v.base!)
    const bits = readRun(run)?.training.quantize
    if (bits === 4 || bits === 8) nn.quantize(model, { bits, groupSize: 64 }) // the base its adapters were trained on
    nn.loadAdapters(model, join(run, ADAPTERS)) // wraps the adapter's layers in LoRALinear and installs A and B
    console.log(`Adapters: ${shown(run)}`)
  }
  model.eval()
  let firstWord = 0,
    firstTwo = 0,
    exact = 0
  const examples = readJsonl(join(v.data!, `${v.split}.jsonl`))
  for (const { text } of examples) {
    const cut = text.indexOf('\nA: ') + 4 // the question and its 'A: ' are the prompt; the rest is the answer
    const [prompt, want] = [text.slice(0, cut), text.slice(cut)]
    const ids = tokenizer.encode(prompt)
    const out = model.generate(
      new Tensor(Float32Array.from(ids), [1, ids.length]),
      model.config.blockSize - ids.length,
      { temperature: 0 },
    )
    const got = tokenizer.decode(out.data.subarray(ids.length)).split('\n')[0]
    const [w, g] = [want.split(' '), got.split(' ')]
    if (w[0] === g[0]) firstWord++
    if (w[0] === g[0] && w[1] === g[1]) firstTwo++
    if (got === want) exact++
    if (v.show)
      console.log(
        `${got === want ? '=' : w[0] === g[0] ? '~' : 'x'} ${prompt.slice(3, -4)}\n    trained: ${want}\n    answers: ${got}`,
      )
  }
  const n = examples.length,
    pct = (k: number) => `${k} (${Math.round((100 * k) / n)}%)`
  console.log(
    `${v.split}: ${n} questions; the answer starts with the right word: ${pct(firstWord)}, the right two words: ${pct(firstTwo)}; exactly right: ${pct(exact)}`,
  )
})
