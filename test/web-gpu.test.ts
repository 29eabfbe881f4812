/// <reference lib="dom" />
// gpu.js's WebGL modes in a real browser (headless Chromium, SwiftShader's software WebGL): Tenny's gpujs
// backend opened in webgl2 and webgl through the kernel table matches the CPU kernel on awkward shapes, and a
// lost WebGL context (a GPU reset) sends products to the CPU with backendInfo() saying so, never zeros.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from 'vite'
import { serve, launch, root } from '../examples/web/headless'

type ModeResult = { backend?: string; mode?: string; worst?: number; at?: string; error?: string }

test('gpu.js webgl2 and webgl in Chromium: the matmul kernels match the CPU kernel; a lost context falls back to the CPU and says so', async () => {
  const outDir = mkdtempSync(join(tmpdir(), 'tenny-gpu-page-'))
  await build({
    configFile: false,
    root: join(root, 'test/web'),
    base: './',
    logLevel: 'error',
    build: { outDir, emptyOutDir: true, target: 'es2022', rolldownOptions: { input: join(root, 'test/web/gpu.html') } },
  })
  const site = await serve(outDir)
  const chrome = await launch()
  try {
    const page = await chrome.browser.newPage()
    await page.goto(`${site.url}gpu.html`)
    await page.waitForFunction(() => document.getElementById('result')?.textContent !== 'running…', { timeout: 90_000 })
    const results: Record<string, ModeResult> = JSON.parse(await page.$eval('#result', (e) => e.textContent ?? '{}'))
    for (const mode of ['webgl2', 'webgl']) {
      const r = results[mode]
      assert.ok(r && !r.error, `${mode}: ${r?.error}`)
      assert.is(r.backend, 'gpujs')
      assert.is(r.mode, mode)
      // float32 sums in a different order: measured ~5e-5 under SwiftShader on the dev machine; 1e-4 of the output's scale is the self-check's rule
      assert.ok((r.worst ?? Infinity) <= 1e-4, `${mode}: worst relative error ${r.worst} at ${r.at}`)
      console.log(`  gpu.js ${mode}: worst error ${r.worst?.toExponential(1)} of the output's scale`)
    }
    const lost = results.lost as ModeResult & { reason: string }
    assert.is(lost.worst, 0, `after the context was lost, products come from the CPU kernel exactly (${lost.at})`)
    assert.match(
      lost.reason,
      /gpu\.js failed since, the CPU runs its products: gpu\.js webgl2: the WebGL context was lost/,
    )
  } finally {
    await chrome.close()
    await site.close()
    rmSync(outDir, { recursive: true, force: true })
  }
})

test.run()
