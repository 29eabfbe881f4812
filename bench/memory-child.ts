// One peak-memory measurement in a process of its own: `tsx bench/memory-child.ts <tenny|tfjs|jaxjs> <backend>
// <full|lora> <steps>` trains the tiny GPT for a few steps and prints one JSON line. Only the measured
// engine is imported, so neither engine's code or weights count against the other.
import { readFileSync } from 'node:fs'
import { TINY_GPT, BATCH, LORA, SEED, ADAMW, batchData } from './config'

export type MemoryReport = {
  loadedMB: number
  builtMB: number
  peakMB: number
  stepMs: number
  loss: number
  /** what Tenny's `auto` installed */ picked?: string
}

const mb = (bytes: number) => bytes / (1024 * 1024)

/**
 * Peak RSS of this process in MB. NOTE: not process.resourceUsage().maxRSS: Linux keeps ru_maxrss across
 * fork + exec, so a child would report its parent's RSS at spawn whenever that was larger. VmHWM belongs
 * to the address space exec created, so it counts this process only.
 */
function peakMB(): number {
  try {
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))
    if (hwm) return Number(hwm[1]) / 1024
  } catch {
    /* not Linux */
  }
  return process.resourceUsage().maxRSS / 1024
}

async function main(): Promise<void> {
  const [engine, backend, mode, stepsArg] = process.argv.slice(2)
  const steps = Number(stepsArg)
  if (!['tenny', 'tfjs', 'jaxjs'].includes(engine) || !['full', 'lora'].includes(mode) || !(steps >= 1)) {
    throw new Error(
      `memory-child: usage <tenny|tfjs|jaxjs> <backend> <full|lora> <steps>, got ${process.argv.slice(2).join(' ')}`,
    )
  }
  const { idx, targets } = batchData(TINY_GPT, BATCH)
  let step: () => number
  let loadedMB: number
  let picked: (() => string) | undefined
  if (engine === 'tenny' && backend === 'auto') {
    // what a user gets: the entry's default, probed at the first product of the first step
    const { backendInfo } = await import('../src/node')
    const { buildTennyGPT, tennyTrainer } = await import('./tenny-gpt')
    loadedMB = mb(process.memoryUsage().rss)
    step = tennyTrainer(buildTennyGPT(TINY_GPT, SEED, { lora: mode === 'lora' }), idx, targets, BATCH)
    picked = () => `${backendInfo().backend} on ${backendInfo().threads} thread(s)`
  } else if (engine === 'tenny') {
    const { buildTennyGPT, tennyTrainer } = await import('./tenny-gpt')
    const { loadTennyBackends } = await import('./tenny-backends')
    const backends = await loadTennyBackends([backend])
    await backends.use(backend)
    loadedMB = mb(process.memoryUsage().rss)
    step = tennyTrainer(buildTennyGPT(TINY_GPT, SEED, { lora: mode === 'lora' }), idx, targets, BATCH)
  } else if (engine === 'jaxjs') {
    // the full step only, through jit (backend: 'jit') or eagerly
    const { JaxGPT } = await import('./jaxjs-gpt')
    const { randomWeights } = await import('./config')
    if (mode !== 'full') throw new Error('memory-child: jax-js trains all weights only')
    loadedMB = mb(process.memoryUsage().rss)
    const model = new JaxGPT(TINY_GPT, randomWeights(TINY_GPT), ADAMW)
    step = () => model.step(idx, targets, BATCH, { useJit: backend === 'jit' })
  } else {
    const { TfGPT, useTf } = await import('./tfjs-gpt')
    const { randomWeights } = await import('./config')
    if (backend !== 'cpu' && backend !== 'wasm')
      throw new Error(`memory-child: tfjs backend must be cpu or wasm, got ${backend}`)
    await useTf(backend)
    loadedMB = mb(process.memoryUsage().rss)
    const model = new TfGPT(
      TINY_GPT,
      randomWeights(TINY_GPT, mode === 'lora' ? LORA : undefined),
      mode === 'lora' ? LORA : undefined,
    )
    step = () => model.step(idx, targets, BATCH, TINY_GPT.blockSize, ADAMW)
  }
  const builtMB = mb(process.memoryUsage().rss)
  let loss = NaN
  const t0 = performance.now()
  for (let i = 0; i < steps; i++) loss = step()
  const stepMs = (performance.now() - t0) / steps
  const report: MemoryReport = { loadedMB, builtMB, peakMB: peakMB(), stepMs, loss, picked: picked?.() }
  console.log(JSON.stringify(report))
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err instanceof Error ? err.message : String(err))
    process.exit(1)
  },
)
