// Hostile inputs of at most 1 MB for every loader of bytes, run in a child process so that its peak memory can be
// measured (and a loader that would exhaust memory is killed by the parent, not by the kernel's OOM killer).
//   node --import tsx --expose-gc test/hostile-cases.ts <group>     (groups: checkpoint, all)
// Prints one JSON line per case on stdout ({ name, bytes, ms, baseMB, peakBeforeMB, peakMB, error, expect }) and
// names each case on stderr before running it.
import { zipSync } from 'fflate'
import { serializeSafetensors, parseSafetensors, type StoredTensor } from '../src/formats/safetensors'
import { encodeNpy, decodeNpy, decodeNpz } from '../src/formats/npy'
import { checkpointFromBytes, loadOptimizerBytes } from '../nn/files/checkpoint'
import { AdamW } from '../nn/optim'
import { Tensor } from '../src/tensor'
import { adapterFiles, loadAdapterFiles } from '../nn/files/adapters'
import { peftFiles, importPEFTFiles, mlxFiles, importMLXFiles } from '../nn/files/interop'
import { applyLoRA } from '../nn/lora-model'
import { Toy } from './fixtures'

/** A hostile input, the loader run on it, and what must come of it: an error matching `expect`, or 'loads'. */
type Case = { name: string; input: () => unknown; run: (input: never) => unknown; expect: RegExp | 'loads' }

const text = (s: string) => new TextEncoder().encode(s)
const deep = (levels: number) => '['.repeat(levels) + ']'.repeat(levels)
const MB = 2 ** 20

/** A .safetensors file from header text and data bytes, as a foreign or corrupt writer might make one. */
function safetensors(header: string, data = new Uint8Array(0)): Uint8Array {
  const json = text(header)
  const out = new Uint8Array(8 + json.length + data.length)
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true)
  out.set(json, 8)
  out.set(data, 8 + json.length)
  return out
}

/** A .npy file (version 2: a 4-byte header length) from header text and data bytes. */
function npy(header: string, data = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(12 + header.length + data.length)
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0])
  new DataView(out.buffer).setUint32(8, header.length, true)
  out.set(text(header), 12)
  out.set(data, 12 + header.length)
  return out
}

const f32 = (shape: number[]): StoredTensor => ({
  dtype: 'F32',
  shape,
  data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
})

/** Issue 22's attack: a checkpoint holding only wte and wpe of (1, E) for a config of one block of width E. */
function claimsWidth(E: number, extra = ''): Uint8Array {
  const config = claimsWidthConfig(E, extra)
  return serializeSafetensors({ 'wte.weight': f32([1, E]), 'wpe.weight': f32([1, E]) }, { format: 'tenny-gpt', config })
}
const claimsWidthConfig = (E: number, extra = '') =>
  `{"vocabSize":1,"blockSize":1,"nLayer":1,"nHead":1,"nEmbd":${E}${extra}}`

/** A small model with LoRA on its q and v layers, whose adapters the adapter cases load. */
function adapted(): Toy {
  const model = new Toy({ d: 8, n: 2, fc: false, head: false })
  applyLoRA(model, { rank: 2 })
  return model
}
const base = () => new Toy({ d: 8, n: 2, fc: false, head: false })

/**
 * A zip whose one entry declares 1 GB from 1,000,000 deflated bytes, a ratio deflate can reach (1032:1): what a real
 * bomb's directory says. Its data is noise, since deflating a gigabyte here would take half a minute; the declared
 * size alone must refuse it, before anything is inflated.
 */
function bomb(name = 'w.npy'): Uint8Array {
  const zip = zipSync({ [name]: new Uint8Array(1_000_000).map((_, i) => (i * 2654435761) >>> 24) }, { level: 0 })
  const view = new DataView(zip.buffer)
  for (let i = 0; i + 4 <= zip.length; i++) {
    const sig = view.getUint32(i, true)
    const at = sig === 0x04034b50 ? i : sig === 0x02014b50 ? i + 2 : -1 // the central header has one more field
    if (at < 0) continue
    view.setUint16(at + 8, 8, true) // compression: deflate
    view.setUint32(at + 22, 1_000_000_000, true) // uncompressed size
  }
  return zip
}

const checkpointCases: Case[] = [4096, 8192, 65536].map((E) => ({
  name: `checkpointFromBytes: wte and wpe (1, ${E}) for a block of width ${E}`,
  input: () => claimsWidth(E),
  run: (b: Uint8Array) => checkpointFromBytes(b, 'attack.safetensors'),
  expect: new RegExp(
    `^checkpointFromBytes: attack\\.safetensors: missing tensor\\(s\\) blocks\\.0\\.ln1\\.weight \\(${E}\\)`,
  ),
}))

const config = (c: string) => serializeSafetensors({}, { format: 'tenny-gpt', config: c })
const checkpointMore: Case[] = [
  ['a vocabulary of 10^9', config(`{"vocabSize":1e9,"blockSize":1,"nLayer":1,"nHead":1,"nEmbd":1}`), /missing tensor/],
  ['10^9 blocks', config(`{"vocabSize":1,"blockSize":1,"nLayer":1e9,"nHead":1,"nEmbd":1}`), /missing tensor/],
  ['deep JSON in the config', config(`{"nEmbd":${deep(400_000)}}`), /config is not valid JSON \(it nests deeper/],
  ['deep JSON in an unknown key', claimsWidth(4, `,"note":${deep(400_000)}`), /not valid JSON \(it nests deeper/],
  ['a 1 MB config key', claimsWidth(4, `,"${'k'.repeat(MB - 500)}":1`), /config has an unknown key "kkk.*…$/],
  [
    "deep JSON in 'quantized'",
    serializeSafetensors({}, { config: claimsWidthConfig(4), quantized: `{"lmHead":${deep(400_000)}}` }),
    /the metadata quantized is not valid JSON/,
  ],
].map(([name, bytes, expect]) => ({
  name: `checkpointFromBytes: ${name}`,
  input: () => bytes,
  run: (b: Uint8Array) => checkpointFromBytes(b),
  expect: new RegExp(`^checkpointFromBytes: <bytes>: .*${(expect as RegExp).source}`),
}))

const safetensorsCases: Case[] = (
  [
    [
      'a huge declared shape',
      '{"a":{"dtype":"F32","shape":[65536,65536],"data_offsets":[0,17179869184]}}',
      /tensors cover/,
    ],
    [
      'offsets past 2^53',
      '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,1e300]}}',
      /has data_offsets \[0, 1e\+300\]/,
    ],
    ['deep JSON in a dtype', `{"a":{"dtype":${deep(400_000)}}}`, /not valid UTF-8 JSON \(it nests deeper than 64/],
    ['deep JSON in the metadata', `{"__metadata__":{"k":${deep(400_000)}}}`, /not valid UTF-8 JSON \(it nests/],
    [
      'a 1 MB dtype',
      `{"a":{"dtype":"${'F'.repeat(MB - 100)}","shape":[1],"data_offsets":[0,4]}}`,
      /unknown dtype "FFF/,
    ],
    ['a 1 MB name', `{"${'n'.repeat(MB - 100)}":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}`, /^"nnn.*… has/],
    ['300,000 dims', `{"a":{"dtype":"F32","shape":[${'1,'.repeat(300_000)}1],"data_offsets":[0,8]}}`, /300001 dims/],
    ['wrong dtypes', '{"a":{"dtype":null,"shape":[1],"data_offsets":[0,4]}}', /"a" has unknown dtype null/],
    ['a truncated header', '{"a":{"dtype":"F32","shape":[1],"data_off', /header is not valid UTF-8 JSON/],
    [
      '14,000 overlapping tensors',
      `{${Array.from({ length: 14_000 }, (_, i) => `"t${i}":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}`)}}`,
      /starts at byte 0 of the data, expected 4 \(offsets overlap/,
    ],
  ] as const
).map(([name, header, expect]) => ({
  name: `parseSafetensors: ${name}`,
  input: () => safetensors(header, new Uint8Array(8)),
  run: (b: Uint8Array) => parseSafetensors(b, 'hostile.safetensors'),
  expect: new RegExp(`^safetensors: hostile\\.safetensors: .*${expect.source.replace(/^\^/, '')}`),
}))

safetensorsCases.push(
  {
    name: 'parseSafetensors: a header length of 2^60',
    input: () => {
      const b = new Uint8Array(64)
      new DataView(b.buffer).setBigUint64(0, 2n ** 60n, true)
      return b
    },
    run: (b: Uint8Array) => parseSafetensors(b),
    expect: /^safetensors: <buffer>: header length \d+ runs past the end of the 64-byte file/,
  },
  {
    name: 'parseSafetensors: 16,000 empty F16 tensors (valid)',
    input: () =>
      safetensors(
        `{${Array.from({ length: 16_000 }, (_, i) => `"t${i}":{"dtype":"F16","shape":[0],"data_offsets":[0,0]}`)}}`,
      ),
    run: (b: Uint8Array) => parseSafetensors(b),
    expect: 'loads',
  },
)

const npyCases: Case[] = (
  [
    [
      'a shape of (10^9, 10^9)',
      `{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000000000), }`,
      /needs/,
    ],
    ['a 1 MB dtype', `{'descr': '${'x'.repeat(MB - 100)}', 'fortran_order': False, 'shape': (1,), }`, /dtype "xxx/],
    ['300,000 dims', `{'descr': '<f4', 'fortran_order': False, 'shape': (${'1, '.repeat(300_000)}), }`, /300000 dims/],
    [
      'an unclosed 1 MB tuple',
      `{'descr': '<f4', 'fortran_order': False, 'shape': (${' 1'.repeat(400_000)}`,
      /cannot read/,
    ],
    [
      'a tuple of spaced commas',
      `{'descr': '<f4', 'fortran_order': False, 'shape': (${'1 ,'.repeat(300_000)}`,
      /cannot/,
    ],
  ] as const
).map(([name, header, expect]) => ({
  name: `decodeNpy: ${name}`,
  input: () => npy(header),
  run: (b: Uint8Array) => decodeNpy(b, 'hostile.npy'),
  expect: new RegExp(`^npy: hostile\\.npy: .*${expect.source}`),
}))

npyCases.push({
  name: 'decodeNpy: a header length of 2^32 − 1',
  input: () => {
    const b = npy('')
    new DataView(b.buffer).setUint32(8, 2 ** 32 - 1, true)
    return b
  },
  run: (b: Uint8Array) => decodeNpy(b),
  expect: /^npy: <npy>: header of 4294967295 bytes runs past the end of the 12-byte file$/,
})

const npzCases: Case[] = [
  {
    name: 'decodeNpz: an entry declaring 1 GB from 1 MB (a zip bomb)',
    input: bomb,
    run: (b: Uint8Array) => decodeNpz(b, 'bomb.npz'),
    expect: /^npz: bomb\.npz: unpacked, the entries up to "w\.npy" is 1000000000 bytes, over the \d+-byte cap/,
  },
  {
    name: 'decodeNpz: an entry declaring 4 GB from 71 bytes',
    input: () => {
      const zip = zipSync({ 'w.npy': encodeNpy({ shape: [4], data: new Float32Array(4) }) }, { level: 9 })
      const view = new DataView(zip.buffer)
      for (let i = 0; i + 4 <= zip.length; i++) {
        if (view.getUint32(i, true) === 0x04034b50) view.setUint32(i + 22, 2 ** 32 - 2, true)
        if (view.getUint32(i, true) === 0x02014b50) view.setUint32(i + 24, 2 ** 32 - 2, true)
      }
      return zip
    },
    run: (b: Uint8Array) => decodeNpz(b, 'lie.npz'),
    expect: /^npz: lie\.npz: entry "w\.npy" declares 4294967294 bytes from \d+ deflated bytes, more than deflate/,
  },
  {
    name: 'decodeNpz: 4,500 tiny arrays (valid)',
    input: () => {
      const one = encodeNpy({ shape: [1], data: new Float32Array(1) })
      return zipSync(Object.fromEntries(Array.from({ length: 4500 }, (_, i) => [`a${i}.npy`, one])), { level: 0 })
    },
    run: (b: Uint8Array) => decodeNpz(b),
    expect: 'loads',
  },
  {
    name: 'decodeNpz: 1 MB of noise',
    input: () => new Uint8Array(MB).map((_, i) => (i * 2654435761) >>> 24),
    run: (b: Uint8Array) => decodeNpz(b),
    expect: /^npz: <npz>: not a readable zip archive/,
  },
]

/** An AdamW over one 3-element parameter, to load optimizer state into. */
const adamw = () => new AdamW([new Tensor(new Float32Array(3), [3], true)])
const optimizerFile = (meta: Record<string, string>) =>
  serializeSafetensors({}, { format: 'tenny-optimizer', optimizer: 'AdamW', lr: '0.1', steps: '{}', ...meta })
const optimizerCases: Case[] = (
  [
    ['deep JSON in steps', { steps: `{"0":${deep(400_000)}}` }, /has no readable 'steps' in its metadata$/],
    ['a 1 MB lr', { lr: '9'.repeat(MB - 200) + 'x' }, /lr "9999.*… is not a number ≥ 0$/],
    ['a 1 MB optimizer name', { optimizer: 'A'.repeat(MB - 200) }, /holds "AAAA.*… state, not AdamW$/],
  ] as const
).map(([name, meta, expect]) => ({
  name: `loadOptimizerBytes: ${name}`,
  input: () => optimizerFile(meta),
  run: (b: Uint8Array) => loadOptimizerBytes(adamw(), b, 'opt.safetensors'),
  expect: new RegExp(`^AdamW\\.load: opt\\.safetensors.*${expect.source}`),
}))

type Layout = 'tenny' | 'peft' | 'mlx'
const LOADERS = { tenny: loadAdapterFiles, peft: importPEFTFiles, mlx: importMLXFiles }
const OPS = { tenny: 'loadAdapters', peft: 'importPEFT', mlx: 'importMLX' }

/** A real adapter's files in one layout, with some replaced, loaded onto a fresh copy of its base. */
function adapterCase(
  layout: Layout,
  name: string,
  replace: (files: Record<string, Uint8Array>) => void,
  expect: RegExp,
): Case {
  return {
    name: `${LOADERS[layout].name}: ${name}`,
    input: () => {
      const model = adapted()
      const files = layout === 'tenny' ? adapterFiles(model) : layout === 'peft' ? peftFiles(model) : mlxFiles(model)
      replace(files)
      return files
    },
    run: (files: Record<string, Uint8Array>) => LOADERS[layout](base(), files),
    expect: expect.source.startsWith('^') ? expect : new RegExp(`^${OPS[layout]}: .*${expect.source}`),
  }
}

const tennyConfig = (c: string) => serializeSafetensors({}, { format: 'tenny-lora', config: c })
const fakeLayers = (n: number) =>
  Object.fromEntries(
    Array.from({ length: n }, (_, i) => [
      [`base_model.model.fake${i}.lora_A.weight`, f32([1, 1])],
      [`base_model.model.fake${i}.lora_B.weight`, f32([1, 1])],
    ]).flat(),
  )

const adapterCases: Case[] = [
  adapterCase(
    'tenny',
    'deep JSON in the config',
    (f) => (f['adapters.safetensors'] = tennyConfig(`{"format":"tenny-lora","baseHash":${deep(400_000)}}`)),
    /config is not valid JSON \(it nests deeper than 64 levels\)/,
  ),
  adapterCase(
    'tenny',
    '90,000 paths',
    (f) => {
      const paths = JSON.stringify(Array.from({ length: 90_000 }, (_, i) => `p${i}`))
      f['adapters.safetensors'] = tennyConfig(`{"format":"tenny-lora","paths":${paths}}`)
    },
    /was made for another base model/,
  ),
  adapterCase(
    'peft',
    'deep JSON in adapter_config.json',
    (f) => (f['adapter_config.json'] = text(`{"peft_type":"LORA","r":${deep(400_000)}}`)),
    /adapter_config\.json is not valid JSON \(it nests deeper than 64 levels\)/,
  ),
  adapterCase(
    'peft',
    'a rank of 10^9',
    (f) => (f['adapter_config.json'] = text(JSON.stringify({ peft_type: 'LORA', r: 1e9, lora_alpha: 1 }))),
    /adapter_config\.json says rank 1000000000/,
  ),
  adapterCase(
    'peft',
    '4,000 layers the model lacks and a 20,000-key rank_pattern',
    (f) => {
      const rank_pattern = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`x${i}`, 2]))
      f['adapter_config.json'] = text(JSON.stringify({ peft_type: 'LORA', r: 1, lora_alpha: 1, rank_pattern }))
      f['adapter_model.safetensors'] = serializeSafetensors(fakeLayers(4000))
    },
    /the adapter's layer 'fake0' does not exist in this model/,
  ),
  adapterCase(
    'peft',
    'a 1 MB key of 400,000 dots',
    (f) =>
      (f['adapter_model.safetensors'] = serializeSafetensors({
        [`base_model.model.${'a.'.repeat(400_000)}x`]: f32([1]),
      })),
    /unknown key "base_model\.model\.a\.a\.a.*… \(expected/,
  ),
  adapterCase(
    'mlx',
    'a 1 MB key of 400,000 dots',
    (f) => (f['adapters.safetensors'] = serializeSafetensors({ [`${'a.'.repeat(400_000)}x`]: f32([1]) })),
    /unknown key "a\.a\.a.*… \(expected/,
  ),
  adapterCase(
    'mlx',
    'deep JSON in adapter_config.json',
    (f) => (f['adapter_config.json'] = text(`{"lora_parameters":{"scale":${deep(400_000)}}}`)),
    /adapter_config\.json is not valid JSON \(it nests deeper than 64 levels\)/,
  ),
  adapterCase(
    'mlx',
    'a zip bomb as adapters.npz',
    (f) => {
      delete f['adapters.safetensors']
      f['adapters.npz'] = bomb('blocks.0.qProj.lora_a.npy')
    },
    /^npz: adapters\.npz: unpacked, the entries up to "blocks\.0\.qProj\.lora_a\.npy" is 1000000000 bytes, over/,
  ),
]

const GROUPS: Record<string, Case[]> = {
  checkpoint: checkpointCases,
  all: [
    ...checkpointCases,
    ...checkpointMore,
    ...optimizerCases,
    ...safetensorsCases,
    ...npyCases,
    ...npzCases,
    ...adapterCases,
  ],
}

const group = GROUPS[process.argv[2]]
if (!group) throw new Error(`hostile-cases: expected a group (${Object.keys(GROUPS)}), got ${process.argv[2]}`)
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {})
const mb = (bytes: number) => Math.round((bytes / MB) * 10) / 10
for (const c of group) {
  const input = c.input()
  const bytes =
    input instanceof Uint8Array
      ? input.length
      : Object.values(input as Record<string, Uint8Array>).reduce((n, b) => n + b.length, 0)
  gc()
  const baseMB = mb(process.memoryUsage.rss()),
    peakBeforeMB = mb(process.resourceUsage().maxRSS * 1024)
  process.stderr.write(`case ${c.name}\n`) // the parent's watchdog names the case it kills
  let error: { type: string; message: string } | null = null
  const t0 = performance.now()
  try {
    c.run(input as never)
  } catch (err) {
    error =
      err instanceof Error
        ? { type: err.constructor.name, message: err.message }
        : { type: typeof err, message: String(err) }
  }
  const ms = Math.round(performance.now() - t0)
  const peakMB = mb(process.resourceUsage().maxRSS * 1024)
  const expect = c.expect === 'loads' ? 'loads' : c.expect.source
  process.stdout.write(JSON.stringify({ name: c.name, bytes, ms, baseMB, peakBeforeMB, peakMB, error, expect }) + '\n')
}
