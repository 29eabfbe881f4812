// A training progress bar (cli-progress) showing step, loss, tokens/s and ETA. When stderr is not a terminal
// (CI, a test's child process) it prints a plain line every tenth of the run instead of redrawing.
import cliProgress from 'cli-progress'

export type Progress = { update(step: number, fields: Record<string, string>): void; stop(): void }

/**
 * A bar for `total` steps on `stream` (a terminal), else plain lines on stdout; `columns` are [key, label] pairs of
 * the fields given to update(). Keys are plain words: cli-progress fills only {\w+} placeholders ({tok/s} stays as is).
 */
export function progressBar(
  label: string,
  total: number,
  columns: [string, string][],
  stream: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr,
): Progress {
  for (const [key] of columns)
    if (!/^\w+$/.test(key)) throw new Error(`progressBar: field key '${key}' must be letters, digits or _`)
  if (stream.isTTY) {
    const format = `${label} |{bar}| {value}/{total} | ${columns.map(([key, name]) => `${name} {${key}}`).join(' | ')} | ETA {eta_formatted}`
    const bar = new cliProgress.SingleBar(
      { format, stream, hideCursor: true, etaBuffer: 20, fps: 5, barsize: 24 },
      cliProgress.Presets.shades_classic,
    )
    bar.start(total, 0, Object.fromEntries(columns.map(([key]) => [key, '-'])))
    return { update: (step, fields) => bar.update(step, fields), stop: () => bar.stop() }
  }
  const every = Math.max(1, Math.round(total / 10))
  return {
    update: (step, fields) => {
      if (step % every === 0 || step === total)
        console.log(
          `${label} ${step}/${total} | ${columns.map(([key, name]) => `${name} ${fields[key] ?? '-'}`).join(' | ')}`,
        )
    },
    stop: () => {},
  }
}
