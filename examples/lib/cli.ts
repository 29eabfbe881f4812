// Command-line plumbing shared by the examples: numeric flags checked with a clear message, and a main
// wrapper that turns any error into one line on stderr and exit code 1 (no stack trace for bad input).
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The number in flag --name, checked: "--iters must be an integer ≥ 1, got 'abc'". */
export function numberFlag(name: string, value: string | undefined, { integer = false, min = -Infinity, max = Infinity } = {}): number {
  const x = value === undefined || value.trim() === '' ? NaN : Number(value)
  const ok = Number.isFinite(x) && (!integer || Number.isInteger(x)) && x >= min && x <= max
  if (!ok) {
    const range = [min > -Infinity ? `>= ${min}` : '', max < Infinity ? `<= ${max}` : ''].filter(Boolean).join(' and ')
    throw new Error(`--${name} must be ${integer ? 'an integer' : 'a number'}${range ? ` ${range}` : ''}, got ${JSON.stringify(value ?? '')}`)
  }
  return x
}

/** True when `importMetaUrl`'s file is the script node was started with (not imported by another one). */
export function isMain(importMetaUrl: string): boolean {
  return process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(importMetaUrl)
}

/** Run main; on an error print "error: <message>" and exit 1. TENNY_DEBUG=1 prints the stack too. */
export function runMain(main: () => void | Promise<void>): void {
  Promise.resolve().then(main).catch((err: unknown) => {
    const message = err instanceof Error ? err.message : String(err)
    console.error(process.env.TENNY_DEBUG && err instanceof Error ? err.stack : `error: ${message}`)
    process.exit(1)
  })
}
