// Error messages in one line: the op, what it got, what it expected. `fail` throws one; `quote` shows a value
// from a user or a file safely: never more than `max` characters, however long, deep or cyclic the value is.

/** Throw `op: message`. Typed `never`, so `if (bad) fail(…)` narrows like a throw. */
export function fail(op: string, message: string): never {
  throw new Error(`${op}: ${message}`)
}

/**
 * `value` as JSON-like text cut to `max` characters (with '…'); walked without recursion, so depth cannot overflow.
 */
export function quote(value: unknown, max = 200): string {
  let out = ''
  // a stack of what is left to write: values, or literal text such as ', ' and '}'
  const todo: ({ value: unknown } | string)[] = [{ value }]
  const seen = new Set<object>()
  while (todo.length && out.length <= max) {
    const next = todo.pop()!
    if (typeof next === 'string') {
      out += next
      continue
    }
    const v = next.value
    if (typeof v === 'string') out += JSON.stringify(v.length > max ? v.slice(0, max + 1) : v)
    else if (typeof v === 'bigint') out += `${v}n`
    else if (typeof v !== 'object' || v === null) out += String(v)
    else if (seen.has(v)) out += '[cycle]'
    else if (ArrayBuffer.isView(v)) out += `${v.constructor.name}(${(v as { length?: number }).length ?? v.byteLength})`
    else {
      seen.add(v)
      const isArray = Array.isArray(v)
      const room = Math.ceil(max / 2) + 1 // more entries than this cannot fit in max characters
      const entries = isArray ? v.slice(0, room).map((item) => ['', item] as const) : Object.entries(v).slice(0, room)
      const parts: ({ value: unknown } | string)[] = [isArray ? '[' : '{']
      for (let i = 0; i < entries.length; i++) {
        if (i > 0) parts.push(', ')
        if (!isArray) parts.push(`${JSON.stringify(entries[i][0])}: `)
        parts.push({ value: entries[i][1] })
      }
      parts.push(isArray ? ']' : '}')
      todo.push(...parts.reverse())
    }
  }
  return out.length > max ? out.slice(0, max) + '…' : out
}
