// How much of the fine-tune data the adapted model recalls: ask every question of a split, greedily, and compare
// the answer with the docstring it was trained on.   npx tsx examples/recall.ts [--split train|valid|test] [--show]
//   [--adapter-path DIR (default: the newest run in examples/out)] [--base FILE --no-adapter] (a full or fused model)
// Loss says how surprised the model is on average; this says what a user sees when asking.
import { join } from 'node:path'
import { readJsonl } from './lib/data'
import { parseFlags, helpText } from './lib/flags'
import { loadModel, quantizeBase, trainedBits, loadRunAdapters, answer } from './lib/model'
import { findRun } from './lib/runs'
import { DATA_DIR } from './lib/paths'
import { runMain } from './lib/cli'

runMain(async () => {
  const flags = parseFlags('recall', process.argv.slice(2))
  if (flags === 'help') return console.log(helpText('recall'))
  const { model, tokenizer, basePath } = loadModel(flags.base)
  if (!flags.noAdapter) {
    const run = findRun(flags.adapterPath)
    quantizeBase(model, trainedBits(run)) // the base its adapters were trained on
    loadRunAdapters(model, run, basePath, flags.adapterPath === undefined)
  }
  model.eval()
  let firstWord = 0,
    firstTwo = 0,
    exact = 0
  const examples = readJsonl(join(flags.data ?? DATA_DIR, `${flags.split}.jsonl`))
  for (const { text } of examples) {
    const cut = text.indexOf('\nA: ') + 4 // the question and its 'A: ' are the prompt; the rest is the answer
    const [prompt, want] = [text.slice(0, cut), text.slice(cut)]
    const got = answer(model, tokenizer, { prompt, maxTokens: model.config.blockSize, temp: 0, seed: 0 })
    const [w, g] = [want.split(' '), got.split(' ')]
    if (w[0] === g[0]) firstWord++
    if (w[0] === g[0] && w[1] === g[1]) firstTwo++
    if (got === want) exact++
    const sign = got === want ? '=' : w[0] === g[0] ? '~' : 'x'
    if (flags.show) console.log(`${sign} ${prompt.slice(3, -4)}\n    trained: ${want}\n    answers: ${got}`)
  }
  const n = examples.length,
    pct = (k: number) => `${k} (${Math.round((100 * k) / n)}%)`
  const starts = `the answer starts with the right word: ${pct(firstWord)}, the right two words: ${pct(firstTwo)}`
  console.log(`${flags.split}: ${n} questions; ${starts}; exactly right: ${pct(exact)}`)
})
