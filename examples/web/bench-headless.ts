// `npm run web:bench`: the bench page (bench.html) in headless Chromium, its table printed here. `-- --quick`
// times matmul at 256 and 512 with fewer samples (about a minute and a half on 2 cores); the full run adds 1024.
// To watch it in your own browser instead: `npm run web`, then open /bench.html.
import { parseArgs } from 'node:util'
import { rmSync } from 'node:fs'
import { buildPlayground, serve, launch } from './headless'

const { values } = parseArgs({ options: { quick: { type: 'boolean' } } })
const dist = await buildPlayground()
const site = await serve(dist)
const chrome = await launch()
try {
  const page = await chrome.browser.newPage()
  page.setDefaultTimeout(0) // a full run takes minutes
  await page.goto(`${site.url}bench.html?run=${values.quick ? 'quick' : 'full'}`)
  let shown = ''
  for (;;) {
    const status = await page.$eval('#status', (e) => e.textContent ?? '')
    if (status !== shown) console.error(status)
    shown = status
    if (status === 'Done.' || status.startsWith('Error')) break
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  console.log(await page.$eval('#environment', (e) => e.textContent ?? ''))
  console.log(await page.$eval('#software-gl', (e) => e.textContent ?? ''))
  console.log(await page.$eval('#markdown', (e) => e.textContent ?? ''))
} finally {
  await chrome.close()
  await site.close()
  rmSync(dist, { recursive: true, force: true })
}
