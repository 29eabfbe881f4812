// Tenny's matmul backends as bench columns. src/node.ts (setBackend / backendInfo) is optional here:
// when it is absent, or a backend fails to start, the column is skipped with a note instead of failing.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

type BackendApi = { setBackend(name: string, options?: { threads?: number }): unknown; backendInfo(): unknown }

export type TennyBackends = {
  /** backends that started, 'cpu' always first */
  names: string[]
  notes: string[]
  /** what each backend says runs matmul (backendInfo().matmul), for the report's header */
  details: Record<string, string>
  /** switch every Tenny kernel call to this backend ('cpu' works without src/backend.ts) */
  use(name: string): Promise<void>
  info(): unknown
}

/** Bench columns: a name, and what setBackend() is given for it. wasm-Nt is the wasm backend on all N threads. */
const CANDIDATES: [string, string, { threads?: number }][] = [
  ['cpu', 'cpu', {}],
  ['parallel', 'parallel', {}],
  ['wasm-1t', 'wasm', { threads: 1 }],
  ['wasm-Nt', 'wasm', {}],
  ['gpujs', 'gpujs', {}],
]

function isBackendApi(m: unknown): m is BackendApi {
  return (
    typeof m === 'object' &&
    m !== null &&
    'setBackend' in m &&
    typeof m.setBackend === 'function' &&
    'backendInfo' in m &&
    typeof m.backendInfo === 'function'
  )
}

/** Probe src/node.ts, Node's entry (or `url`) once; `only` restricts to the listed backends (e.g. from --backends=cpu,parallel). */
export async function loadTennyBackends(
  only?: string[],
  url = new URL('../src/node.ts', import.meta.url),
): Promise<TennyBackends> {
  if (!existsSync(fileURLToPath(url))) {
    return {
      names: ['cpu'],
      notes: ["src/node.ts is not in this checkout: only Tenny's CPU kernels were measured."],
      use: async (name) => {
        if (name !== 'cpu') throw new Error(`bench: backend '${name}' needs src/node.ts`)
      },
      info: () => ({ backend: 'cpu' }),
      details: { cpu: 'TS kernels, 1 thread' },
    }
  }
  const mod: unknown = await import(url.href)
  if (!isBackendApi(mod)) throw new Error('bench: src/node.ts does not export setBackend() and backendInfo()')
  const api = mod
  const names: string[] = []
  const notes: string[] = []
  const details: Record<string, string> = {}
  const calls = new Map<string, [string, { threads?: number }]>([['cpu', ['cpu', {}]]]) // suites go back to cpu after each column
  const field = (info: unknown, key: string) =>
    typeof info === 'object' && info !== null && key in info ? String((info as Record<string, unknown>)[key]) : '?'
  for (const [column, backend, options] of CANDIDATES) {
    if (
      only &&
      !only.includes(column) &&
      !(column === 'wasm-Nt' && only.some((o) => /^wasm-\d+t$/.test(o) && o !== 'wasm-1t'))
    )
      continue
    try {
      await api.setBackend(backend, options)
      const info = api.backendInfo()
      const name = column === 'wasm-Nt' ? `wasm-${field(info, 'threads')}t` : column
      if (names.includes(name)) continue // one core: wasm on all threads is wasm-1t again
      names.push(name)
      calls.set(name, [backend, options])
      details[name] = field(info, 'matmul')
    } catch (err) {
      notes.push(`Tenny backend '${column}' skipped: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
  if (!only) {
    // what a user gets by default
    try {
      await api.setBackend('auto')
      const info = api.backendInfo()
      notes.push(
        `setBackend('auto') picks '${field(info, 'backend')}' on ${field(info, 'threads')} thread(s) on this machine (${field(info, 'reason')}).`,
      )
    } catch {
      /* a backend module without 'auto' */
    }
  }
  await api.setBackend('cpu')
  const use = async (name: string) => {
    const call = calls.get(name)
    if (!call) throw new Error(`bench: Tenny backend '${name}' is not one of ${names.join(', ')}`)
    await api.setBackend(call[0], call[1])
  }
  return { names, notes, details, use, info: () => api.backendInfo() }
}
