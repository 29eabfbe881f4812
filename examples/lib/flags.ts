// The examples' flags in one table, after mlx-lm's: what each flag means, its default and how its text is read.
// Each script takes the flags SCRIPTS lists for it (and may set defaults of its own); its --help is written from
// this table, defaults included, so a default is stated once. A bad value is one clear error before anything is
// loaded or written. Browser-safe: the playground trains with these defaults too.
import type { MaskMode } from './batches'

/** The seed tutorial's question, asked of tenny. */
export const DEFAULT_PROMPT = 'Q: What is relu in tenny?\nA: '

/** One flag: its default, its help, and (for a flag that takes a value) the value's placeholder and reader. */
type Flag<T> = {
  default: T
  help: string
  arg?: string
  read?: (text: string, flag: string) => T
  /** what the default means, for a default that is no value to print (undefined, Infinity) */
  otherwise?: string
}

/** The number in flag --name, checked: "--iters must be an integer >= 1, got "abc"". */
export function numberFlag(name: string, text: string | undefined, range: Range = {}): number {
  const { integer = false, min = -Infinity, max = Infinity } = range
  const x = text === undefined || text.trim() === '' ? NaN : Number(text)
  if (Number.isFinite(x) && (!integer || Number.isInteger(x)) && x >= min && x <= max) return x
  const bounds = [min > -Infinity ? ` >= ${min}` : '', max < Infinity ? ` <= ${max}` : ''].filter(Boolean).join(' and')
  throw new Error(
    `--${name} must be ${integer ? 'an integer' : 'a number'}${bounds}, got ${JSON.stringify(text ?? '')}`,
  )
}
type Range = { integer?: boolean; min?: number; max?: number }

const on = (help: string): Flag<boolean> => ({ default: false, help })
const int = (value: number, help: string, min = 1): Flag<number> => ({
  default: value,
  help,
  arg: 'N',
  read: (text, name) => numberFlag(name, text, { integer: true, min }),
})
const real = (value: number, help: string, range: Range = {}): Flag<number> => ({
  default: value,
  help,
  arg: 'X',
  read: (text, name) => numberFlag(name, text, range),
})
const path = (arg: string, help: string, otherwise?: string): Flag<string | undefined> => ({
  default: undefined,
  help,
  arg,
  otherwise,
  read: (text, name) =>
    text !== '' ? text : refuse(`--${name} is empty: give a ${arg === 'DIR' ? 'folder' : 'file'}`),
})
/** One of `values`, as written. */
const oneOf = <T extends string>(values: readonly T[], value: T, help: string): Flag<T> => ({
  default: value,
  help,
  arg: values.join('|'),
  read: (text, name) =>
    values.find((v) => v === text) ?? refuse(`--${name} must be ${values.join(', ')}, got ${JSON.stringify(text)}`),
})

function refuse(message: string): never {
  throw new Error(message)
}

// Every Linear: the four attention projections and the MLP of each block, and the LM head (docstrings use
// characters, such as ( ) * _ `, far more often than English does; the head adapts to that fastest).
const TARGETS = ['qProj', 'kProj', 'vProj', 'outProj', 'fc', 'proj', 'lmHead']

/** Every flag of every example script, camelCased (batchSize is --batch-size), in the order --help lists them. */
export const FLAGS = {
  train: on('LoRA fine-tune the base on --data; save the adapters in a new run folder'),
  test: on('test loss and perplexity of the base and the adapted model (the run of --adapter-path)'),
  prompt: {
    default: DEFAULT_PROMPT,
    help: 'the text to continue; \\n is a newline',
    arg: 'TEXT',
    read: (text: string) =>
      text !== ''
        ? text.replace(/\\n/g, '\n')
        : refuse(`--prompt is empty: give the text to continue, e.g. --prompt ${JSON.stringify(DEFAULT_PROMPT)}`),
  },
  temp: real(0, 'sampling temperature: 0 = always the likeliest character', { min: 0 }),
  maxTokens: int(60, 'most characters to generate; an answer stops at a newline'),
  adapterStrength: real(1, "scale the adapters' ΔW when answering, e.g. 0.7"),
  base: path('FILE', 'the base checkpoint', 'examples/base/base.safetensors'),
  model: path('DIR', 'a Hugging Face model folder (config.json, model.safetensors, tokenizer.json) instead of --base'),
  chat: on("with --model: ask --prompt as a user's turn in the model's chat template"),
  data: path(
    'DIR',
    'train/valid/test.jsonl of {"text": ...} lines (with --model also {"prompt", "completion"} or {"messages"})',
    'examples/data',
  ),
  adapterPath: path(
    'DIR',
    "the run folder, never another run's: training saves its adapters, run.json and loss.svg there",
    'a new examples/out/<date-time> to train; to read, the newest run there',
  ),
  resumeAdapterFile: path('FILE', 'start training from these adapters (their rank, alpha and layers)'),
  savePath: path(
    'PATH',
    'where to write the fused model (with --model a folder)',
    'fused.safetensors, with --model fused_model/, in the run folder',
  ),
  noAdapter: on('the base alone, without adapters (e.g. a fused model as --base)'),
  // 1,200: the data grows with the API (135 lines on 2026-12-08, 111 when 1,000 was chosen); 1,000 steps on 135
  // lines recalled 65, 122 and 66 answers (seeds 0-2) and missed relu twice, 1,200 recall 119, 113 and 105 (README)
  iters: int(1200, 'optimizer steps'),
  batchSize: int(16, 'examples per step (pretrain: windows of a whole context)'),
  lr: real(1e-2, 'peak learning rate: a short warmup, then cosine decay to a tenth', { min: 0 }),
  rank: int(32, 'LoRA rank'),
  alpha: real(64, 'LoRA alpha: the update is scaled by alpha / rank'),
  loraLayers: {
    ...int(0, 'adapt the last N blocks'),
    default: undefined as number | undefined,
    otherwise: 'all; with --model 16',
  },
  loraDropout: real(0, "dropout on the adapters' input while training", { min: 0, max: 0.99 }),
  labelSmoothing: real(0.1, 'train toward (1 - X)·target + X·uniform', { min: 0, max: 0.99 }),
  mask: oneOf<MaskMode>(
    ['name', 'prompt', 'none'],
    'name',
    "what the loss skips: each question's function name, the whole question (mlx-lm's --mask-prompt) or nothing",
  ),
  maskPrompt: on("train on the completion (a chat's last turn) only, mlx-lm's flag (the tiny model: --mask prompt)"),
  gradCheckpoint: on("with --model: keep each adapted layer's input only, and run it again for the backward"),
  maxSeqLength: int(2048, 'with --model: examples longer than N tokens are cut to N', 2),
  targets: {
    default: TARGETS,
    help: 'the layers to adapt, comma-separated',
    arg: 'LIST',
    read: (text: string) => {
      const names = text.split(',').map((t) => t.trim())
      return names.every(Boolean) ? names : refuse('--targets names an empty layer: give names like qProj,vProj')
    },
  },
  useDora: on("DoRA: also train a magnitude per output row (PEFT's use_dora)"),
  stepsPerEval: int(100, 'validation loss every N steps; the adapters of the lowest are kept'),
  valBatches: {
    ...int(0, "measure each split's loss on its first N batches (mlx-lm's --val-batches)"),
    default: Infinity,
    otherwise: 'all; with --model 25',
  },
  patience: { ...int(0, 'stop after N evaluations without a new best'), default: Infinity, otherwise: 'never' },
  quantize: {
    default: null as 4 | 8 | null,
    help: "QLoRA: quantize the base's Linear layers first",
    arg: '4|8',
    read: (text: string) => (text === '4' ? 4 : text === '8' ? 8 : refuse(`--quantize must be 4 or 8, got ${text}`)),
  },
  full: on('train every weight instead, to compare (writes full-model.safetensors)'),
  seed: int(0, 'random seed', -Infinity),
  nLayer: int(2, 'blocks of the model'),
  nHead: int(4, 'attention heads per block'),
  nEmbd: int(64, 'channels (the width of the model)'),
  out: path('FILE', 'where to write the checkpoint', 'examples/base/base.safetensors'),
  split: oneOf(['train', 'valid', 'test'], 'train', 'the questions to ask: those of this split'),
  show: on('print every question, the trained answer and the answer given'),
} satisfies Record<string, Flag<unknown>>

export type Name = keyof typeof FLAGS
type Value<N extends Name> = (typeof FLAGS)[N]['default']

/** What a script does, the flags it takes, and its own defaults where they differ from the table's. */
type ScriptSpec<N extends Name> = {
  command: string
  about: string
  flags: readonly N[]
  defaults?: { [K in N]?: Value<K> }
}
const spec = <N extends Name>(s: ScriptSpec<N>) => s

/** The example scripts (mlx-lm's lora, generate and fuse, and pretraining the base) and their flags. */
export const SCRIPTS = {
  example: spec({
    command: 'npm run example',
    about: 'none: --train --test, and the default prompt before and after',
    flags: [
      'train',
      'test',
      'prompt',
      'temp',
      'maxTokens',
      'chat',
      'base',
      'model',
      'data',
      'adapterPath',
      'resumeAdapterFile',
      'noAdapter',
      'iters',
      'batchSize',
      'lr',
      'rank',
      'alpha',
      'loraLayers',
      'loraDropout',
      'labelSmoothing',
      'mask',
      'maskPrompt',
      'maxSeqLength',
      'gradCheckpoint',
      'targets',
      'useDora',
      'stepsPerEval',
      'valBatches',
      'patience',
      'quantize',
      'full',
      'seed',
    ],
  }),
  generate: spec({
    command: 'npm run generate',
    about: "none: the newest run's answer to the default prompt",
    flags: [
      'prompt',
      'temp',
      'maxTokens',
      'chat',
      'adapterStrength',
      'base',
      'model',
      'adapterPath',
      'noAdapter',
      'seed',
    ],
  }),
  fuse: spec({
    command: 'npm run fuse',
    about: "none: fold the newest run's adapters into its weights",
    flags: ['base', 'model', 'adapterPath', 'savePath', 'data'],
  }),
  recall: spec({
    command: 'npx tsx examples/recall.ts',
    about: 'none: how many trained answers the newest run recalls',
    flags: ['split', 'show', 'base', 'adapterPath', 'noAdapter', 'data'],
  }),
  pretrain: spec({
    command: 'npm run pretrain',
    about: 'train the base model on English sentences, a few minutes',
    flags: ['iters', 'batchSize', 'lr', 'nLayer', 'nHead', 'nEmbd', 'seed', 'out'],
    defaults: { iters: 1400, batchSize: 8, seed: 1337 },
  }),
}
export type Script = keyof typeof SCRIPTS

/**
 * With --model, mlx-lm's lora defaults where the tiny model's differ (a flag given on the command line wins): rank 8
 * at scale 20 (alpha 160) on the last 16 layers, learning rate 1e-5, 4 examples per step, no label smoothing.
 */
export const MODEL_DEFAULTS: { [N in Name]?: Value<N> } = {
  iters: 1000,
  batchSize: 4,
  lr: 1e-5,
  rank: 8,
  alpha: 160,
  loraLayers: 16,
  labelSmoothing: 0,
  stepsPerEval: 200,
  valBatches: 25,
  maxTokens: 100,
  mask: 'none',
  targets: ['q_proj', 'v_proj'], // GPT-2's c_attn (lib/hf.ts defaultTargets): what --help shows is Llama's
}

/** The flags with --model's defaults in place of those not given; without --model, unchanged. */
export function withModelDefaults<F extends { given: Set<Name>; model?: string }>(flags: F): F {
  if (flags.model === undefined) return flags
  const own = Object.entries(MODEL_DEFAULTS).filter(([n]) => n in flags && !flags.given.has(n as Name))
  return { ...flags, ...Object.fromEntries(own) }
}
type NameOf<S extends Script> = (typeof SCRIPTS)[S] extends ScriptSpec<infer N> ? N : never

/** The default of flag `name` in `script`. */
function defaultOf(script: Script, name: Name): unknown {
  const own: Partial<Record<Name, unknown>> = SCRIPTS[script].defaults ?? {}
  return name in own ? own[name] : FLAGS[name].default
}

/** A script's settings: its flags' values, and which of them the command line gave. */
export type Flags<S extends Script> = { [N in NameOf<S>]: Value<N> } & { given: Set<Name> }

/** Flags that are gone, and what replaced them. */
const MOVED: Record<string, string> = {
  'adapter-file': '--adapter-file is now --adapter-path DIR: the run folder that holds adapters.safetensors',
  fuse: '--fuse is a script of its own now: npm run fuse -- --adapter-path DIR',
}

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
const camel = (flag: string) => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())

/** The flags in `argv` for `script`, checked; 'help' for -h / --help. */
export function parseFlags<S extends Script>(script: S, argv: string[]): Flags<S> | 'help' {
  const allowed: readonly Name[] = SCRIPTS[script].flags
  const values: Record<string, unknown> = Object.fromEntries(allowed.map((n) => [n, defaultOf(script, n)]))
  const given = new Set<Name>()
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '-h' || argv[i] === '--help') return 'help'
    const [, flag, inline] = /^--([^=]+)(?:=(.*))?$/s.exec(argv[i]) ?? refuse(`unexpected argument ${argv[i]}`)
    const name = camel(flag) as Name
    if (!allowed.includes(name)) refuse(MOVED[flag] ?? unknown(script, flag))
    const { read, arg }: Flag<unknown> = FLAGS[name]
    const text = read && inline === undefined ? argv[++i] : inline
    if (read && text === undefined) refuse(`--${flag} needs a value (${arg})`)
    if (!read && text !== undefined) refuse(`--${flag} takes no value`)
    values[name] = read ? read(text!, flag) : true
    given.add(name)
  }
  return { ...values, given } as Flags<S>
}

/** Not a flag of this script: say which script takes it, if one does. */
function unknown(script: Script, flag: string): string {
  const owner = (Object.keys(SCRIPTS) as Script[]).find((s) => SCRIPTS[s].flags.some((n: Name) => kebab(n) === flag))
  const [own, other] = [SCRIPTS[script].command, owner && SCRIPTS[owner].command]
  return other ? `--${flag} is a flag of ${other}, not of ${own}` : `unknown flag --${flag} (${usage(script)} --help)`
}

/** How `script` is run with flags: `npm run example --`, `npx tsx examples/recall.ts`. */
const usage = (script: Script) => `${SCRIPTS[script].command}${SCRIPTS[script].command.startsWith('npm') ? ' --' : ''}`

/** --help for `script`, written from the table: each flag, what it does and its default, wrapped to 99 columns. */
export function helpText(script: Script): string {
  const names: readonly Name[] = SCRIPTS[script].flags
  const left = (name: Name) => `  --${kebab(name)}${FLAGS[name].arg ? ` ${FLAGS[name].arg}` : ''}`
  const column = Math.max(...names.map((name) => left(name).length)) + 2
  const lines = [`${usage(script)} [options]   (${SCRIPTS[script].about})`]
  for (const name of names) {
    const flag: Flag<unknown> = FLAGS[name]
    const value = flag.otherwise ?? shownDefault(defaultOf(script, name))
    const hf = (SCRIPTS[script].flags as readonly Name[]).includes('model') && name in MODEL_DEFAULTS && !flag.otherwise
    const withModel = hf ? `; with --model ${shownDefault(MODEL_DEFAULTS[name]) ?? 'none'}` : ''
    const help = flag.help + (value === null ? '' : ` (default ${value}${withModel})`)
    lines.push(...wrap(left(name).padEnd(column) + help, 99, column))
  }
  return [...lines, '  -h, --help'.padEnd(column) + 'this text'].join('\n')
}

/** A default as it is typed on the command line; null for a switch that is off or a setting that is absent. */
function shownDefault(value: unknown): string | null {
  if (value === false || value === null || value === undefined) return null
  if (Array.isArray(value)) return value.join(',')
  return typeof value === 'string' && /[\s"]/.test(value) ? JSON.stringify(value) : String(value) // quoted if need be
}

/** `text` in lines of at most `width` columns, broken at spaces; lines after the first indented by `indent`. */
function wrap(text: string, width: number, indent: number): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(/(?<=\S) (?=\S)/)) {
    if (line === '') line = word
    else if (line.length + 1 + word.length <= width) line += ` ${word}`
    else {
      lines.push(line)
      line = ' '.repeat(indent) + word
    }
  }
  return [...lines, line]
}

/** npm run example's flags: none of --train, --test means both; combinations that cannot work are refused. */
export function exampleFlags(argv: string[]): Flags<'example'> | 'help' {
  const given = parseFlags('example', argv)
  if (given === 'help') return given
  const neither = !given.train && !given.test // --no-adapter alone: the base's test loss
  const f = withModelDefaults({
    ...given,
    train: given.train || (neither && !given.noAdapter),
    test: given.test || neither,
  })
  checkModelFlags(f)
  if (f.maskPrompt) f.mask = 'prompt'
  const asked = (['prompt', 'temp', 'maxTokens'] as const).find((n) => f.given.has(n))
  if (asked && !f.train)
    refuse(`--${kebab(asked)} goes with --train (the answer before and after); npm run generate answers with a run`)
  if (f.full && (f.quantize !== null || f.resumeAdapterFile || f.useDora))
    refuse(
      '--full trains every weight of a float model: ' +
        'it cannot be combined with --quantize, --use-dora or --resume-adapter-file',
    )
  if (f.full && !f.train) refuse('--full is a way to train: add --train')
  if (f.noAdapter && (f.train || f.resumeAdapterFile))
    refuse('--no-adapter tests the base alone: it cannot be combined with --train or --resume-adapter-file')
  if (f.model !== undefined && f.full) refuse('--full trains the tiny model only; with --model train adapters')
  if (f.resumeAdapterFile && !f.train)
    refuse('--resume-adapter-file continues training: add --train (--adapter-path names the run to test)')
  return f
}

/** The flags that go with --model (or never with it), checked for any script. */
export function checkModelFlags(f: { given: Set<Name>; model?: string }): void {
  if (f.model !== undefined) {
    if (f.given.has('base')) refuse('--base and --model each name the model: give one of them')
    if (f.given.has('mask'))
      refuse('--mask is for the tiny model; with --model, --mask-prompt trains on completions only')
  } else {
    const needs = (['chat', 'maxSeqLength', 'gradCheckpoint'] as const).find((n) => f.given.has(n))
    if (needs) refuse(`--${kebab(needs)} goes with --model DIR (a Hugging Face model folder)`)
  }
}
