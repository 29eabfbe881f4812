// Command-line plumbing shared by the examples: a main wrapper that turns any error into one line on stderr and
// exit code 1 (no stack trace for bad input), and Ctrl-C as a request to stop and save.
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** True when `importMetaUrl`'s file is the script node was started with (not imported by another one). */
export function isMain(importMetaUrl: string): boolean {
  return process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(importMetaUrl)
}

/** Run main; on an error print "error: <message>" and exit 1. TENNY_DEBUG=1 prints the stack too. */
export function runMain(main: () => void | Promise<void>): void {
  Promise.resolve()
    .then(main)
    .catch((err: unknown) => {
      const message = err instanceof Error ? err.message : String(err)
      console.error(process.env.TENNY_DEBUG && err instanceof Error ? err.stack : `error: ${message}`)
      process.exit(1)
    })
}

/** How long after the first Ctrl-C another one still counts as the same keypress, forwarded again by npm or a shell. */
const ECHO_MS = 3000

/**
 * Ctrl-C as a request to stop cleanly: the first SIGINT sets stopped() (the caller finishes its step and saves).
 * A terminal sends SIGINT to every process of the foreground group and npm forwards it once more, so one keypress
 * can arrive twice; a second within 3 s is taken as that echo. A third, or a second after 3 s, exits at once (130).
 */
export function stopOnCtrlC(message: string): { stopped(): boolean; release(): void } {
  let first = 0,
    count = 0
  const onSigint = () => {
    count++
    if (count === 1) {
      first = Date.now()
      console.log(`\n${message} (Ctrl-C again to quit without saving)`)
    } else if (count >= 3 || Date.now() - first > ECHO_MS) process.exit(130)
  }
  process.on('SIGINT', onSigint)
  return { stopped: () => count > 0, release: () => void process.off('SIGINT', onSigint) }
}
