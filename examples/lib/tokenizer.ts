// A character-level tokenizer over a fixed alphabet (newline + printable ASCII), and the normalisation that
// brings any text into it. The alphabet is saved in the checkpoint, so a model always decodes with its own.

/** '\n' then the 95 printable ASCII characters ' '..'~': 96 token ids. */
export const ASCII_ALPHABET = '\n' + Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('')

/** Characters that have a plain-ASCII spelling (math in docstrings, typography in the English corpus). */
const SPELLINGS: Record<string, string> = {
  '·': '*',
  '×': 'x',
  '√': 'sqrt',
  '⊙': '(*)',
  '→': '->',
  '←': '<-',
  '↦': '->',
  '≈': '~=',
  '≠': '!=',
  '∈': ' in ',
  '≤': '<=',
  '≥': '>=',
  '−': '-',
  '–': '-',
  '—': '--',
  '…': '...',
  '‖': '||',
  '±': '+-',
  '∞': 'inf',
  '°': ' deg',
  Σ: 'sum',
  '∑': 'sum',
  Π: 'prod',
  Δ: 'Delta',
  Φ: 'Phi',
  α: 'alpha',
  β: 'beta',
  γ: 'gamma',
  δ: 'delta',
  ε: 'eps',
  ζ: 'zeta',
  η: 'eta',
  θ: 'theta',
  κ: 'kappa',
  λ: 'lambda',
  μ: 'mu',
  ν: 'nu',
  π: 'pi',
  ρ: 'rho',
  σ: 'sigma',
  τ: 'tau',
  φ: 'phi',
  χ: 'chi',
  ψ: 'psi',
  ω: 'omega',
  '‘': "'",
  '’': "'",
  '‚': "'",
  '“': '"',
  '”': '"',
  '„': '"',
  '«': '"',
  '»': '"',
  '′': "'",
  '″': '"',
  '\u00a0': ' ',
  '\t': ' ',
  '€': 'EUR',
  '£': 'GBP',
  '•': '*',
  '½': '1/2',
  '¼': '1/4',
  '¾': '3/4',
}
const SUPERSCRIPTS: Record<string, string> = {
  ᵀ: 'T',
  ᵗ: 't',
  ˣ: 'x',
  ᵉ: 'e',
  ⁿ: 'n',
  '⁰': '0',
  '¹': '1',
  '²': '2',
  '³': '3',
  '⁴': '4',
  '⁵': '5',
  '⁶': '6',
  '⁷': '7',
  '⁸': '8',
  '⁹': '9',
  '⁻': '-',
  '⁺': '+',
}
const SUBSCRIPTS: Record<string, string> = { ᵢ: 'i', ⱼ: 'j', '₀': '0', '₁': '1', '₂': '2', '₃': '3' }

/** A run of super- or subscript characters as ^(…) / _(…): x⁻¹ → x^-1, W₀ → W_0. */
function scripts(text: string, table: Record<string, string>, mark: string): string {
  const run = new RegExp(`[${Object.keys(table).join('')}]+`, 'gu')
  return text.replace(run, (m) => mark + Array.from(m, (ch) => table[ch]).join(''))
}

/**
 * Text spelled with ASCII where a spelling is known; accents dropped (é → e, Ŵ → W); other characters kept as is.
 */
export function normalize(text: string): string {
  const marked = scripts(scripts(text, SUPERSCRIPTS, '^'), SUBSCRIPTS, '_')
  const rooted = marked.replace(/√([\w.]+)/g, 'sqrt($1)') // √hs → sqrt(hs)
  const spelled = Array.from(rooted, (ch) => SPELLINGS[ch] ?? ch).join('')
  return spelled.normalize('NFKD').replace(/[\u0300-\u036f]/g, '') // decomposed accents are combining marks
}

/** Maps characters to token ids and back: encode(text) → ids, decode(ids) → text. */
export class CharTokenizer {
  readonly alphabet: string
  private readonly chars: string[]
  private readonly ids = new Map<string, number>()

  constructor(alphabet: string = ASCII_ALPHABET) {
    this.alphabet = alphabet
    this.chars = Array.from(alphabet)
    for (const [i, ch] of this.chars.entries()) {
      if (this.ids.has(ch)) throw new Error(`CharTokenizer: the alphabet has ${JSON.stringify(ch)} twice`)
      this.ids.set(ch, i)
    }
  }

  get vocabSize(): number {
    return this.ids.size
  }

  /** The first character outside the alphabet and its position, or null when every character is known. */
  findUnknown(text: string): { char: string; position: number } | null {
    let position = 0
    for (const ch of text) {
      if (!this.ids.has(ch)) return { char: ch, position }
      position++
    }
    return null
  }

  /** Token ids of `text`; `what` names the text in the error for a character outside the alphabet. */
  encode(text: string, what = 'text'): number[] {
    const unknown = this.findUnknown(text)
    if (unknown) {
      const code = unknown.char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')
      throw new Error(
        `${what} has the character ${JSON.stringify(unknown.char)} (U+${code}) at position ${unknown.position}, ` +
          `which the model's alphabet (newline and printable ASCII) does not contain`,
      )
    }
    return Array.from(text, (ch) => this.ids.get(ch)!)
  }

  decode(ids: ArrayLike<number>): string {
    return Array.from(ids, (id) => this.chars[id] ?? '?').join('')
  }
}
