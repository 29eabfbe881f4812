// Row (6): peak resident memory (RSS) of training each GPT configuration, one child process per engine and
// configuration — the only fair way, since neither engine gives memory back to the OS in-process.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { MemoryReport } from './memory-child'
import type { TfBackend } from './tfjs-gpt'
import type { Row } from './timing'

export type MemoryOptions = { quick: boolean; tennyBackends: string[]; tfBackends: TfBackend[]; jaxjs: boolean }

function runChild(
  engine: 'tenny' | 'tfjs' | 'jaxjs',
  backend: string,
  mode: 'full' | 'lora',
  steps: number,
): MemoryReport | string {
  const script = fileURLToPath(new URL('./memory-child.ts', import.meta.url))
  const res = spawnSync(process.execPath, ['--import', 'tsx', script, engine, backend, mode, String(steps)], {
    encoding: 'utf8',
    timeout: 300_000,
    maxBuffer: 16 << 20,
  })
  const line = res.stdout.trim().split('\n').pop() ?? ''
  if (res.status !== 0 || !line.startsWith('{'))
    return `child failed (${res.status ?? res.signal}): ${res.stderr.trim().split('\n').pop() ?? ''}`.slice(0, 200)
  return JSON.parse(line) as MemoryReport
}

export function memoryRows({ quick, tennyBackends, tfBackends, jaxjs }: MemoryOptions): Row[] {
  const steps = quick ? 1 : 2
  const repeats = quick ? 1 : 2 // RSS depends on when V8 collects: report the larger of two processes
  const rows: Row[] = []
  for (const mode of ['full', 'lora'] as const) {
    const row: Row = {
      section: 'memory (peak RSS of a whole Node process training the tiny GPT)',
      name: `GPT peak RSS, ${mode === 'full' ? 'all weights' : 'LoRA r=8'}, ${steps} step${steps > 1 ? 's' : ''} (own process)`,
      unit: 'MB',
      cells: {},
      notes: [],
    }
    rows.push(row)
    const columns = [
      ...tennyBackends.map((b) => ['tenny', b] as const),
      ...tfBackends.map((b) => ['tfjs', b] as const),
      ...(jaxjs && mode === 'full' ? [['jaxjs', 'jit'] as const] : []),
    ]
    for (const [engine, backend] of columns) {
      const column = `${{ tenny: 'Tenny', tfjs: 'tfjs', jaxjs: 'jax-js' }[engine]} ${backend}`
      if (quick && engine === 'tfjs' && backend === 'cpu') {
        row.cells[column] = null
        row.notes.push(`${column}: not run under --quick`)
        continue
      }
      const reports = Array.from({ length: repeats }, () => runChild(engine, backend, mode, steps))
      const failure = reports.find((r): r is string => typeof r === 'string')
      if (failure) {
        row.cells[column] = null
        row.notes.push(`${column}: ${failure}`)
        continue
      }
      const ok = reports.filter((r): r is MemoryReport => typeof r !== 'string')
      const peaks = ok.map((r) => r.peakMB)
      row.cells[column] = {
        value: Math.max(...peaks),
        method: `the larger peak RSS (VmHWM) of ${repeats} child process(es), ${steps} step(s) each`,
        samples: repeats,
      }
      const picks = ok.some((r) => r.picked)
        ? ` (auto picked ${ok.map((r) => r.picked).join(', then ')}; its probe runs in the first step)`
        : ''
      row.notes.push(
        `${column}: ${peaks.map((p) => p.toFixed(0)).join(' and ')} MB peak, ${ok[0].loadedMB.toFixed(0)} MB with the engine loaded before the model${picks}`,
      )
    }
  }
  return rows
}
