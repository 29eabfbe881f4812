// Module: layers find their parameters by walking their own fields (Tensors, Modules, arrays of
// Modules), like micrograd's Module.parameters() without each layer listing them by hand.
import { Tensor } from '../src/tensor.js'
import { shapeStr, sameShape } from '../src/shape.js'

export class Module {
  training = true

  /** Every parameter once, even when two names share one Tensor (tied weights). */
  parameters(): Tensor[] {
    return [...new Set(Array.from(this.namedParameters(), ([, t]) => t))]
  }

  /** [dotted name, tensor] for every Tensor in this module's fields and sub-modules, in declaration order. */
  *namedParameters(prefix = ''): Generator<[string, Tensor]> {
    // own Tensors first, then the children's: the dotted names are the checkpoint keys, so the order is stable
    for (const [key, value] of Object.entries(this)) {
      if (value instanceof Tensor) yield [prefix + key, value]
    }
    for (const [name, child] of this.namedChildren()) yield* child.namedParameters(`${prefix}${name}.`)
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

  /** This module ('' ) and every descendant, with dotted paths. */
  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix, this]
    for (const [name, child] of this.namedChildren()) yield* child.namedModules(prefix ? `${prefix}.${name}` : name)
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
    const own = this.stateDict()
    // names often come from a file: only own keys count, so a '__proto__' or 'constructor' entry is just unexpected
    const missing = Object.keys(own).filter((k) => !Object.hasOwn(dict, k))
    const unexpected = Object.keys(dict).filter((k) => !Object.hasOwn(own, k))
    if (strict && missing.length) throw new Error(`loadStateDict: missing key(s) ${missing.join(', ')}`)
    if (strict && unexpected.length) throw new Error(`loadStateDict: unexpected key(s) ${unexpected.join(', ')}`)
    for (const [k, t] of Object.entries(own)) {
      const src = Object.hasOwn(dict, k) ? dict[k] : undefined
      if (src && !sameShape(src.shape, t.shape))
        throw new Error(
          `loadStateDict: ${k} has shape ${shapeStr(src.shape)} in the file but ${shapeStr(t.shape)} in the model`,
        )
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
    for (const part of path.split('.')) {
      cur = cur instanceof Module || Array.isArray(cur) ? Reflect.get(cur, part) : undefined
      if (cur === undefined) throw new Error(`getModule: no module at '${path}' (nothing at '${part}')`)
    }
    if (!(cur instanceof Module)) throw new Error(`getModule: '${path}' is not a module`)
    return cur
  }

  /** Replace the sub-module at a dotted path (LoRA and quantization swap layers this way). */
  setModule(path: string, module: Module): void {
    // walk to the parent (a module or an array of them) and replace one field: only an existing module can go
    const parts = path.split('.')
    const last = parts.pop()!
    let parent: unknown = this
    for (const part of parts)
      parent = parent instanceof Module || Array.isArray(parent) ? Reflect.get(parent, part) : undefined
    if (!(parent instanceof Module || Array.isArray(parent)) || !(Reflect.get(parent, last) instanceof Module)) {
      throw new Error(`setModule: no module at '${path}' to replace`)
    }
    Reflect.set(parent, last, module)
  }
}

/** A value's class name (or the value itself), for error messages. */
export function typeName(v: unknown): string {
  return v instanceof Object ? v.constructor.name : String(v)
}
