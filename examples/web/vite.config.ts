// The playground's build: `npm run web` serves it (dev server), `npm run web:build` writes static files to
// examples/web/dist/. The page imports Tenny's sources as `tenny` (the universal, browser-safe entry), and the
// base checkpoint and the jsonl data straight from examples/base and examples/data, so a new base is picked up.
import { defineConfig } from 'vite'
import { fileURLToPath } from 'node:url'

/** Cross-origin isolation: without these two headers a page has no SharedArrayBuffer, so Tenny runs on one thread. */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
}

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))

export default defineConfig({
  root: here('.'),
  base: './', // relative asset URLs: the built folder works from any path of any static server
  resolve: { alias: { tenny: here('../../src/index.ts') } },
  worker: { format: 'es' }, // module workers: Tenny's thread pool starts its own workers from the training worker
  server: { headers: ISOLATION_HEADERS, fs: { allow: [here('../..')] } },
  preview: { headers: ISOLATION_HEADERS },
  build: {
    outDir: here('dist'),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 2048, // gpu.js and tfjs (bench page) are large, and that is fine for a demo
    rolldownOptions: {
      input: { playground: here('index.html'), bench: here('bench.html') },
      checks: { pluginTimings: false },
    },
  },
})
