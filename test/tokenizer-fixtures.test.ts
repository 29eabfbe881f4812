// The small tokenizers of the Hugging Face model fixtures (test/fixtures/tokenizers/, vocab_size 320): what the
// generator writes, their special tokens, their BPE checked against a plain reference written here, round trips,
// the ChatML template and the refusal of a model without one.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadTokenizer } from '../nn/files/tokenizer-node'
import { fixtureFiles, bytesToUnicode } from './fixtures/tokenizers/generate'

const dir = join(import.meta.dirname, 'fixtures/tokenizers')
const byteBPE = loadTokenizer(join(dir, 'byte-bpe'))
const spBPE = loadTokenizer(join(dir, 'sp-bpe'))

const AWKWARD = [
  'The model trains on the text.',
  'two  spaces, trailing  ',
  'tabs\tand\nnewlines\r\n\n\nblank lines\n',
  'café naïve e\u0301 日本語 中文，标点。',
  '👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️‍🔥',
  "it's can't THEY'LL we'd",
  '3.14159 -42 1,000,000 0x1F',
  'function f(a) {\n  return a * 2 // twice\n}\n',
  'zebra quiz: jumpy vex',
]

test('fixtures: the committed files are exactly what generate.ts writes', () => {
  for (const [path, text] of Object.entries(fixtureFiles()))
    assert.is(
      readFileSync(join(dir, path), 'utf8'),
      text,
      `${path} differs: rerun test/fixtures/tokenizers/generate.ts`,
    )
})

test('byte-bpe: 320 tokens; <|endoftext|> 0, <|im_start|> 1 (bos), <|im_end|> 2 (eos, pad); bytes 3 to 258', () => {
  assert.is(byteBPE.vocabSize, 320)
  assert.equal(
    ['<|endoftext|>', '<|im_start|>', '<|im_end|>'].map((t) => byteBPE.tokenToId(t)),
    [0, 1, 2],
  )
  assert.equal(
    [byteBPE.bosToken, byteBPE.bosTokenId, byteBPE.eosToken, byteBPE.eosTokenId],
    ['<|im_start|>', 1, '<|im_end|>', 2],
  )
  assert.equal([byteBPE.padToken, byteBPE.padTokenId], ['<|im_end|>', 2])
  assert.is(byteBPE.idToToken(3), '!') // GPT-2's byte order: the printable bytes first
  assert.is(byteBPE.idToToken(258), String.fromCharCode(0x143)) // ...and byte 0xAD, the last one remapped, last
})

test('sp-bpe: 320 tokens; <unk> 0, <s> 1 (bos), </s> 2 (eos), no pad; <0x00> to <0xFF> at 3 to 258', () => {
  assert.is(spBPE.vocabSize, 320)
  assert.equal([spBPE.bosToken, spBPE.bosTokenId, spBPE.eosToken, spBPE.eosTokenId], ['<s>', 1, '</s>', 2])
  assert.equal([spBPE.padToken, spBPE.padTokenId], [null, null])
  assert.equal([spBPE.idToToken(0), spBPE.idToToken(3), spBPE.idToToken(258)], ['<unk>', '<0x00>', '<0xFF>'])
})

/** Plain BPE: merge the adjacent pair of lowest rank until no pair has a rank. */
function applyMerges(symbols: string[], ranks: Map<string, number>): string[] {
  for (;;) {
    let best = -1
    for (let i = 0; i + 1 < symbols.length; i++) {
      const rank = ranks.get(`${symbols[i]} ${symbols[i + 1]}`)
      if (rank !== undefined && (best < 0 || rank < ranks.get(`${symbols[best]} ${symbols[best + 1]}`)!)) best = i
    }
    if (best < 0) return symbols
    symbols.splice(best, 2, symbols[best] + symbols[best + 1])
  }
}

function readModel(name: string): { vocab: Record<string, number>; ranks: Map<string, number> } {
  const { model } = JSON.parse(readFileSync(join(dir, name, 'tokenizer.json'), 'utf8'))
  const merges: (string | string[])[] = model.merges
  return { vocab: model.vocab, ranks: new Map(merges.map((m, i) => [typeof m === 'string' ? m : m.join(' '), i])) }
}

test('byte-bpe: ids equal a plain byte-level BPE over GPT-2 pieces, written here, and decode(encode(s)) === s', () => {
  const { vocab, ranks } = readModel('byte-bpe')
  const byteChar = bytesToUnicode()
  const pieces = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu
  const reference = (s: string) =>
    (s.match(pieces) ?? []).flatMap((p) => {
      const chars = Array.from(new TextEncoder().encode(p), (b) => byteChar.get(b)!)
      return applyMerges(chars, ranks).map((t) => vocab[t])
    })
  for (const s of AWKWARD) {
    assert.equal(byteBPE.encode(s), reference(s), `encode(${JSON.stringify(s)})`)
    assert.is(byteBPE.decode(byteBPE.encode(s)), s)
  }
  assert.ok(byteBPE.encode('The model').length < new TextEncoder().encode('The model').length, 'merges apply')
})

test('sp-bpe: ids equal a plain BPE over "▁" with byte fallback, written here; bos first', () => {
  const { vocab, ranks } = readModel('sp-bpe')
  const reference = (s: string) => {
    const chars = Array.from('▁' + s.replaceAll(' ', '▁'))
    const bytes = (t: string) => Array.from(new TextEncoder().encode(t), (b) => 3 + b) // <0xXX> is id 3 + XX
    return [1, ...applyMerges(chars, ranks).flatMap((t) => (t in vocab ? [vocab[t]] : bytes(t)))]
  }
  for (const s of AWKWARD) assert.equal(spBPE.encode(s), reference(s), `encode(${JSON.stringify(s)})`)
  assert.equal(spBPE.encode('é', { addSpecialTokens: false }), [spBPE.tokenToId('▁')!, 3 + 0xc3, 3 + 0xa9])
})

test('sp-bpe: decode(encode(s)) === s with bos skipped, except that one leading space is lost (SentencePiece)', () => {
  for (const s of AWKWARD) {
    assert.is(spBPE.decode(spBPE.encode(s), { skipSpecialTokens: true }), s)
    assert.is(spBPE.decode(spBPE.encode(s)), '<s> ' + s) // the decoder strips one space from the start of the text
  }
  // "▁x" is what both "x" and " x" become: the space the pre-tokenizer prepends and a space of the text look alike
  assert.equal(spBPE.encode(' leading'), spBPE.encode('leading'))
  assert.is(spBPE.decode(spBPE.encode(' leading'), { skipSpecialTokens: true }), 'leading')
})

test('special tokens: found in text, kept or skipped by decode, added or not by encode', () => {
  const ids = byteBPE.encode('a<|im_end|>b<|endoftext|>')
  assert.equal(
    ids.filter((id) => id < 3),
    [2, 0],
  )
  assert.is(byteBPE.decode(ids), 'a<|im_end|>b<|endoftext|>')
  assert.is(byteBPE.decode(ids, { skipSpecialTokens: true }), 'ab')
  assert.equal(byteBPE.encode('hi', { addSpecialTokens: false }), byteBPE.encode('hi')) // GPT-2 style adds nothing
  assert.equal(spBPE.encode('hi').slice(1), spBPE.encode('hi', { addSpecialTokens: false }))
  assert.equal(spBPE.encode('a</s>b').slice(0, 3), [1, spBPE.tokenToId('▁a'), 2])
})

const CONVERSATION = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'What is LoRA?' },
  { role: 'assistant', content: 'A low-rank update.' },
]
// Rendered by hand from the template's rules, and checked once against Python's Jinja2 3.1.2 (trim_blocks,
// lstrip_blocks, as transformers sets it) on this machine.
const RENDERED =
  '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is LoRA?<|im_end|>\n' +
  '<|im_start|>assistant\nA low-rank update.<|im_end|>\n'

test('byte-bpe chat template: a 3-message conversation as ChatML, with and without the generation prompt', () => {
  assert.ok(byteBPE.hasChatTemplate)
  assert.is(byteBPE.applyChatTemplate(CONVERSATION), RENDERED)
  assert.is(
    byteBPE.applyChatTemplate(CONVERSATION, { addGenerationPrompt: true }),
    RENDERED + '<|im_start|>assistant\n',
  )
  const noSystem = byteBPE.applyChatTemplate(CONVERSATION.slice(1, 2), { addGenerationPrompt: true })
  assert.is(
    noSystem,
    '<|im_start|>system\nYou are a tiny test model.<|im_end|>\n' +
      RENDERED.split('\n').slice(2, 4).join('\n') +
      '\n<|im_start|>assistant\n',
  )
  const ids = byteBPE.encodeChat(CONVERSATION)
  assert.equal(ids.filter((id) => id === 1 || id === 2).length, 6) // three turns, each <|im_start|> … <|im_end|>
  assert.is(byteBPE.decode(ids), RENDERED)
})

test('sp-bpe has no chat template: applyChatTemplate is refused in one line naming tokenizer_config.json', () => {
  assert.not.ok(spBPE.hasChatTemplate)
  assert.throws(
    () => spBPE.applyChatTemplate(CONVERSATION),
    (err: Error) =>
      err.message ===
      `applyChatTemplate: ${join(dir, 'sp-bpe')}/tokenizer_config.json has no chat_template: this model has no chat format`,
  )
})

test.run()
