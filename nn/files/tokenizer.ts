// Hugging Face tokenizers from their files, browser-safe (bytes in): tokenizer.json run by @huggingface/tokenizers,
// special tokens and the chat template from tokenizer_config.json. The one idea: BPE is the library's, kept by Hugging
// Face; the file's shape is checked here first, so a bad file fails in one line naming it, not deep in the library.
import { Tokenizer as HFTokenizer } from '@huggingface/tokenizers'
import { fail, quote } from '../../src/errors.js'
import { byteCap, tooBig, type LoadOptions } from '../../src/formats/safetensors.js'
import {
  ChatTemplates,
  readChatTemplates,
  isObject,
  messageOf,
  type ChatMessage,
  type ChatOptions,
} from './chat-template.js'

export type { ChatMessage, ChatOptions } from './chat-template.js'

/** The files a tokenizer is read from, by name, as in a model folder: tokenizer.json is required. */
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja'] as const

/** `source`: the folder the files came from, shown in messages (`<source>/tokenizer.json: …`). */
export type TokenizerOptions = LoadOptions & { source?: string }

const OP = 'Tokenizer'

/** What is used of @huggingface/tokenizers' Tokenizer, declared here: its .d.ts files do not resolve under NodeNext. */
interface LibraryTokenizer {
  encode(text: string, options: { add_special_tokens: boolean }): { ids: number[]; tokens: string[] }
  decode(ids: number[], options: { skip_special_tokens: boolean; clean_up_tokenization_spaces: boolean }): string
  token_to_id(token: string): number | undefined
  id_to_token(id: number): string | undefined
}

// Tenny keeps token ids in Int32Arrays, so an id must fit one.
const MAX_ID = 2 ** 31 - 1
// transformers' special tokens, the variables chat templates may read
const SPECIAL_NAMES = ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token']
// When tokenizer_config.json does not name bos/eos/pad, the special added tokens that conventionally are them (GPT-2's
// tokenizer class, for one, uses <|endoftext|> for both bos and eos).
const CONVENTIONAL: Record<string, string[]> = {
  bos_token: ['<s>', '<|begin_of_text|>', '<|endoftext|>'],
  eos_token: ['</s>', '<|end_of_text|>', '<|endoftext|>'],
  pad_token: ['<pad>', '<|pad|>'],
}

/** Text ⇄ token ids for one model, with its special tokens and chat template. Made by tokenizerFromFiles. */
export class Tokenizer {
  readonly bosToken: string | null
  readonly eosToken: string | null
  readonly padToken: string | null
  readonly bosTokenId: number | null
  readonly eosTokenId: number | null
  readonly padTokenId: number | null

  constructor(
    private readonly inner: LibraryTokenizer,
    private readonly file: string,
    /** One more than the largest token id: the rows an embedding for this tokenizer needs. */
    readonly vocabSize: number,
    private readonly specials: Record<string, string>,
    private readonly chat: ChatTemplates,
    private readonly cleanUpSpaces: boolean,
  ) {
    this.bosToken = specials.bos_token ?? null
    this.eosToken = specials.eos_token ?? null
    this.padToken = specials.pad_token ?? null
    this.bosTokenId = this.tokenToId(this.bosToken)
    this.eosTokenId = this.tokenToId(this.eosToken)
    this.padTokenId = this.tokenToId(this.padToken)
  }

  /** Token ids of `text`; `addSpecialTokens` (default true, as in transformers) adds what the post-processor adds. */
  encode(text: string, { addSpecialTokens = true } = {}): number[] {
    if (typeof text !== 'string') fail(`${OP}.encode`, `text is ${quote(text)}, expected a string`)
    const { ids, tokens } = this.library(`${OP}.encode`, () =>
      this.inner.encode(text, { add_special_tokens: addSpecialTokens }),
    )
    const lost = ids.findIndex((id) => typeof id !== 'number')
    if (lost >= 0) fail(`${OP}.encode`, `${this.file}: the token ${quote(tokens[lost])} has no id in its vocabulary`)
    return ids
  }

  /** The text of `ids`; `skipSpecialTokens` leaves out special tokens (eos, bos, chat markers). */
  decode(ids: readonly number[], { skipSpecialTokens = false } = {}): string {
    if (!Array.isArray(ids)) fail(`${OP}.decode`, `ids is ${quote(ids)}, expected an array of token ids`)
    for (const [i, id] of ids.entries())
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.inner.id_to_token(id) === undefined)
        fail(`${OP}.decode`, `ids[${i}] is ${quote(id)}, not a token id of ${this.file} (0 to ${this.vocabSize - 1})`)
    if (ids.length === 0) return '' // the library refuses an empty list
    const options = { skip_special_tokens: skipSpecialTokens, clean_up_tokenization_spaces: this.cleanUpSpaces }
    return this.library(`${OP}.decode`, () => this.inner.decode([...ids], options))
  }

  /** The id of a token given as text (`<|im_end|>`), or null when the vocabulary lacks it. */
  tokenToId(token: string | null): number | null {
    return token === null ? null : (this.inner.token_to_id(token) ?? null)
  }

  /** The text of one token id as the vocabulary stores it (`Ġthe` for GPT-2's " the"), or null. */
  idToToken(id: number): string | null {
    return this.inner.id_to_token(id) ?? null
  }

  get hasChatTemplate(): boolean {
    return this.chat.available
  }

  /** A conversation as the model's chat template writes it (text, with its special tokens spelled out). */
  applyChatTemplate(messages: ChatMessage[], options: ChatOptions = {}): string {
    return this.chat.render(messages, options, this.specials)
  }

  /** The ids of a rendered conversation; the template wrote its special tokens, so none are added (as transformers). */
  encodeChat(messages: ChatMessage[], options: ChatOptions = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, options), { addSpecialTokens: false })
  }

  /** Runs the library, its errors turned into one line naming the file. */
  private library<T>(op: string, run: () => T): T {
    try {
      return run()
    } catch (err) {
      return fail(op, `${this.file}: ${quote(messageOf(err))}`)
    }
  }
}

/**
 * A tokenizer from a model folder's files given as bytes or text: `tokenizer.json` (required), `tokenizer_config.json`
 * (special tokens, chat template) and `chat_template.jinja` (newer transformers' place for the template, used first).
 */
export function tokenizerFromFiles(
  files: Record<string, Uint8Array | string>,
  options: TokenizerOptions = {},
): Tokenizer {
  const maxBytes = byteCap(OP, options)
  const name = (file: string) => (options.source ? `${options.source.replace(/\/+$/, '')}/${file}` : file)
  const [tokFile, configFile, jinjaFile] = TOKENIZER_FILES.map(name)
  if (files['tokenizer.json'] === undefined) fail(OP, `no ${tokFile} was given`)
  const json = parseJsonObject(tokFile, files['tokenizer.json'], maxBytes)
  const configData = files['tokenizer_config.json']
  const config = configData === undefined ? {} : parseJsonObject(configFile, configData, maxBytes)
  const { vocabSize, special } = checkTokenizerJson(tokFile, json)

  const specials: Record<string, string> = {}
  for (const field of SPECIAL_NAMES) {
    const content = tokenContent(configFile, field, config[field], special)
    if (content !== null) specials[field] = content
  }
  const cleanUp = config.clean_up_tokenization_spaces ?? false // transformers' default since 4.45
  if (typeof cleanUp !== 'boolean') fail(OP, `${configFile}: clean_up_tokenization_spaces is ${quote(cleanUp)}`)
  const libraryConfig = { ...config, ...specials, clean_up_tokenization_spaces: cleanUp }
  const layout = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, added_tokens: [] }
  let inner: LibraryTokenizer
  try {
    inner = new HFTokenizer({ ...layout, ...json }, libraryConfig)
  } catch (err) {
    return fail(OP, `${tokFile}: ${quote(messageOf(err))}`)
  }
  for (const [field, content] of Object.entries(specials))
    if (inner.token_to_id(content) === undefined)
      fail(OP, `${configFile}: ${field} ${quote(content)} is not a token of ${tokFile}`)

  const jinja = files['chat_template.jinja']
  const templates =
    jinja !== undefined
      ? new Map([['default', fileText(jinjaFile, jinja, maxBytes)]])
      : readChatTemplates(OP, configFile, config.chat_template)
  const chat = new ChatTemplates(jinja !== undefined ? jinjaFile : configFile, templates)
  return new Tokenizer(inner, tokFile, vocabSize, specials, chat, cleanUp)
}

/** A special token's text from tokenizer_config.json: a string, an AddedToken object, null, or (absent) convention. */
function tokenContent(file: string, field: string, value: unknown, special: Set<string>): string | null {
  if (value === undefined) return CONVENTIONAL[field]?.find((t) => special.has(t)) ?? null
  if (value === null || typeof value === 'string') return value
  if (isObject(value) && typeof value.content === 'string') return value.content
  return fail(OP, `${file}: ${field} is ${quote(value)}, expected a string or an AddedToken object`)
}

/** A file's text (bytes decoded as UTF-8), refused when over `maxBytes`. */
function fileText(file: string, data: Uint8Array | string, maxBytes: number): string {
  if (data.length > maxBytes)
    fail(OP, `${file}: ${tooBig(typeof data === 'string' ? 'the text' : 'the file', data.length, maxBytes)}`)
  if (typeof data === 'string') return data
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(data)
  } catch {
    return fail(OP, `${file} is not UTF-8 text`)
  }
}

function parseJsonObject(file: string, data: Uint8Array | string, maxBytes: number): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(fileText(file, data, maxBytes))
  } catch (err) {
    if (err instanceof SyntaxError) fail(OP, `${file} is not valid JSON (${quote(err.message)})`)
    throw err
  }
  if (!isObject(value)) fail(OP, `${file} holds ${quote(value, 40)}, expected a JSON object`)
  return value
}

/**
 * tokenizer.json's parts checked before the library sees them: the vocabulary's ids, the merges (each half and their
 * join in the vocabulary, as Hugging Face's Rust crate requires), the added tokens, the pipeline's stages.
 */
function checkTokenizerJson(file: string, json: Record<string, unknown>): { vocabSize: number; special: Set<string> } {
  const model = json.model
  if (!isObject(model)) return fail(OP, `${file}: "model" is ${quote(model, 40)}, expected an object`)
  const badId = (where: string, id: unknown): never =>
    fail(OP, `${file}: ${where} is ${quote(id)}, expected a token id (an integer from 0 to ${MAX_ID})`)
  const tokens = new Set<string>()
  let maxId = -1
  if (Array.isArray(model.vocab)) {
    // Unigram: [piece, score] pairs whose ids are their places in the list
    for (const [i, entry] of model.vocab.entries()) {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string' || typeof entry[1] !== 'number')
        fail(OP, `${file}: model.vocab[${i}] is ${quote(entry)}, expected [piece, score]`)
      tokens.add(entry[0])
    }
    maxId = model.vocab.length - 1
  } else if (isObject(model.vocab)) {
    for (const [token, id] of Object.entries(model.vocab)) {
      // the message is built for a bad id only, not for each of 50,000 good ones
      maxId = Math.max(maxId, isTokenId(id) ? id : badId(`model.vocab[${quote(token)}]`, id))
      tokens.add(token)
    }
  } else fail(OP, `${file}: model.vocab is ${quote(model.vocab, 40)}, expected an object of token ids`)
  const prefix = typeof model.continuing_subword_prefix === 'string' ? model.continuing_subword_prefix : ''
  if (model.type === 'BPE' || model.merges !== undefined) checkMerges(file, model.merges, tokens, prefix)

  const added = json.added_tokens ?? []
  if (!Array.isArray(added)) fail(OP, `${file}: added_tokens is ${quote(added, 40)}, expected a list`)
  const special = new Set<string>()
  for (const [i, t] of added.entries()) {
    if (!isObject(t) || typeof t.content !== 'string' || t.content === '')
      fail(OP, `${file}: added_tokens[${i}] is ${quote(t)}, expected { id, content, special }`)
    maxId = Math.max(maxId, isTokenId(t.id) ? t.id : badId(`added_tokens[${i}].id`, t.id))
    if (t.special === true) special.add(t.content)
  }
  for (const stage of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) {
    const value = json[stage]
    if (value !== undefined && value !== null && !(isObject(value) && typeof value.type === 'string'))
      fail(OP, `${file}: ${stage} is ${quote(value)}, expected null or an object with a "type"`)
  }
  if (maxId < 0) fail(OP, `${file}: the vocabulary is empty`)
  return { vocabSize: maxId + 1, special }
}

function isTokenId(id: unknown): id is number {
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= MAX_ID
}

/** BPE merges: "left right" strings or [left, right] pairs, whose halves and joins are all in the vocabulary. */
function checkMerges(file: string, merges: unknown, tokens: Set<string>, prefix: string): void {
  if (!Array.isArray(merges)) return fail(OP, `${file}: model.merges is ${quote(merges, 40)}, expected a list`)
  for (const [i, merge] of merges.entries()) {
    const pair = typeof merge === 'string' ? merge.split(' ') : merge
    const ok = Array.isArray(pair) && pair.length === 2 && pair.every((t) => typeof t === 'string' && tokens.has(t))
    // the join drops the right half's continuing-subword prefix (`##` in some vocabularies)
    if (!ok || !tokens.has(pair[0] + (pair[1].startsWith(prefix) ? pair[1].slice(prefix.length) : pair[1])))
      fail(
        OP,
        `${file}: model.merges[${i}] is ${quote(merge)}, expected two tokens of the vocabulary that join into one`,
      )
  }
}
