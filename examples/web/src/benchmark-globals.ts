// benchmark.js (bench/timing.ts times fast calls with it) finds lodash and platform.js as globals in a browser,
// as its README's <script> tags load them; a bundle gives it no `require`. In a Web Worker it finds the global
// object only as `global` (it looks for `window`, else a CommonJS `global`). Call this before loading bench/.
// @ts-expect-error: lodash ships no types, and only its presence matters here
import lodash from 'lodash'
// @ts-expect-error: platform.js ships no types either
import platform from 'platform'

/** Make lodash, platform.js and the global object visible to benchmark.js, which loads after this. */
export function installBenchmarkGlobals(): void {
  Object.assign(globalThis, { _: lodash, platform, global: globalThis })
}
