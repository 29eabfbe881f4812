// Chat templates as transformers renders them: tokenizer_config.json's `chat_template` (one Jinja string, or a list
// of named ones) run by @huggingface/jinja with the variables transformers passes. Browser-safe: text in, text out.
import { Template } from '@huggingface/jinja'
import { fail, quote } from '../../src/errors.js'

/** One turn of a conversation: `role` (system, user, assistant, tool…) and what templates read, mostly `content`. */
export type ChatMessage = { role: string; content?: unknown; [key: string]: unknown }

export type ChatOptions = {
  /** End with the header of an assistant turn, so that generation continues as the assistant (transformers' flag). */
  addGenerationPrompt?: boolean
  /** Tool descriptions (JSON schemas) for templates that list them; `tools` in the template, None when not given. */
  tools?: unknown[]
  /** Which of several named templates; by default `tool_use` when tools are given and it exists, else `default`. */
  templateName?: string
  /** More template variables (`documents`, `enable_thinking`, …), like transformers' extra keyword arguments. */
  variables?: Record<string, unknown>
}

const OP = 'applyChatTemplate'

/** A file's chat templates by name (a single string is named 'default'); null when the file has none. */
export function readChatTemplates(op: string, file: string, value: unknown): Map<string, string> | null {
  if (value === undefined || value === null) return null
  if (typeof value === 'string') return new Map([['default', value]])
  const isNamed = (t: unknown): t is { name: string; template: string } =>
    isObject(t) && typeof t.name === 'string' && typeof t.template === 'string'
  if (!Array.isArray(value) || !value.every(isNamed))
    fail(op, `${file}: chat_template is ${quote(value)}, expected a string or a list of { name, template }`)
  return new Map(value.map((t) => [t.name, t.template]))
}

/** Renders messages with one of a file's templates, compiling each template once, on first use. */
export class ChatTemplates {
  private compiled = new Map<string, Template>()

  constructor(
    private readonly file: string,
    private readonly templates: Map<string, string> | null,
  ) {}

  get available(): boolean {
    return this.templates !== null
  }

  /** `messages` rendered to text with `specialTokens` (bos_token, eos_token, …) among the variables. */
  render(messages: ChatMessage[], options: ChatOptions, specialTokens: Record<string, string>): string {
    const { addGenerationPrompt = false, tools, templateName, variables = {} } = options
    if (!Array.isArray(messages)) fail(OP, `messages is ${quote(messages)}, expected an array of { role, content }`)
    for (const [i, m] of messages.entries())
      if (!isObject(m) || typeof m.role !== 'string')
        fail(OP, `messages[${i}] is ${quote(m)}, expected { role, content }`)
    const template = this.pick(templateName, tools !== undefined)
    try {
      // transformers passes None for tools and documents that were not given: `tools is none` must hold in templates
      const context = { documents: null, ...specialTokens, ...variables }
      return template.render({ ...context, messages, tools: tools ?? null, add_generation_prompt: addGenerationPrompt })
    } catch (err) {
      return fail(OP, `${this.file}'s chat template refused the messages: ${quote(messageOf(err))}`)
    }
  }

  /** The template transformers would choose: the one named, else tool_use for tools, else default. */
  private pick(name: string | undefined, hasTools: boolean): Template {
    if (this.templates === null) fail(OP, `${this.file} has no chat_template: this model has no chat format`)
    const names = [...this.templates.keys()]
    const chosen = name ?? (hasTools && this.templates.has('tool_use') ? 'tool_use' : 'default')
    const text = this.templates.get(chosen)
    if (text === undefined) {
      const hint = name === undefined ? ' and none named "default": pass { templateName }' : ''
      fail(OP, `${this.file} has no chat template named ${quote(chosen)} (it has ${quote(names)})${hint}`)
    }
    let template = this.compiled.get(chosen)
    if (!template) {
      try {
        template = new Template(text)
      } catch (err) {
        fail(OP, `${this.file}'s chat template ${quote(chosen)} does not parse: ${quote(messageOf(err))}`)
      }
      this.compiled.set(chosen, template)
    }
    return template
  }
}

/** A JSON object (not an array, not null), as a record whose fields are still to be checked. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** What went wrong, as text, whatever was thrown. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
