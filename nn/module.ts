// Module: layers find their parameters by walking their own fields (Tensors, Modules, arrays of
// Modules), like micrograd's Module.parameters() without each layer listing them by hand.
import { Tensor } from '../src/tensor.js'
import { shapeStr, sameShape } from '../src/shape.js'
import { fail, quote } from '../src/errors.js'

export class Module {
  training = true

  /** Every parameter once, even when two names share one Tensor (tied weights). */
  parameters(): Tensor[] {
    return [...new Set(Array.from(this.namedParameters(), ([, t]) => t))]
  }

  /** [dotted name, tensor] for every Tensor in this module's fields and sub-modules, in declaration order. */
  *namedParameters(prefix = ''): Generator<[string, Tensor]> {
    // a module's own Tensors, then its children's: the dotted names are the checkpoint keys, so the order is stable
    for (const [path, m] of this.namedModules())
      for (const [key, value] of Object.entries(m))
        if (value instanceof Tensor) yield [`${prefix}${path && `${path}.`}${key}`, value]
  }

  /** Direct sub-modules with their field names; arrays of modules give `blocks.0`, `blocks.1`, ... */
  *namedChildren(): Generator<[string, Module]> {
    for (const [key, value] of Object.entries(this)) {
      if (value instanceof Module) yield [key, value]
      else if (Array.isArray(value)) {
        for (const [i, item] of value.entries()) if (item instanceof Module) yield [`${key}.${i}`, item]
      }
    }
  }

  children(): Module[] {
    return Array.from(this.namedChildren(), ([, m]) => m)
  }

  /**
   * This module ('') and every descendant, with dotted paths. A module reachable by two paths (the adapters of a
   * NamedAdapters share their base) is one module: listed once, at the first path, as PyTorch's named_modules does.
   */
  *namedModules(prefix = '', seen = new Set<Module>()): Generator<[string, Module]> {
    if (seen.has(this)) return
    seen.add(this)
    yield [prefix, this]
    for (const [name, child] of this.namedChildren())
      yield* child.namedModules(prefix ? `${prefix}.${name}` : name, seen)
  }

  /** Only what the optimizer should update. */
  trainableParameters(): Tensor[] {
    return this.parameters().filter((t) => t.requiresGrad)
  }

  numParameters({ trainable = false } = {}): number {
    return (trainable ? this.trainableParameters() : this.parameters()).reduce((n, t) => n + t.size, 0)
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode
    return this
  }

  eval(): this {
    return this.train(false)
  }

  freeze(): this {
    for (const t of this.parameters()) t.requiresGrad = false
    return this
  }

  unfreeze(): this {
    for (const t of this.parameters()) t.requiresGrad = true
    return this
  }

  /** Every parameter by dotted name (the tensors themselves, not copies). */
  stateDict(): Record<string, Tensor> {
    return Object.fromEntries(this.namedParameters())
  }

  /** Copy values in by name. strict: a missing or unexpected key is an error; a wrong shape always is. */
  loadStateDict(dict: Record<string, Tensor>, { strict = true } = {}): void {
    const op = 'loadStateDict'
    if (typeof dict !== 'object' || dict === null) fail(op, `expected { name: Tensor }, got ${quote(dict)}`)
    const own = this.stateDict()
    // names often come from a file: only own keys count, so a '__proto__' or 'constructor' entry is just unexpected
    const missing = Object.keys(own).filter((k) => !Object.hasOwn(dict, k))
    const unexpected = Object.keys(dict).filter((k) => !Object.hasOwn(own, k))
    const list = (keys: string[]) => keys.slice(0, 8).join(', ') + (keys.length > 8 ? `, … (${keys.length})` : '')
    if (strict && missing.length) fail(op, `missing key(s) ${list(missing)}`)
    if (strict && unexpected.length) fail(op, `unexpected key(s) ${list(unexpected)}`)
    for (const [k, t] of Object.entries(own)) {
      const src = Object.hasOwn(dict, k) ? dict[k] : undefined
      if (src !== undefined && !(src instanceof Tensor)) fail(op, `${k} is ${quote(src)}, not a Tensor`)
      if (src && !sameShape(src.shape, t.shape))
        fail(op, `${k} has shape ${shapeStr(src.shape)} in the file but ${shapeStr(t.shape)} in the model`)
    }
    for (const [k, t] of Object.entries(own)) {
      if (!Object.hasOwn(dict, k)) continue
      t.data.set(dict[k].data) // validated above: all or nothing
      t.version++
    }
  }

  /** The sub-module at a dotted path such as `blocks.0.attn.qProj` (array items by index). */
  getModule(path: string): Module {
    // a path from a file could name any field ('constructor', a number): only a Module at the end is returned
    let cur: unknown = this
    if (typeof path !== 'string') fail('getModule', `expected a dotted path, got ${quote(path)}`)
    for (const part of path.split('.')) {
      cur = cur instanceof Module || Array.isArray(cur) ? Reflect.get(cur, part) : undefined
      if (cur === undefined) fail('getModule', `no module at ${quote(path)} (nothing at ${quote(part)})`)
    }
    if (!(cur instanceof Module)) fail('getModule', `${quote(path)} is not a module`)
    return cur
  }

  /** Replace the sub-module at a dotted path (LoRA and quantization swap layers this way). */
  setModule(path: string, module: Module): void {
    // walk to the parent (a module or an array of them) and replace one field: only an existing module can go
    if (typeof path !== 'string' || !(module instanceof Module))
      fail('setModule', `expected a dotted path and a Module, got ${quote(path)} and ${typeName(module)}`)
    const parts = path.split('.')
    const last = parts.pop()!
    let parent: unknown = this
    for (const part of parts)
      parent = parent instanceof Module || Array.isArray(parent) ? Reflect.get(parent, part) : undefined
    const old: unknown = parent instanceof Module || Array.isArray(parent) ? Reflect.get(parent, last) : undefined
    if (!(old instanceof Module)) fail('setModule', `no module at ${quote(path)} to replace`)
    // a module used at two places (adapters share their base) is replaced at both, or they would drift apart
    for (const [, m] of [...this.namedModules()]) {
      for (const [key, value] of Object.entries(m)) {
        if (value === old) Reflect.set(m, key, module)
        else if (Array.isArray(value)) value.forEach((item, i) => item === old && (value[i] = module))
      }
    }
  }
}

/** A value's class name (or the value itself), for error messages. */
export function typeName(v: unknown): string {
  return v instanceof Object ? v.constructor.name : String(v)
}
