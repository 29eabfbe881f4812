// Answer a prompt with a trained run's adapters, after mlx-lm's generate: the base model's answer, then the adapted
// model's (with --no-adapter the base alone, e.g. a fused model given as --base or --model). The run is the newest
// in examples/out unless --adapter-path names one; `npm run generate -- --help` lists the flags (lib/flags.ts).
import { nn } from '../src/node'
import { parseFlags, helpText, withModelDefaults, checkModelFlags } from './lib/flags'
import { openBase, quantizeBase, trainedBits, loadRunAdapters, setStrength } from './lib/model'
import { checkBasePrompt, baseAnswer, show } from './lib/model'
import { findRun, checkBase } from './lib/runs'
import { runMain } from './lib/cli'

runMain(async () => {
  const parsed = parseFlags('generate', process.argv.slice(2))
  if (parsed === 'help') return console.log(helpText('generate'))
  const flags = withModelDefaults(parsed)
  checkModelFlags(flags)
  if (flags.noAdapter && flags.adapterPath !== undefined)
    throw new Error('--no-adapter answers with the base alone: drop --adapter-path, or --no-adapter')
  const base = openBase(flags)
  checkBasePrompt(base, flags.prompt, flags.chat)
  const folder = flags.noAdapter ? null : findRun(flags.adapterPath)
  if (folder) checkBase(folder, base.path) // adapters of another model: refused before anything is generated
  quantizeBase(base.model, folder ? trainedBits(folder) : null) // the base the adapters were trained on
  const baseReply = baseAnswer(base, flags)
  if (folder) {
    loadRunAdapters(base.model, folder, base.path, flags.adapterPath === undefined)
    setStrength(base.model, flags.adapterStrength) // before printTrainable, which shows the strength the answer uses
    nn.printTrainable(base.model)
  }
  show(base.who, flags.prompt, baseReply)
  if (!folder) return
  const strength = flags.adapterStrength === 1 ? '' : ` (adapter strength ${flags.adapterStrength})`
  show(`Adapted model${strength}`, flags.prompt, baseAnswer(base, flags))
})
