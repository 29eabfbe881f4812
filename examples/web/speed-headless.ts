// The playground's training speed against `npm run example`'s at the same settings, side by side:
// `npx tsx examples/web/speed-headless.ts [--iters N] [--rounds R] [--backend wasm]`. Each round trains N steps in
// the page (headless Chromium, the page's own Train button, validation every 100 steps as in Node), then N steps in
// Node (`npm run example -- --train --iters N --data examples/data/first-click`), and prints both tokens/s as each
// reports it and their ratio. With --backend both start that backend (the page's ?backend=, Node's TENNY_BACKEND)
// instead of timing them (auto). Speed is measured here, not asserted in a test: on a shared machine only runs side
// by side compare.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { buildPlayground, serve, launch, root } from './headless'

const { values } = parseArgs({
  options: {
    iters: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '2' },
    backend: { type: 'string' },
  },
})
const [iters, rounds] = [Number(values.iters), Number(values.rounds)]
// the page's data, for Node too; then the adapters' folder
const sameData = ['--data', 'examples/data/first-click', '--adapter-path']
const TRAINED = /^Trained (\d+) steps in ([\d.]+) s \((\d+) tokens\/s\)/

const dist = await buildPlayground()
const site = await serve(dist)
const chrome = await launch()
const out = mkdtempSync(join(tmpdir(), 'tenny-speed-'))
try {
  for (let round = 1; round <= rounds; round++) {
    const page = await chrome.browser.newPage()
    await page.goto(site.url + (values.backend ? `?backend=${values.backend}` : ''))
    await page.waitForFunction(() => /^Ready\.$/.test(document.getElementById('status')?.textContent ?? ''), {
      timeout: 120_000,
    })
    const backend = await page.$eval('#backend', (e) => e.textContent)
    await page.$eval('#iters', (e, n) => ((e as HTMLInputElement).value = n), String(iters))
    await page.click('#train')
    await page.waitForFunction(
      (re) => new RegExp(re).test(document.getElementById('status')?.textContent ?? ''),
      {
        timeout: 0,
        polling: 200,
      },
      TRAINED.source,
    )
    const pageStatus = (await page.$eval('#status', (e) => e.textContent))!
    await page.close()
    const node = execFileSync(
      'node',
      [
        '--import',
        'tsx',
        'examples/lora-finetune.ts',
        '--train',
        '--iters',
        String(iters),
        '--adapter-path',
        join(out, `r${round}`),
      ],
      {
        cwd: root,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...(values.backend ? { TENNY_BACKEND: values.backend } : {}) },
      },
    )
    const nodeLine = node.split('\n').find((l) => TRAINED.test(l)) ?? ''
    const nodeBackend = node.split('\n').find((l) => /WebAssembly|TS kernels|gpu\.js/.test(l)) ?? ''
    const [pageTps, nodeTps] = [TRAINED.exec(pageStatus)![3], TRAINED.exec(nodeLine)![3]].map(Number)
    console.log(
      `round ${round}: page ${pageTps} tokens/s (${backend}); Node ${nodeTps} tokens/s (${nodeBackend.trim()})`,
    )
    console.log(`  page: ${pageStatus}\n  Node: ${nodeLine}\n  Node / page = ${(nodeTps / pageTps).toFixed(2)}`)
  }
} finally {
  await chrome.close()
  await site.close()
  for (const dir of [dist, out]) rmSync(dir, { recursive: true, force: true })
}
