// Fold a run's adapters into the weights, after mlx-lm's fuse: W + scale·B·A becomes W, and the result is a base
// model of its own (fused.safetensors in the run folder, or --save-path) that answers without adapters; with --model
// a Hugging Face folder (fused_model/: config, model.safetensors in the source's dtype, tokenizer files). A run trained
// on a quantized base (QLoRA) is requantized, with a report of how much of ΔW the codes kept, then saved as floats.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { nn } from '../src/node'
import { parseFlags, helpText, FLAGS, checkModelFlags } from './lib/flags'
import { openBase, baseData, quantizeBase, trainedBits, loadRunAdapters } from './lib/model'
import { measuredBatches } from './lib/data'
import { saveHFFolder } from './lib/hf'
import { evaluate } from './lib/step'
import { saveBase } from './lib/checkpoint'
import { findRun, ADAPTERS } from './lib/runs'
import { shown } from './lib/paths'
import { runMain } from './lib/cli'

runMain(async () => {
  const flags = parseFlags('fuse', process.argv.slice(2))
  if (flags === 'help') return console.log(helpText('fuse'))
  checkModelFlags(flags)
  const base = openBase(flags)
  const { model, path: basePath } = base
  const folder = findRun(flags.adapterPath)
  const file = flags.savePath ?? join(folder, base.kind === 'hf' ? 'fused_model' : 'fused.safetensors')
  if (existsSync(file)) throw new Error(`${shown(file)} exists already: give --save-path FILE, or delete it first`)
  const bits = trainedBits(folder)
  quantizeBase(model, bits)
  loadRunAdapters(model, folder, basePath, flags.adapterPath === undefined)
  const data = baseData(base, { data: flags.data, mask: FLAGS.mask.default })
  if (base.kind === 'hf') data.evalBatch = 1 // a batch of one: no padding, and the least memory
  const testLoss = () => evaluate(model, measuredBatches(data, data.test)).toFixed(3)
  const adapted = testLoss()

  const { paths, reports } = nn.mergeLoRA(model, { keepQuantized: bits !== null })
  const r = Object.values(reports) // one per adapted layer whose base was quantized (too narrow a layer is not)
  if (bits !== null && r.length > 0) {
    const avg = (f: (x: nn.FuseReport) => number) => (100 * r.reduce((s, x) => s + f(x), 0)) / r.length
    const codes = `${avg((x) => x.codesChanged).toFixed(1)}% of codes changed`
    const retained = `${avg((x) => x.retained).toFixed(0)}% of dW retained on average`
    const below = `${avg((x) => x.groupsBelowHalfStep).toFixed(0)}% of groups saw a dW below half a step`
    const some = r.length === paths.length ? '' : ` (${r.length} on quantized bases)`
    console.log(`\nFused ${paths.length} layers${some} by requantizing W + dW: ${codes},\n  ${retained}, ${below}`)
    console.log(`Test loss of the requantized fused model: ${testLoss()}`)
  } else console.log(`\nFused ${paths.length} layers: W + scale·B·A`)
  for (const [path, m] of [...model.namedModules()])
    // what stays quantized is saved as floats
    if (m instanceof nn.QuantizedLinear) model.setModule(path, m.dequantize())

  if (base.kind === 'hf')
    saveHFFolder(file, base.model, basePath) // a failure names the file
  else saveBase(file, base.model, base.tokenizer, { fusedFrom: shown(join(folder, ADAPTERS)) })
  console.log(`Test loss ${adapted} with the adapters, ${testLoss()} fused. Wrote ${shown(file)}; answer with it:`)
  console.log(`  npm run generate -- --${base.kind === 'hf' ? 'model' : 'base'} ${shown(file)} --no-adapter`)
})
