// The Tokenizer's contract beyond BPE: bad files refused in one line naming the file (never a raw TypeError from the
// library, never the file's content at length), special tokens by config or convention, chat template selection
// and variables, ids checked by decode, the Node folder reader, and a browser bundle without node:*.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { build, type Plugin } from 'esbuild'
import { tokenizerFromFiles, type TokenizerOptions } from '../nn/files/tokenizer'
import { loadTokenizer } from '../nn/files/tokenizer-node'
import { withDir } from './fixtures'

const root = join(import.meta.dirname, '..')
const fixture = join(root, 'test/fixtures/tokenizers/byte-bpe')
type Json = Record<string, any>

/** The byte-bpe fixture's tokenizer.json and tokenizer_config.json as objects, fresh for each change. */
function fixtureJson(): { tokenizer: Json; config: Json } {
  const read = (name: string) => JSON.parse(readFileSync(join(fixture, name), 'utf8'))
  return { tokenizer: read('tokenizer.json'), config: read('tokenizer_config.json') }
}

function files(tokenizer: unknown, config?: unknown): Record<string, string> {
  const out: Record<string, string> = { 'tokenizer.json': JSON.stringify(tokenizer) }
  if (config !== undefined) out['tokenizer_config.json'] = JSON.stringify(config)
  return out
}

/** `run` throws one line that equals or matches `expected`, and is short whatever the file held. */
function refuses(run: () => unknown, expected: string | RegExp): void {
  try {
    run()
  } catch (err) {
    const message = (err as Error).message
    assert.ok(!message.includes('\n'), `one line: ${message}`)
    assert.ok(message.length < 500, `short: ${message.length} characters`)
    if (typeof expected === 'string') assert.is(message, expected)
    else assert.match(message, expected)
    return
  }
  assert.unreachable(`no error, expected ${expected}`)
}

const load = (tokenizer: unknown, config?: unknown, options?: TokenizerOptions) =>
  tokenizerFromFiles(files(tokenizer, config), options)

test('tokenizer.json that is missing, not UTF-8, not JSON or not an object: refused naming the file', () => {
  refuses(() => tokenizerFromFiles({}), 'Tokenizer: no tokenizer.json was given')
  refuses(() => tokenizerFromFiles({}, { source: '/m' }), 'Tokenizer: no /m/tokenizer.json was given')
  const notUtf8 = Uint8Array.of(0x7b, 0xff, 0x7d)
  refuses(() => tokenizerFromFiles({ 'tokenizer.json': notUtf8 }), 'Tokenizer: tokenizer.json is not UTF-8 text')
  const junk = '{"model": ' + 'x'.repeat(1_000_000)
  refuses(() => tokenizerFromFiles({ 'tokenizer.json': junk }), /^Tokenizer: tokenizer\.json is not valid JSON \(/)
  refuses(() => load([1, 2]), 'Tokenizer: tokenizer.json holds [1, 2], expected a JSON object')
  refuses(() => load({}), 'Tokenizer: tokenizer.json: "model" is undefined, expected an object')
})

test('tokenizer.json over { maxBytes }: refused before parsing, saying how to allow it', () => {
  const { tokenizer } = fixtureJson()
  refuses(
    () => load(tokenizer, undefined, { maxBytes: 1000 }),
    /^Tokenizer: tokenizer\.json: the text is \d+ bytes, over the 1000-byte cap \(pass \{ maxBytes \} to allow more\)$/,
  )
  const bytes = new TextEncoder().encode(JSON.stringify(tokenizer))
  refuses(
    () => tokenizerFromFiles({ 'tokenizer.json': bytes }, { maxBytes: 1000 }),
    /the file is \d+ bytes, over the 1000-byte cap/,
  )
  refuses(
    () => load(tokenizer, undefined, { maxBytes: -1 }),
    'Tokenizer: maxBytes must be a non-negative integer, got -1',
  )
})

test('vocabulary ids that are not token ids: refused naming the token, its id and the range', () => {
  for (const bad of [-1, 1.5, '7', 2 ** 31, null]) {
    const { tokenizer } = fixtureJson()
    tokenizer.model.vocab.zebra = bad
    refuses(
      () => load(tokenizer),
      `Tokenizer: tokenizer.json: model.vocab["zebra"] is ${bad === '7' ? '"7"' : bad}, expected a token id (an integer from 0 to 2147483647)`,
    )
  }
  const { tokenizer } = fixtureJson()
  tokenizer.model.vocab['y'.repeat(1_000_000)] = -1 // a huge token is quoted short
  refuses(() => load(tokenizer), /^Tokenizer: tokenizer\.json: model\.vocab\["yyy+…\] is -1, expected a token id/)
  refuses(
    () => load({ model: { type: 'BPE', vocab: 'abc', merges: [] } }),
    /model\.vocab is "abc", expected an object of token ids$/,
  )
  refuses(
    () => load({ model: { type: 'Unigram', vocab: [['a', -1], ['b']] } }),
    'Tokenizer: tokenizer.json: model.vocab[1] is ["b"], expected [piece, score]',
  )
  refuses(
    () => load({ model: { type: 'BPE', vocab: {}, merges: [] } }),
    'Tokenizer: tokenizer.json: the vocabulary is empty',
  )
})

test('merges that are not pairs of vocabulary tokens joining into one: refused naming the merge', () => {
  const cases: [unknown, string][] = [
    ['Ġ q', 'model.merges[0] is "Ġ q", expected two tokens of the vocabulary that join into one'],
    ['a b c', 'model.merges[0] is "a b c", expected two tokens of the vocabulary that join into one'],
    [['q', 'z'], 'model.merges[0] is ["q", "z"], expected two tokens of the vocabulary that join into one'],
    [7, 'model.merges[0] is 7, expected two tokens of the vocabulary that join into one'],
  ]
  for (const [merge, message] of cases) {
    const { tokenizer } = fixtureJson()
    tokenizer.model.merges[0] = merge
    refuses(() => load(tokenizer), `Tokenizer: tokenizer.json: ${message}`)
  }
  const { tokenizer } = fixtureJson()
  tokenizer.model.merges = { a: 1 }
  refuses(() => load(tokenizer), 'Tokenizer: tokenizer.json: model.merges is {"a": 1}, expected a list')
})

test('added tokens and pipeline stages of the wrong shape: refused; a stage the library lacks: one line, not a throw from inside', () => {
  const change = (edit: (t: Json) => void) => {
    const { tokenizer } = fixtureJson()
    edit(tokenizer)
    return () => load(tokenizer)
  }
  refuses(
    change((t) => (t.added_tokens = {})),
    'Tokenizer: tokenizer.json: added_tokens is {}, expected a list',
  )
  refuses(
    change((t) => (t.added_tokens[1] = { id: 1 })),
    'Tokenizer: tokenizer.json: added_tokens[1] is {"id": 1}, expected { id, content, special }',
  )
  refuses(
    change((t) => (t.added_tokens[0].id = -3)),
    /added_tokens\[0\]\.id is -3, expected a token id/,
  )
  refuses(
    change((t) => (t.decoder = 5)),
    'Tokenizer: tokenizer.json: decoder is 5, expected null or an object with a "type"',
  )
  refuses(
    change((t) => (t.pre_tokenizer = { use_regex: true })),
    /pre_tokenizer is \{"use_regex": true\}, expected null/,
  )
  refuses(
    change((t) => (t.decoder = { type: 'Nope' })),
    'Tokenizer: tokenizer.json: "Unknown Decoder type: Nope"',
  )
  refuses(
    change((t) => (t.normalizer = { type: 'Sequence', normalizers: 3 })),
    /^Tokenizer: tokenizer\.json: "/,
  )
})

test('a post-processor that adds a token the vocabulary lacks: encode refuses instead of returning undefined ids', () => {
  const { tokenizer } = fixtureJson()
  tokenizer.post_processor = {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<bos>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [],
    special_tokens: {},
  }
  const tok = load(tokenizer)
  refuses(() => tok.encode('hi'), 'Tokenizer.encode: tokenizer.json: the token "<bos>" has no id in its vocabulary')
  assert.equal(tok.encode('hi', { addSpecialTokens: false }), load(fixtureJson().tokenizer).encode('hi'))
})

test('special tokens: a string or an AddedToken object in tokenizer_config.json, null for none, else the conventional added token', () => {
  const { tokenizer, config } = fixtureJson()
  const byConfig = load(tokenizer, { ...config, bos_token: { content: '<|endoftext|>' }, eos_token: '<|im_start|>' })
  assert.equal([byConfig.bosTokenId, byConfig.eosTokenId], [0, 1])
  const explicitNull = load(tokenizer, { eos_token: null })
  assert.equal([explicitNull.eosToken, explicitNull.eosTokenId], [null, null])
  // without a config: <|endoftext|> is bos and eos, as GPT-2's tokenizer class has it
  const byConvention = load(tokenizer)
  assert.equal(
    [byConvention.bosToken, byConvention.eosToken, byConvention.padToken],
    ['<|endoftext|>', '<|endoftext|>', null],
  )
  const llama = {
    model: { type: 'BPE', vocab: { '<s>': 0, '</s>': 1, a: 2 }, merges: [] },
    added_tokens: [
      { id: 0, content: '<s>', special: true },
      { id: 1, content: '</s>', special: true },
    ],
  }
  assert.equal([load(llama).bosTokenId, load(llama).eosTokenId], [0, 1])
  refuses(
    () => load(tokenizer, { eos_token: 5 }),
    'Tokenizer: tokenizer_config.json: eos_token is 5, expected a string or an AddedToken object',
  )
  refuses(
    () => load(tokenizer, { pad_token: '<pad>' }),
    'Tokenizer: tokenizer_config.json: pad_token "<pad>" is not a token of tokenizer.json',
  )
  refuses(
    () => load(tokenizer, { clean_up_tokenization_spaces: 'yes' }),
    'Tokenizer: tokenizer_config.json: clean_up_tokenization_spaces is "yes"',
  )
  refuses(() => load(tokenizer, [1]), 'Tokenizer: tokenizer_config.json holds [1], expected a JSON object')
})

test('decode: ids outside the vocabulary or not integers are refused naming their place; [] is ""', () => {
  const tok = load(fixtureJson().tokenizer)
  assert.is(tok.decode([]), '')
  for (const [ids, bad] of [
    [[5, 320], '320'],
    [[-1], '-1'],
    [[1.5], '1.5'],
    [[NaN], 'NaN'],
    [['3'], '"3"'],
  ] as const) {
    const at = ids.length - 1
    refuses(
      () => tok.decode(ids as unknown as number[]),
      `Tokenizer.decode: ids[${at}] is ${bad}, not a token id of tokenizer.json (0 to 319)`,
    )
  }
  refuses(
    () => tok.decode('abc' as unknown as number[]),
    'Tokenizer.decode: ids is "abc", expected an array of token ids',
  )
  refuses(() => tok.encode(5 as unknown as string), 'Tokenizer.encode: text is 5, expected a string')
  // an id above the vocabulary (an added token) leaves holes below it: their ids are not tokens
  const { tokenizer } = fixtureJson()
  tokenizer.added_tokens.push({ id: 400, content: '<|tool|>', special: true })
  const holed = load(tokenizer)
  assert.is(holed.vocabSize, 401)
  assert.is(holed.decode([400]), '<|tool|>')
  refuses(() => holed.decode([350]), 'Tokenizer.decode: ids[0] is 350, not a token id of tokenizer.json (0 to 400)')
})

test('chat templates: named ones chosen as transformers does (templateName, tool_use with tools, else default)', () => {
  const { tokenizer } = fixtureJson()
  const named = [
    { name: 'default', template: 'D{{ messages | length }}' },
    { name: 'tool_use', template: 'T{{ tools | length }}' },
  ]
  const tok = load(tokenizer, { chat_template: named })
  const messages = [{ role: 'user', content: 'hi' }]
  assert.is(tok.applyChatTemplate(messages), 'D1')
  assert.is(tok.applyChatTemplate(messages, { tools: [{ name: 'f' }, { name: 'g' }] }), 'T2')
  assert.is(tok.applyChatTemplate(messages, { templateName: 'default', tools: [] }), 'D1')
  refuses(
    () => tok.applyChatTemplate(messages, { templateName: 'rag' }),
    'applyChatTemplate: tokenizer_config.json has no chat template named "rag" (it has ["default", "tool_use"])',
  )
  const noDefault = load(tokenizer, { chat_template: named.slice(1) })
  refuses(
    () => noDefault.applyChatTemplate(messages),
    'applyChatTemplate: tokenizer_config.json has no chat template named "default" (it has ["tool_use"]) and none named "default": pass { templateName }',
  )
  refuses(
    () => load(tokenizer, { chat_template: 5 }),
    'Tokenizer: tokenizer_config.json: chat_template is 5, expected a string or a list of { name, template }',
  )
  refuses(
    () => load(tokenizer, { chat_template: [{ name: 'x' }] }),
    /chat_template is \[\{"name": "x"\}\], expected a string or a list/,
  )
})

test('chat templates: the variables transformers passes (messages, bos/eos tokens, tools as None, add_generation_prompt, extras)', () => {
  const { tokenizer } = fixtureJson()
  const template =
    '{{ bos_token }}|{{ eos_token }}|{{ pad_token }}|{{ tools is none }}|{{ add_generation_prompt }}|{{ messages[0].content }}|{{ documents is none }}|{{ x }}'
  const tok = load(tokenizer, { bos_token: '<|im_start|>', eos_token: '<|im_end|>', chat_template: template })
  const messages = [{ role: 'user', content: 'hi' }]
  assert.is(tok.applyChatTemplate(messages), '<|im_start|>|<|im_end|>||true|false|hi|true|')
  assert.is(
    tok.applyChatTemplate(messages, { addGenerationPrompt: true, tools: [], variables: { x: 'X' } }),
    '<|im_start|>|<|im_end|>||false|true|hi|true|X',
  )
})

test('chat templates: a template that does not parse, raises, or gets no messages: refused in one line; encode still works', () => {
  const { tokenizer } = fixtureJson()
  const broken = load(tokenizer, { chat_template: '{% for %}' })
  assert.equal(broken.encode('ok'), load(tokenizer).encode('ok')) // the template is compiled when first used
  refuses(
    () => broken.applyChatTemplate([]),
    'applyChatTemplate: tokenizer_config.json\'s chat template "default" does not parse: "Unexpected token: CloseStatement"',
  )
  const strict = load(tokenizer, {
    chat_template: "{% if messages[0]['role'] != 'system' %}{{ raise_exception('System first') }}{% endif %}",
  })
  refuses(
    () => strict.applyChatTemplate([{ role: 'user', content: 'x' }]),
    'applyChatTemplate: tokenizer_config.json\'s chat template refused the messages: "System first"',
  )
  refuses(
    () => strict.applyChatTemplate({} as never),
    'applyChatTemplate: messages is {}, expected an array of { role, content }',
  )
  refuses(
    () => strict.applyChatTemplate([{ content: 'x' }] as never),
    'applyChatTemplate: messages[0] is {"content": "x"}, expected { role, content }',
  )
  refuses(
    () => load(tokenizer).applyChatTemplate([]),
    'applyChatTemplate: tokenizer_config.json has no chat_template: this model has no chat format',
  )
})

test("chat_template.jinja (newer transformers' file) is used before tokenizer_config.json's template", () => {
  const { tokenizer, config } = fixtureJson()
  const jinja = '{% for m in messages %}[{{ m.role }}]{% endfor %}'
  const tok = tokenizerFromFiles({
    ...files(tokenizer, config),
    'chat_template.jinja': new TextEncoder().encode(jinja),
  })
  assert.is(tok.applyChatTemplate([{ role: 'user', content: 'x' }]), '[user]')
})

test("loadTokenizer: reads a folder's files (size-capped), names a missing tokenizer.json with its path", () => {
  withDir((dir) => {
    refuses(() => loadTokenizer(dir), `loadTokenizer: ${join(dir, 'tokenizer.json')} does not exist`)
    const { tokenizer, config } = fixtureJson()
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer))
    const bare = loadTokenizer(dir)
    assert.equal([bare.hasChatTemplate, bare.eosToken], [false, '<|endoftext|>'])
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config))
    assert.is(
      loadTokenizer(dir).applyChatTemplate([{ role: 'system', content: 's' }]),
      '<|im_start|>system\ns<|im_end|>\n',
    )
    writeFileSync(join(dir, 'chat_template.jinja'), '{{ messages | length }}')
    assert.is(loadTokenizer(dir).applyChatTemplate([{ role: 'system', content: 's' }]), '1')
    refuses(
      () => loadTokenizer(dir, { maxBytes: 100 }),
      new RegExp(`^loadTokenizer: ${dir}/tokenizer\\.json: the file is \\d+ bytes, over the 100-byte cap`),
    )
    writeFileSync(join(dir, 'tokenizer_config.json'), '{"eos_token": 3}')
    refuses(
      () => loadTokenizer(dir),
      `Tokenizer: ${dir}/tokenizer_config.json: eos_token is 3, expected a string or an AddedToken object`,
    )
  })
})

test('browser bundle of nn/files/tokenizer.ts: the tokenizer libraries come along, and nothing imports node:*', async () => {
  const imports: string[] = []
  const record: Plugin = {
    name: 'record-node-imports',
    setup(b) {
      b.onResolve({ filter: /^node:/ }, (args) => {
        imports.push(`${args.importer} → ${args.path}`)
        return { path: args.path, external: true }
      })
    },
  }
  const result = await build({
    entryPoints: [join(root, 'nn/files/tokenizer.ts')],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    logLevel: 'silent',
    metafile: true,
    plugins: [record],
  })
  const inputs = Object.keys(result.metafile.inputs)
  for (const lib of ['@huggingface/tokenizers', '@huggingface/jinja'])
    assert.ok(
      inputs.some((f) => f.includes(`node_modules/${lib}/`)),
      `${lib} is bundled`,
    )
  assert.equal(imports, [])
})

test.run()
