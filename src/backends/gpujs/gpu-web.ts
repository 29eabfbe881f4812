// gpu.js in a browser: its WebGL modes (webgl2, then webgl) answer synchronously, on a page or in a Web Worker
// (OffscreenCanvas), so unlike Node's webgpu they need no bridge worker. gpu.js is an optional peer: the page
// bundles it and hands the module over, so Tenny imports nothing of it and a bundle without it stays small.
import { fail } from '../../errors.js'
import { useGpujsBridge, type GpujsBridge, type GpujsMode } from './gpu.js'

/** Let the gpujs backend (and auto) use gpu.js in a browser: `import * as gpujs from 'gpu.js'; useGpujs(gpujs)`. */
export function useGpujs(gpujs: unknown): void {
  useGpujsBridge(webGpujs(gpujs))
}

/** The browser's bridge: WebGL 2, then WebGL; the Promise-only modes are refused with the reason. */
function webGpujs(gpujs: unknown): GpujsBridge {
  return {
    loadGpujs: () => gpujs,
    candidates: () => ({
      modes: ['webgl2', 'webgl'] satisfies GpujsMode[],
      skipped:
        'webgpu, webasm-threads: answer with Promises (a browser thread cannot block on them); headlessgl: Node only',
    }),
    open(mode) {
      const why = 'a synchronous kernel table cannot wait for them in a browser'
      fail(`gpu.js ${mode}`, `answers only with Promises, and ${why}; use webgl2 or webgl`)
    },
  }
}
