// A training progress bar (cli-progress) showing step, loss, tokens/s and ETA. When stderr is not a terminal
// (CI, a test's child process) it prints a plain line every tenth of the run instead of redrawing.
import cliProgress from 'cli-progress'

export type Progress = { update(step: number, fields: Record<string, string>): void; log(line: string): void; stop(): void }

/** A bar for `total` steps; `columns` name the extra fields shown (loss, tok/s, ...), given to update(). */
export function progressBar(label: string, total: number, columns: string[]): Progress {
  if (process.stderr.isTTY) {
    const format = `${label} |{bar}| {value}/{total} | ${columns.map((c) => `${c} {${c}}`).join(' | ')} | ETA {eta_formatted}`
    const multi = new cliProgress.MultiBar({ format, hideCursor: true, etaBuffer: 20, fps: 5, barsize: 24 }, cliProgress.Presets.shades_classic)
    const bar = multi.create(total, 0, Object.fromEntries(columns.map((c) => [c, '-'])))
    return {
      update: (step, fields) => bar.update(step, fields),
      log: (line) => multi.log(line + '\n'), // printed above the bar
      stop: () => multi.stop(),
    }
  }
  const every = Math.max(1, Math.round(total / 10))
  return {
    update: (step, fields) => {
      if (step % every === 0 || step === total) console.log(`${label} ${step}/${total} | ${columns.map((c) => `${c} ${fields[c] ?? '-'}`).join(' | ')}`)
    },
    log: (line) => console.log(line),
    stop: () => {},
  }
}
