// A WebAssembly module writer: the binary format's few pieces Tenny's kernels need — LEB128 numbers, the type,
// import, function, export and code sections — and a function builder whose instructions are called by their
// text-format names ('f32x4.mul'), so a generator reads like the WAT it emits. Spec: webassembly.github.io/spec.

export type ValType = 'i32' | 'f32' | 'f64' | 'v128'
const VALTYPE: Record<ValType, number> = { i32: 0x7f, f32: 0x7d, f64: 0x7c, v128: 0x7b }

/** Unsigned LEB128: 7 bits per byte, low bits first, the high bit set on every byte but the last. */
export function u32(n: number): number[] {
  const out: number[] = []
  do {
    let byte = n & 0x7f
    n >>>= 7
    if (n !== 0) byte |= 0x80
    out.push(byte)
  } while (n !== 0)
  return out
}

/** Signed LEB128 (i32.const's immediate): as u32, until the rest is all sign bits. */
export function s32(n: number): number[] {
  const out: number[] = []
  for (;;) {
    const byte = n & 0x7f
    n >>= 7
    const done = (n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)
    out.push(done ? byte : byte | 0x80)
    if (done) return out
  }
}

const utf8 = (s: string) => Array.from(new TextEncoder().encode(s))
const name = (s: string) => [...u32(utf8(s).length), ...utf8(s)]
/** A vector: its length, then its items' bytes. */
const vec = (items: number[][]) => [...u32(items.length), ...items.flat()]
/** A section: its id, its byte size, its contents. */
const section = (id: number, contents: number[]) => [id, ...u32(contents.length), ...contents]

/**
 * The instructions the kernels use, by their text-format names. SIMD ones are 0xfd then a u32 LEB128 opcode.
 * Loads and stores take a memarg (alignment as log2 bytes, then a byte offset), which FunctionBody.mem adds.
 */
const OPCODES = {
  block: [0x02],
  loop: [0x03],
  if: [0x04],
  else: [0x05],
  end: [0x0b],
  br_if: [0x0d],
  return: [0x0f],
  select: [0x1b],
  'local.get': [0x20],
  'local.set': [0x21],
  'local.tee': [0x22],
  'f32.load': [0x2a],
  'f32.store': [0x38],
  'i32.const': [0x41],
  'f32.const': [0x43],
  'i32.eqz': [0x45],
  'i32.lt_s': [0x48],
  'i32.lt_u': [0x49],
  'i32.ge_s': [0x4e],
  'i32.ge_u': [0x4f],
  'i32.add': [0x6a],
  'i32.sub': [0x6b],
  'i32.mul': [0x6c],
  'i32.shl': [0x74],
  'i32.shr_s': [0x75],
  'f32.neg': [0x8c],
  'f32.sqrt': [0x91],
  'f32.add': [0x92],
  'f32.sub': [0x93],
  'f32.mul': [0x94],
  'f32.div': [0x95],
  'f32.max': [0x97],
  'f64.add': [0xa0],
  'f32.demote_f64': [0xb6],
  'v128.load': [0xfd, ...u32(0x00)],
  'v128.load32_splat': [0xfd, ...u32(0x09)],
  'v128.store': [0xfd, ...u32(0x0b)],
  'v128.const': [0xfd, ...u32(0x0c)],
  'i8x16.shuffle': [0xfd, ...u32(0x0d)],
  'i32x4.splat': [0xfd, ...u32(0x11)],
  'f32x4.splat': [0xfd, ...u32(0x13)],
  'f32x4.extract_lane': [0xfd, ...u32(0x1f)],
  'f64x2.extract_lane': [0xfd, ...u32(0x21)],
  'f32x4.lt': [0xfd, ...u32(0x43)],
  'f32x4.gt': [0xfd, ...u32(0x44)],
  'v128.and': [0xfd, ...u32(0x4e)],
  'v128.andnot': [0xfd, ...u32(0x4f)],
  'v128.bitselect': [0xfd, ...u32(0x52)],
  'f32x4.demote_f64x2_zero': [0xfd, ...u32(0x5e)],
  'f64x2.promote_low_f32x4': [0xfd, ...u32(0x5f)],
  'f32x4.nearest': [0xfd, ...u32(0x6a)],
  'i32x4.shl': [0xfd, ...u32(0xab)],
  'i32x4.add': [0xfd, ...u32(0xae)],
  'f32x4.abs': [0xfd, ...u32(0xe0)],
  'f32x4.neg': [0xfd, ...u32(0xe1)],
  'f32x4.sqrt': [0xfd, ...u32(0xe3)],
  'f32x4.add': [0xfd, ...u32(0xe4)],
  'f32x4.sub': [0xfd, ...u32(0xe5)],
  'f32x4.mul': [0xfd, ...u32(0xe6)],
  'f32x4.div': [0xfd, ...u32(0xe7)],
  'f32x4.min': [0xfd, ...u32(0xe8)],
  'f32x4.max': [0xfd, ...u32(0xe9)],
  // pmin(a, b) = b < a ? b : a and pmax(a, b) = a < b ? b : a: one x64 instruction each (min/max also order
  // −0 < +0 and propagate NaN from either side, which costs V8 several), and a NaN in a stays
  'f32x4.pmin': [0xfd, ...u32(0xea)],
  'f32x4.pmax': [0xfd, ...u32(0xeb)],
  'f64x2.add': [0xfd, ...u32(0xf0)],
  'i32x4.trunc_sat_f32x4_s': [0xfd, ...u32(0xf8)],
} satisfies Record<string, number[]>
export type OpName = keyof typeof OPCODES
/** log2 of each memory access's natural alignment in bytes: a hint, correct even when the address is not aligned. */
const ALIGN: Partial<Record<OpName, number>> = {
  'f32.load': 2,
  'f32.store': 2,
  'v128.load': 4,
  'v128.store': 4,
  'v128.load32_splat': 2,
}
const EMPTY_BLOCK = 0x40 // a block or loop that leaves nothing on the stack

/** One function's signature, locals and instructions. Parameters are locals 0 .. params.length − 1. */
export class FunctionBody {
  private readonly code: number[] = []
  private readonly locals: ValType[] = []

  constructor(
    readonly params: ValType[],
    readonly results: ValType[] = [],
  ) {}

  /** A new local of `type`; returns its index. */
  local(type: ValType): number {
    this.locals.push(type)
    return this.params.length + this.locals.length - 1
  }

  /** Any instruction without immediates, by name: op('f32x4.mul'). */
  op(name: OpName): this {
    this.code.push(...OPCODES[name])
    return this
  }

  get(local: number): this {
    return this.with('local.get', u32(local))
  }
  set(local: number): this {
    return this.with('local.set', u32(local))
  }
  tee(local: number): this {
    return this.with('local.tee', u32(local))
  }
  i32(value: number): this {
    return this.with('i32.const', s32(value))
  }
  /** v128.const of sixteen zero bytes: four 0.0f lanes. */
  zero(): this {
    return this.with('v128.const', new Array<number>(16).fill(0))
  }
  /** f32.const: the float32 nearest `value`, as 4 little-endian bytes. */
  f32(value: number): this {
    return this.with('f32.const', Array.from(new Uint8Array(Float32Array.of(value).buffer)))
  }
  /** `value` in all four lanes (f32.const, f32x4.splat). */
  splat(value: number): this {
    return this.f32(value).op('f32x4.splat')
  }

  /** f32x4.extract_lane: lane `lane` (0–3) of the vector on the stack, as an f32. */
  lane(lane: number): this {
    return this.with('f32x4.extract_lane', [lane])
  }

  /** f64x2.extract_lane: lane `lane` (0–1) of the vector on the stack, as an f64. */
  lane64(lane: number): this {
    return this.with('f64x2.extract_lane', [lane])
  }

  /** i8x16.shuffle of the two vectors on the stack: byte i of the result is byte bytes[i] of (first ‖ second). */
  shuffle(bytes: number[]): this {
    return this.with('i8x16.shuffle', bytes)
  }

  /** A load or store at the address on the stack plus a constant byte offset. */
  mem(name: OpName, offset = 0): this {
    return this.with(name, [...u32(ALIGN[name] ?? 0), ...u32(offset)])
  }

  /** `loop … br_if 0 end`: run `body` once, then again while it leaves a non-zero i32 on the stack. */
  doWhile(body: () => void): this {
    this.with('loop', [EMPTY_BLOCK])
    body()
    return this.with('br_if', u32(0)).op('end')
  }

  /** `block … end`: a `br_if 0` inside `body` jumps past it (a guard that skips the rest). */
  block(body: () => void): this {
    this.with('block', [EMPTY_BLOCK])
    body()
    return this.op('end')
  }

  skipIf(): this {
    return this.with('br_if', u32(0))
  }

  /** `if … else … end` on the i32 on the stack; each branch leaves one `result` value, or nothing. */
  ifElse(then: () => void, otherwise: () => void, result?: ValType): this {
    this.with('if', [result ? VALTYPE[result] : EMPTY_BLOCK])
    then()
    this.op('else')
    otherwise()
    return this.op('end')
  }

  /**
   * for (i = from; i < to; i += step) body(), with `from` and `to` pushing i32s: `block` skips the empty case,
   * then a do-while. i is a local the caller owns; `to` is evaluated once per step.
   */
  forLoop(i: number, from: () => void, to: () => void, body: () => void, step = 1): this {
    from()
    this.set(i)
    return this.block(() => {
      this.get(i)
      to()
      this.op('i32.ge_s').skipIf()
      this.doWhile(() => {
        body()
        this.get(i).i32(step).op('i32.add').tee(i)
        to()
        this.op('i32.lt_s')
      })
    })
  }

  /** The code section's entry: size, locals grouped by runs of one type, the instructions, `end`. */
  bytes(): number[] {
    const groups: number[][] = []
    for (let i = 0; i < this.locals.length;) {
      let j = i
      while (j < this.locals.length && this.locals[j] === this.locals[i]) j++
      groups.push([...u32(j - i), VALTYPE[this.locals[i]]])
      i = j
    }
    const body = [...vec(groups), ...this.code, ...OPCODES.end]
    return [...u32(body.length), ...body]
  }

  private with(name: OpName, immediates: number[]): this {
    this.code.push(...OPCODES[name], ...immediates)
    return this
  }
}

/** The memory every kernel module imports as env.memory: pages of 64 KiB; a shared one must state its maximum. */
export type MemoryImport = { shared: boolean; minPages: number; maxPages: number }

/** A whole module: one imported memory and the named functions, each exported under its name. */
export function wasmModule(memory: MemoryImport, functions: Record<string, FunctionBody>): Uint8Array {
  const bodies = Object.values(functions)
  const types = bodies.map((f) => [
    0x60,
    ...vec(f.params.map((t) => [VALTYPE[t]])),
    ...vec(f.results.map((t) => [VALTYPE[t]])),
  ])
  const limits = memory.shared
    ? [0x03, ...u32(memory.minPages), ...u32(memory.maxPages)]
    : [0x01, ...u32(memory.minPages), ...u32(memory.maxPages)]
  const imports = [[...name('env'), ...name('memory'), 0x02, ...limits]] // 0x02: a memory import
  const exports = Object.keys(functions).map((fn, i) => [...name(fn), 0x00, ...u32(i)]) // 0x00: a function export
  return Uint8Array.from([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00, // "\0asm", version 1
    ...section(1, vec(types)),
    ...section(2, vec(imports)),
    ...section(3, vec(bodies.map((_, i) => u32(i)))), // function i has type i
    ...section(7, vec(exports)),
    ...section(10, vec(bodies.map((f) => f.bytes()))),
  ])
}
