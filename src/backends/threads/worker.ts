// What every worker thread of the pool runs (started by worker-node.ts or worker-web.ts): wait for a job on
// the shared memory, do its share, go idle, forever. The job's kind picks the kernel; an error is reported
// in the memory, since the caller may be blocked on this thread and cannot receive a message.
import { WorkerEnd, JOB } from './pool.js'
import { parallelJob, TS_BLOCKS } from './parallel.js'
import { wasmJob, WASM_PANELS } from '../wasm/driver.js'
import type { WorkerInit } from './threads.js'

const JOBS: Record<number, (end: WorkerEnd) => void> = { [TS_BLOCKS]: parallelJob, [WASM_PANELS]: wasmJob }

/** The worker's loop. Returns only when the pool is retired (its state word is FAILED). */
export function runWorker(init: WorkerInit): void {
  const end = new WorkerEnd(init)
  try {
    end.idle()
    for (;;) {
      if (!end.claimJob()) return
      const job = JOBS[end.ctl[JOB]]
      if (!job) throw new Error(`unknown job kind ${end.ctl[JOB]}`)
      job(end)
      end.idle()
    }
  } catch (err) {
    end.fail(`worker ${init.index}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
  }
}
