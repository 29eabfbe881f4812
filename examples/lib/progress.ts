// A training progress bar (cli-progress) showing step, loss, tokens/s and ETA. When stderr is not a terminal
// (CI, a test's child process) it prints a plain line every tenth of the run instead of redrawing.
import cliProgress from 'cli-progress'

export type Progress = { update(step: number, fields: Record<string, string>): void; stop(): void }

/**
 * A bar for `total` steps on `stream` (a terminal), else plain lines on stdout; `columns` maps the keys of the fields
 * given to update() to their labels. Keys are plain words: cli-progress fills only {\w+} placeholders ({tok/s} stays).
 */
export function progressBar(
  label: string,
  total: number,
  columns: Record<string, string>,
  stream: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr,
): Progress {
  const keys = Object.keys(columns)
  for (const key of keys)
    if (!/^\w+$/.test(key)) throw new Error(`progressBar: field key '${key}' must be letters, digits or _`)
  if (stream.isTTY) {
    const fields = keys.map((key) => `${columns[key]} {${key}}`).join(' | ')
    const format = `${label} |{bar}| {value}/{total} | ${fields} | ETA {eta_formatted}`
    const bar = new cliProgress.SingleBar(
      { format, stream, hideCursor: true, etaBuffer: 20, fps: 5, barsize: 24 },
      cliProgress.Presets.shades_classic,
    )
    bar.start(total, 0, Object.fromEntries(keys.map((key) => [key, '-'])))
    return { update: (step, values) => bar.update(step, values), stop: () => bar.stop() }
  }
  const every = Math.max(1, Math.round(total / 10))
  const line = (values: Record<string, string>) =>
    keys.map((key) => `${columns[key]} ${values[key] ?? '-'}`).join(' | ')
  return {
    update: (step, values) => {
      if (step % every === 0 || step === total) console.log(`${label} ${step}/${total} | ${line(values)}`)
    },
    stop: () => {},
  }
}
