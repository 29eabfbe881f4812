// gpu.js in a browser: its WebGL modes (webgl2, then webgl) answer synchronously, on a page or in a Web Worker
// (OffscreenCanvas), so unlike Node's webgpu they need no bridge worker. gpu.js is an optional peer: the page
// bundles it and hands the module over, so Tenny imports nothing of it and a bundle without it stays small.
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
        'webgpu, webasm-threads: answer only with Promises (a browser thread cannot block on them); headlessgl: Node only',
    }),
    open(mode) {
      throw new Error(
        `gpu.js ${mode}: answers only with Promises, which a synchronous kernel table cannot wait for in a browser; use webgl2 or webgl`,
      )
    },
  }
}
