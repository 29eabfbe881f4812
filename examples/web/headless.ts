// Headless runs of the pages (the browser tests, `npm run web:bench`): build them with Vite into a temporary
// folder, serve it from a small static server (with or without the COOP/COEP headers that give a page
// SharedArrayBuffer), and drive Debian's Chromium through puppeteer-core. No Chromium: an error saying how to get one.
import { createServer, type Server } from 'node:http'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { extname, join, normalize } from 'node:path'
import { build } from 'vite'
import puppeteer, { type Browser } from 'puppeteer-core'

export const root = join(import.meta.dirname, '../..')
const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' }
const TYPES: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
}

/** Where Chromium is: $CHROMIUM_PATH, else the usual Linux paths; an Error saying how to install one if none. */
export function chromiumPath(): string {
  const candidates = [
    process.env.CHROMIUM_PATH,
    '/usr/bin/chromium',
    '/usr/bin/chromium-browser',
    '/usr/bin/google-chrome',
  ].filter((p): p is string => !!p)
  const found = candidates.find((p) => existsSync(p))
  if (!found)
    throw new Error(
      `browser tests need Chromium and found none (looked at ${candidates.join(', ')}): ` +
        'apt-get install -y chromium, or set CHROMIUM_PATH',
    )
  return found
}

/** Build examples/web into a new temporary folder; returns the folder. */
export async function buildPlayground(): Promise<string> {
  const outDir = mkdtempSync(join(tmpdir(), 'tenny-web-'))
  await build({
    configFile: join(root, 'examples/web/vite.config.ts'),
    logLevel: 'error',
    build: { outDir, emptyOutDir: true },
  })
  return outDir
}

/** Serve `dir` on a free localhost port, cross-origin isolated unless `isolated` is false. */
export async function serve(dir: string, { isolated = true } = {}): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname)).replace(
      /^(\.\.[/\\])+/,
      '',
    )
    const file = join(dir, path.endsWith('/') ? `${path}index.html` : path)
    if (!file.startsWith(dir) || !existsSync(file)) {
      res.writeHead(404).end('not found')
      return
    }
    res.writeHead(200, {
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      ...(isolated ? ISOLATION : {}),
    })
    res.end(readFileSync(file))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((resolve) => server.close(() => resolve())) }
}

/** Headless Chromium with the flags this closed network needs (no background connections) and a new profile. */
export async function launch(): Promise<{ browser: Browser; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'tenny-chromium-'))
  const browser = await puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    userDataDir: profile,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--enable-unsafe-swiftshader',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
  return {
    browser,
    async close() {
      await browser.close()
      rmSync(profile, { recursive: true, force: true })
    },
  }
}
