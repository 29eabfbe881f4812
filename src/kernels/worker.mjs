// Bootstrap of every worker thread Tenny starts (src/kernels/parallel.ts): load the TypeScript module
// named in workerData and run its entry function. Plain .mjs so it starts under any runner: Node
// without a TypeScript loader in the worker (Node 20 does not carry tsx's hooks into workers) loads
// the .ts module through tsx's tsImport instead.
import { workerData } from 'node:worker_threads'

const FAILED = 3

async function load(url) {
  try {
    return await import(url) // a runtime that strips types itself
  } catch (err) {
    if (err?.code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw err
    const { tsImport } = await import('tsx/esm/api')
    return tsImport(url, import.meta.url)
  }
}

/** The caller may be blocked in Atomics.wait on this worker: say why on the port, then flip its state word. */
function fail(why) {
  const ctl = new Int32Array(workerData.ctl)
  if (Atomics.load(ctl, workerData.stateSlot) === FAILED) return
  workerData.port.postMessage({ error: `${workerData.entry} in ${workerData.module}: ${why}` })
  Atomics.store(ctl, workerData.stateSlot, FAILED)
  Atomics.notify(ctl, workerData.stateSlot)
}

process.on('exit', () => fail('the worker exited'))
try {
  const mod = await load(workerData.module)
  await mod[workerData.entry](workerData)
  fail('the entry function returned')
} catch (err) {
  fail(err?.stack ?? String(err))
}
