// The few WebAssembly JS API types the backends use, read from globalThis: the compiler's ES2022 library has
// none (they live in the DOM library), and declaring only these keeps the published types free of any.

/** A WebAssembly.Memory: 64 KiB pages; a shared one's buffer is a SharedArrayBuffer that grows in place. */
export type WasmMemory = { readonly buffer: ArrayBuffer; grow(pages: number): number }
export type WasmModule = object
export type WasmInstance = { readonly exports: Record<string, unknown> }

type WebAssemblyApi = {
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory
  Module: new (bytes: Uint8Array) => WasmModule
  Instance: new (module: WasmModule, imports: Record<string, Record<string, unknown>>) => WasmInstance
  validate(bytes: Uint8Array): boolean
}

// unknown first: with the DOM library its type is the DOM's, whose Module takes only an ArrayBuffer-backed view
const found: unknown = Reflect.get(globalThis, 'WebAssembly')
/** The runtime's WebAssembly namespace, or undefined where there is none. */
export const webAssembly = found as WebAssemblyApi | undefined
