// Answer a prompt with a trained run's adapters, after mlx-lm's generate: the base model's answer, then the adapted
// model's (with --no-adapter the base alone, e.g. a fused model given as --base). The run is the newest in
// examples/out unless --adapter-path names one; `npm run generate -- --help` lists the flags (lib/flags.ts).
import { nn } from '../src/node'
import { parseFlags, helpText } from './lib/flags'
import {
  loadModel,
  quantizeBase,
  trainedBits,
  loadRunAdapters,
  setStrength,
  checkPrompt,
  answer,
  show,
} from './lib/model'
import { findRun } from './lib/runs'
import { runMain } from './lib/cli'

runMain(async () => {
  const flags = parseFlags('generate', process.argv.slice(2))
  if (flags === 'help') return console.log(helpText('generate'))
  if (flags.noAdapter && flags.adapterPath !== undefined)
    throw new Error('--no-adapter answers with the base alone: drop --adapter-path, or --no-adapter')
  const { model, tokenizer, basePath, who } = loadModel(flags.base)
  checkPrompt(flags.prompt, tokenizer, model.config.blockSize)
  const folder = flags.noAdapter ? null : findRun(flags.adapterPath)
  quantizeBase(model, folder ? trainedBits(folder) : null) // the base the adapters were trained on
  const baseAnswer = answer(model, tokenizer, flags)
  if (folder) {
    loadRunAdapters(model, folder, basePath, flags.adapterPath === undefined)
    setStrength(model, flags.adapterStrength) // before printTrainable, which shows the strength the answer uses
    nn.printTrainable(model)
  }
  show(who, flags.prompt, baseAnswer)
  if (!folder) return
  const strength = flags.adapterStrength === 1 ? '' : ` (adapter strength ${flags.adapterStrength})`
  show(`Adapted model${strength}`, flags.prompt, answer(model, tokenizer, flags))
})
