// The emitter: a WebAssembly module writer for the kernel generators — LEB128 numbers, the type, import, function,
// export and code sections, and a function builder whose instructions are called by their text-format names
// ('f32x4.mul'), so a generator reads like the WAT it emits — plus the runtime calls that compile it. With
// FunctionBody.checks on (the tests turn it on), every instruction's operand types are checked as it is emitted.
// Spec: webassembly.github.io/spec.
import { fail } from '../../errors.js'
import { webAssembly, type WasmMemory } from '../webassembly.js'

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

/** An instruction: its opcode bytes, the operand types it pops (deepest first) and the types it pushes. */
type Instruction = { bytes: number[]; pops: ValType[]; pushes: ValType[] }
const types = (list: string) => list.split(' ').filter((t): t is ValType => t in VALTYPE)
const op = (bytes: number[], pops = '', pushes = ''): Instruction => ({
  bytes,
  pops: types(pops),
  pushes: types(pushes),
})
/** A SIMD instruction: 0xfd, then its opcode as a u32 LEB128. */
const simd = (code: number, pops = '', pushes = '') => op([0xfd, ...u32(code)], pops, pushes)
const v2v = 'v128 v128'

/**
 * The instructions the generators emit, and no others (a test holds the list to what they use). The control and
 * local instructions, and select, are typed by FunctionBody's methods; loads and stores take a memarg (mem()).
 */
const OPCODES = {
  block: op([0x02]),
  loop: op([0x03]),
  if: op([0x04], 'i32'),
  else: op([0x05]),
  end: op([0x0b]),
  br_if: op([0x0d], 'i32'),
  select: op([0x1b]),
  'local.get': op([0x20]),
  'local.set': op([0x21]),
  'local.tee': op([0x22]),
  'f32.load': op([0x2a], 'i32', 'f32'),
  'f32.store': op([0x38], 'i32 f32'),
  'i32.const': op([0x41], '', 'i32'),
  'f32.const': op([0x43], '', 'f32'),
  'i32.lt_s': op([0x48], 'i32 i32', 'i32'),
  'i32.lt_u': op([0x49], 'i32 i32', 'i32'),
  'i32.ge_s': op([0x4e], 'i32 i32', 'i32'),
  'i32.add': op([0x6a], 'i32 i32', 'i32'),
  'i32.sub': op([0x6b], 'i32 i32', 'i32'),
  'i32.mul': op([0x6c], 'i32 i32', 'i32'),
  'i32.shr_s': op([0x75], 'i32 i32', 'i32'),
  'f32.sqrt': op([0x91], 'f32', 'f32'),
  'f32.add': op([0x92], 'f32 f32', 'f32'),
  'f32.mul': op([0x94], 'f32 f32', 'f32'),
  'f32.div': op([0x95], 'f32 f32', 'f32'),
  'f32.max': op([0x97], 'f32 f32', 'f32'),
  'f64.add': op([0xa0], 'f64 f64', 'f64'),
  'f32.demote_f64': op([0xb6], 'f64', 'f32'),
  'v128.load': simd(0x00, 'i32', 'v128'),
  'v128.load32_splat': simd(0x09, 'i32', 'v128'),
  'v128.store': simd(0x0b, 'i32 v128'),
  'v128.const': simd(0x0c, '', 'v128'),
  'i8x16.shuffle': simd(0x0d, v2v, 'v128'),
  'i32x4.splat': simd(0x11, 'i32', 'v128'),
  'f32x4.splat': simd(0x13, 'f32', 'v128'),
  'f32x4.extract_lane': simd(0x1f, 'v128', 'f32'),
  'f64x2.extract_lane': simd(0x21, 'v128', 'f64'),
  'f32x4.lt': simd(0x43, v2v, 'v128'),
  'v128.andnot': simd(0x4f, v2v, 'v128'),
  'f32x4.demote_f64x2_zero': simd(0x5e, 'v128', 'v128'),
  'f64x2.promote_low_f32x4': simd(0x5f, 'v128', 'v128'),
  'f32x4.nearest': simd(0x6a, 'v128', 'v128'),
  'i32x4.shl': simd(0xab, 'v128 i32', 'v128'),
  'i32x4.add': simd(0xae, v2v, 'v128'),
  'f32x4.add': simd(0xe4, v2v, 'v128'),
  'f32x4.sub': simd(0xe5, v2v, 'v128'),
  'f32x4.mul': simd(0xe6, v2v, 'v128'),
  'f32x4.div': simd(0xe7, v2v, 'v128'),
  'f32x4.max': simd(0xe9, v2v, 'v128'),
  // pmin(a, b) = b < a ? b : a and pmax(a, b) = a < b ? b : a: one x64 instruction each (min/max also order
  // −0 < +0 and propagate NaN from either side, which costs V8 several), and a NaN in a stays
  'f32x4.pmin': simd(0xea, v2v, 'v128'),
  'f32x4.pmax': simd(0xeb, v2v, 'v128'),
  'f64x2.add': simd(0xf0, v2v, 'v128'),
  'i32x4.trunc_sat_f32x4_s': simd(0xf8, 'v128', 'v128'),
} satisfies Record<string, Instruction>
export type OpName = keyof typeof OPCODES
/** Every instruction the emitter knows (the test compares it with what the generators emit). */
export const OP_NAMES = Object.keys(OPCODES) as OpName[]
/** log2 of each memory access's natural alignment in bytes: a hint, correct even when the address is not aligned. */
const ALIGN: Partial<Record<OpName, number>> = {
  'f32.load': 2,
  'f32.store': 2,
  'v128.load': 4,
  'v128.store': 4,
  'v128.load32_splat': 2,
}
const EMPTY_BLOCK = 0x40 // a block or loop that leaves nothing on the stack

/** An open block, loop or if: the stack height at its start, and the type it leaves (if one). */
type Frame = { height: number; result?: ValType }

/**
 * One function's signature, locals and instructions. `params` names the parameters in order with their types;
 * `param` gives each one's local index by name. Parameters are locals 0 .. (count − 1).
 */
export class FunctionBody<P extends Record<string, ValType> = Record<string, ValType>> {
  /** Check each instruction's operand types as it is emitted, and the stack when the function is finished. */
  static checks = false
  readonly param: Readonly<Record<keyof P, number>>
  readonly paramTypes: ValType[]
  readonly used = new Set<OpName>()
  private readonly code: number[] = []
  private readonly locals: ValType[] = []
  private readonly stack: ValType[] = []
  private readonly frames: Frame[] = []

  constructor(
    params: P,
    readonly results: ValType[] = [],
  ) {
    this.paramTypes = Object.values(params)
    const index: Record<string, number> = {}
    Object.keys(params).forEach((key, i) => (index[key] = i))
    this.param = index as Record<keyof P, number>
  }

  /** A new local of `type`; returns its index. */
  local(type: ValType): number {
    this.locals.push(type)
    return this.paramTypes.length + this.locals.length - 1
  }

  /** Any instruction without immediates, by name: op('f32x4.mul'). */
  op(name: OpName): this {
    if (name === 'select') return this.select()
    return this.emit(name)
  }

  get(local: number): this {
    return this.emit('local.get', u32(local), [], [this.typeOf(local)])
  }
  set(local: number): this {
    return this.emit('local.set', u32(local), [this.typeOf(local)], [])
  }
  tee(local: number): this {
    return this.emit('local.tee', u32(local), [this.typeOf(local)], [this.typeOf(local)])
  }
  i32(value: number): this {
    return this.emit('i32.const', s32(value))
  }
  /** v128.const of sixteen zero bytes: four 0.0f lanes. */
  zero(): this {
    return this.emit('v128.const', new Array<number>(16).fill(0))
  }
  /** f32.const: the float32 nearest `value`, as 4 little-endian bytes. */
  f32(value: number): this {
    return this.emit('f32.const', Array.from(new Uint8Array(Float32Array.of(value).buffer)))
  }
  /** `value` in all four lanes (f32.const, f32x4.splat). */
  splat(value: number): this {
    return this.f32(value).op('f32x4.splat')
  }
  /** f32x4.extract_lane: lane `lane` (0–3) of the vector on the stack, as an f32. */
  lane(lane: number): this {
    return this.emit('f32x4.extract_lane', [lane])
  }
  /** f64x2.extract_lane: lane `lane` (0–1) of the vector on the stack, as an f64. */
  lane64(lane: number): this {
    return this.emit('f64x2.extract_lane', [lane])
  }
  /** i8x16.shuffle of the two vectors on the stack: byte i of the result is byte bytes[i] of (first ‖ second). */
  shuffle(bytes: number[]): this {
    return this.emit('i8x16.shuffle', bytes)
  }
  /** A load or store at the address on the stack plus a constant byte offset. */
  mem(name: OpName, offset = 0): this {
    return this.emit(name, [...u32(ALIGN[name] ?? 0), ...u32(offset)])
  }

  /** `select`: of the two values under the i32 on the stack, the first if it is non-zero, else the second. */
  select(): this {
    const type = this.stack.at(-2) ?? 'i32'
    return this.emit('select', [], [type, type, 'i32'], [type])
  }

  /** `loop … br_if 0 end`: run `body` once, then again while it leaves a non-zero i32 on the stack. */
  doWhile(body: () => void): this {
    this.open('loop', [EMPTY_BLOCK])
    body()
    return this.emit('br_if', u32(0)).close()
  }

  /** `block … end`: a `br_if 0` inside `body` jumps past it (a guard that skips the rest). */
  block(body: () => void): this {
    this.open('block', [EMPTY_BLOCK])
    body()
    return this.close()
  }

  skipIf(): this {
    return this.emit('br_if', u32(0))
  }

  /** `if … else … end` on the i32 on the stack; each branch leaves one `result` value, or nothing. */
  ifElse(then: () => void, otherwise: () => void, result?: ValType): this {
    this.open('if', [result ? VALTYPE[result] : EMPTY_BLOCK], result)
    then()
    this.endFrame('else')
    this.emit('else')
    this.frames.push({ height: this.stack.length, result })
    otherwise()
    return this.close()
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
    if (FunctionBody.checks) {
      if (this.frames.length) fail('wasm emitter', `${this.frames.length} block(s) left open`)
      const left = this.stack.join(' '),
        want = this.results.join(' ')
      if (left !== want) fail('wasm emitter', `the function ends with [${left}] on the stack, not [${want}]`)
    }
    const groups: number[][] = []
    for (let i = 0; i < this.locals.length;) {
      let j = i
      while (j < this.locals.length && this.locals[j] === this.locals[i]) j++
      groups.push([...u32(j - i), VALTYPE[this.locals[i]]])
      i = j
    }
    const body = [...vec(groups), ...this.code, ...OPCODES.end.bytes]
    return [...u32(body.length), ...body]
  }

  private typeOf(local: number): ValType {
    const type = local < this.paramTypes.length ? this.paramTypes[local] : this.locals[local - this.paramTypes.length]
    return type ?? fail('wasm emitter', `no local ${local}`)
  }

  private emit(
    name: OpName,
    immediates: number[] = [],
    pops = OPCODES[name].pops,
    pushes = OPCODES[name].pushes,
  ): this {
    if (FunctionBody.checks) {
      const floor = this.frames.at(-1)?.height ?? 0
      for (const want of [...pops].reverse()) {
        const got = this.stack.length > floor ? this.stack.pop() : 'nothing'
        if (got !== want)
          fail('wasm emitter', `${name} (byte ${this.code.length}) wants ${want} on the stack, found ${got}`)
      }
      this.stack.push(...pushes)
    }
    this.used.add(name)
    this.code.push(...OPCODES[name].bytes, ...immediates)
    return this
  }

  private open(name: 'block' | 'loop' | 'if', immediates: number[], result?: ValType): void {
    this.emit(name, immediates)
    this.frames.push({ height: this.stack.length, result })
  }

  /** The open frame's body must leave exactly its result (if any) above where it started. */
  private endFrame(at: string): void {
    const frame = this.frames.pop()
    if (!FunctionBody.checks || !frame) return
    const left = this.stack.splice(frame.height).join(' ')
    if (left !== (frame.result ?? ''))
      fail('wasm emitter', `${at} (byte ${this.code.length}): the block leaves [${left}], not [${frame.result ?? ''}]`)
  }

  private close(): this {
    const result = this.frames.at(-1)?.result
    this.endFrame('end')
    this.emit('end', [], [], result ? [result] : [])
    return this
  }
}

/** The memory every kernel module imports as env.memory: pages of 64 KiB; a shared one must state its maximum. */
export type MemoryImport = { shared: boolean; minPages: number; maxPages: number }

/** A whole module: one imported memory and the named functions, each exported under its name. */
export function wasmModule(memory: MemoryImport, functions: Record<string, FunctionBody>): Uint8Array {
  const bodies = Object.values(functions)
  const signatures = bodies.map((f) => [
    0x60,
    ...vec(f.paramTypes.map((t) => [VALTYPE[t]])),
    ...vec(f.results.map((t) => [VALTYPE[t]])),
  ])
  const limits = [memory.shared ? 0x03 : 0x01, ...u32(memory.minPages), ...u32(memory.maxPages)]
  const imports = [[...name('env'), ...name('memory'), 0x02, ...limits]] // 0x02: a memory import
  const exports = Object.keys(functions).map((fn, i) => [...name(fn), 0x00, ...u32(i)]) // 0x00: a function export
  const magic = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00] // "\0asm", version 1
  return Uint8Array.from([
    ...magic,
    ...section(1, vec(signatures)),
    ...section(2, vec(imports)),
    ...section(3, vec(bodies.map((_, i) => u32(i)))), // function i has type i
    ...section(7, vec(exports)),
    ...section(10, vec(bodies.map((f) => f.bytes()))),
  ])
}

/** A private memory of up to maxPages pages of 64 KiB, for one thread's modules. */
export function newMemory(maxPages: number): WasmMemory {
  if (!webAssembly) fail('wasm backend', 'no WebAssembly in this runtime')
  return new webAssembly.Memory({ initial: 2, maximum: maxPages })
}

/** Compile `bytes` and instantiate them on `memory` (imported as env.memory); returns the module's exports. */
export function instantiate<Exports>(bytes: Uint8Array, memory: WasmMemory): Exports {
  if (!webAssembly) fail('wasm backend', 'no WebAssembly in this runtime')
  return new webAssembly.Instance(new webAssembly.Module(bytes), { env: { memory } }).exports as Exports
}
