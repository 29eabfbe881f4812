// The fine-tune example's flags, after MLX's lora.py: what each one means (HELP), its default, and its check,
// read once into one typed object. Bad values are one clear error before anything is loaded or written.
import { parseArgs } from 'node:util'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { numberFlag } from './cli'
import type { MaskMode } from './data'

const examples = join(dirname(fileURLToPath(import.meta.url)), '..')
/** The seed tutorial's question, asked of tenny. */
export const DEFAULT_PROMPT = 'Q: What is relu in tenny?\nA: '
// Every Linear: the four attention projections and the MLP of each block, and the LM head (docstrings use
// characters, such as ( ) * _ `, far more often than English does; the head adapts to that fastest).
const TARGETS = 'qProj,kProj,vProj,outProj,fc,proj,lmHead'

export const HELP = `npm run example -- [options]   (none: fine-tune, test, and answer the default prompt)
Modes (any combination; none = --train --test and the default prompt; --fuse alone fuses a run):
  --train                  LoRA fine-tune the base on --data; save the adapters in a new run folder
  --test                   test loss and perplexity, base vs adapted
  --prompt TEXT            answer TEXT (\\n is a newline) with the base and the adapted model
Generation:
  --temp X                 sampling temperature: 0 = always the likeliest character (default 0)
  --max-tokens N           most characters to generate, stops at a newline (default 60)
  --adapter-strength X     scale the adapters' ΔW when answering, e.g. 0.7 (default 1)
Files:
  --base FILE              base checkpoint (default examples/base/base.safetensors)
  --data DIR               train/valid/test.jsonl of {"text": ...} lines (default examples/data)
  --adapter-path DIR       the run folder: a training run writes adapters.safetensors, run.json and
                           loss.svg there (default examples/out/<date-time>, never another run's);
                           other runs read it (default: the newest run in examples/out)
  --resume-adapter-file F  start training from these adapters (their rank, alpha and layers)
  --no-adapter             answer (and --test) with the base alone, e.g. a fused model as --base
Training:
  --iters N                optimizer steps (default 1000)
  --batch-size N           examples per step (default 16)
  --lr X                   peak learning rate; warmup, then cosine decay to a tenth (default 1e-2)
  --rank N, --alpha X      LoRA rank and alpha; scale = alpha / rank (default 32, 64)
  --lora-layers N          adapt the last N blocks (default: all)
  --lora-dropout X         dropout on the adapters' input while training (default 0)
  --label-smoothing X      train toward (1 - X)·target + X·uniform (default 0.1)
  --mask name|prompt|none  what the loss skips: the function name in each question (default), the
                           whole question (mlx-lm's --mask-prompt), or nothing
  --targets LIST           layers to adapt, comma-separated
                           (default ${TARGETS})
  --use-dora               DoRA: also train a magnitude per output row (PEFT's use_dora)
  --steps-per-eval N       validation loss every N steps; the best adapters are kept (default 100)
  --patience N             stop after N evaluations without a new best (default: never)
  --quantize 4|8           QLoRA: quantize the base's Linear layers first
  --full                   train every weight instead, to compare (writes full-model.safetensors)
  --fuse                   write the merged model fused.safetensors into the run folder (a fidelity
                           report if quantized): with --train after training, alone for a saved run
  --seed N                 random seed (default 0)
  -h, --help               this text`

/** Every setting of one run of the example. */
export type Flags = {
  train: boolean
  test: boolean
  ask: boolean
  prompt: string
  temp: number
  maxTokens: number
  strength: number
  base?: string
  data: string
  adapterPath?: string
  resume?: string
  noAdapter: boolean
  iters: number
  batchSize: number
  lr: number
  rank: number
  alpha: number
  loraLayers?: number
  loraDropout: number
  smoothing: number
  mask: MaskMode
  targets: string[]
  useDora: boolean
  stepsPerEval: number
  patience: number
  quantize: 4 | 8 | null
  full: boolean
  fuse: boolean
  seed: number
  /** the flags given on the command line (a resumed run refuses a --rank that is not its file's) */
  given: Set<string>
}

const OPTIONS = {
  train: { type: 'boolean' },
  test: { type: 'boolean' },
  prompt: { type: 'string' },
  temp: { type: 'string' },
  'max-tokens': { type: 'string' },
  'num-tokens': { type: 'string' },
  'adapter-strength': { type: 'string' },
  base: { type: 'string' },
  data: { type: 'string' },
  'adapter-path': { type: 'string' },
  'adapter-file': { type: 'string' },
  'resume-adapter-file': { type: 'string' },
  'no-adapter': { type: 'boolean' },
  iters: { type: 'string' },
  'batch-size': { type: 'string' },
  lr: { type: 'string' },
  rank: { type: 'string' },
  alpha: { type: 'string' },
  'lora-layers': { type: 'string' },
  'lora-dropout': { type: 'string' },
  'label-smoothing': { type: 'string' },
  mask: { type: 'string' },
  targets: { type: 'string' },
  'use-dora': { type: 'boolean' },
  'steps-per-eval': { type: 'string' },
  patience: { type: 'string' },
  quantize: { type: 'string' },
  full: { type: 'boolean' },
  fuse: { type: 'boolean' },
  seed: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

/** The flags in `argv`, checked; 'help' for -h / --help. */
export function parseFlags(argv: string[]): Flags | 'help' {
  const { values: v } = parseArgs({ args: argv, options: OPTIONS })
  if (v.help) return 'help'
  if (v['adapter-file'] !== undefined)
    throw new Error('--adapter-file is now --adapter-path DIR: the run folder that holds adapters.safetensors')
  const demo = !v.train && !v.test && v.prompt === undefined && !v['no-adapter'] && !v.fuse
  const num = (name: keyof typeof v, fallback: string, range: { integer?: boolean; min?: number; max?: number } = {}) =>
    numberFlag(name, typeof v[name] === 'string' ? v[name] : fallback, range)
  const flags: Flags = {
    train: demo || !!v.train,
    test: demo || !!v.test,
    ask: demo || !!v.train || v.prompt !== undefined || !!v['no-adapter'],
    prompt: v.prompt === undefined ? DEFAULT_PROMPT : v.prompt.replace(/\\n/g, '\n'),
    temp: num('temp', '0', { min: 0 }),
    maxTokens: numberFlag(
      v['num-tokens'] !== undefined ? 'num-tokens' : 'max-tokens',
      v['num-tokens'] ?? v['max-tokens'] ?? '60',
      { integer: true, min: 1 },
    ),
    strength: num('adapter-strength', '1'),
    base: v.base,
    data: v.data ?? join(examples, 'data'),
    adapterPath: v['adapter-path'],
    resume: v['resume-adapter-file'],
    noAdapter: !!v['no-adapter'],
    iters: num('iters', '1000', { integer: true, min: 1 }),
    batchSize: num('batch-size', '16', { integer: true, min: 1 }),
    lr: num('lr', '1e-2', { min: 0 }),
    rank: num('rank', '32', { integer: true, min: 1 }),
    alpha: num('alpha', '64'),
    loraLayers: v['lora-layers'] === undefined ? undefined : num('lora-layers', '', { integer: true, min: 1 }),
    loraDropout: num('lora-dropout', '0', { min: 0, max: 0.99 }),
    smoothing: num('label-smoothing', '0.1', { min: 0, max: 0.99 }),
    mask: maskMode(v.mask ?? 'name'),
    targets: (v.targets ?? TARGETS)
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean),
    useDora: !!v['use-dora'],
    stepsPerEval: num('steps-per-eval', '100', { integer: true, min: 1 }),
    patience: v.patience === undefined ? Infinity : num('patience', '', { integer: true, min: 1 }),
    quantize: v.quantize === undefined ? null : bits(v.quantize),
    full: !!v.full,
    fuse: !!v.fuse,
    seed: num('seed', '0', { integer: true }),
    given: new Set(Object.keys(v)),
  }
  checkCombinations(flags)
  return flags
}

function maskMode(s: string): MaskMode {
  if (s !== 'name' && s !== 'prompt' && s !== 'none')
    throw new Error(`--mask must be name, prompt or none, got ${JSON.stringify(s)}`)
  return s
}

function bits(s: string): 4 | 8 {
  if (s.trim() === '4') return 4
  if (s.trim() === '8') return 8
  throw new Error(`--quantize must be 4 or 8, got ${s}`)
}

/** Flags that cannot go together, and prompts that cannot be answered. */
function checkCombinations(f: Flags): void {
  if (f.prompt === '')
    throw new Error(
      `--prompt is empty: give the text to continue, e.g. --prompt "${DEFAULT_PROMPT.replace('\n', '\\n')}"`,
    )
  if (f.full && (f.quantize !== null || f.resume || f.fuse || f.useDora))
    throw new Error(
      '--full trains every weight of a float model: it cannot be combined with --quantize, --resume-adapter-file, --fuse or --use-dora',
    )
  if (f.full && !f.train) throw new Error('--full is a way to train: add --train')
  if (f.noAdapter && (f.train || f.resume))
    throw new Error(
      '--no-adapter answers with the base alone: it cannot be combined with --train or --resume-adapter-file',
    )
  if (f.resume && !f.train)
    throw new Error(
      '--resume-adapter-file continues training: add --train (to answer with adapters, give --adapter-path)',
    )
  if (f.targets.length === 0) throw new Error('--targets is empty: name at least one layer, e.g. qProj,vProj')
}
