// Packing for the SIMD microkernel (matmul.ts), in plain TypeScript: op(B) into panels of 8 columns, p-major, so
// the kernel's two loads per p are contiguous; the transpose flag is absorbed here (each case reads B in storage
// order). Columns past n are packed as zeros. A needs no packing: the kernel reads it in place through strides.

/** Shapes of one call: `batch` products of op(A) (m, k) · op(B) (k, n); m in blocks of 4, n in panels of 8. */
export type Layout = { batch: number; m: number; k: number; n: number; mBlocks: number; nPanels: number }

/**
 * dst[at + ((t·nPanels + jb)·k + p)·8 + c] = op(B_t)[p][8·jb + c], 0 past column n. Returns the float offset after
 * it.
 * B_t is stored (k, n), or (n, k) when transB.
 */
export function packB(
  b: Float32Array,
  transB: boolean,
  { batch, k, n, nPanels }: Layout,
  dst: Float32Array,
  at: number,
): number {
  for (let t = 0; t < batch; t++) {
    const src = t * k * n
    for (let jb = 0; jb < nPanels; jb++) {
      const panel = at + (t * nPanels + jb) * k * 8
      const j0 = jb * 8,
        width = Math.min(8, n - j0)
      if (transB) {
        // B_t (n, k): op(B)[p][j] = B[j][p], each of the panel's 8 columns is a contiguous row of B
        for (let c = 0; c < width; c++) {
          const row = src + (j0 + c) * k
          for (let p = 0; p < k; p++) dst[panel + p * 8 + c] = b[row + p]
        }
      } else {
        // B_t (k, n): the panel's 8 values of row p are contiguous
        for (let p = 0; p < k; p++) {
          const row = src + p * n + j0,
            out = panel + p * 8
          for (let c = 0; c < width; c++) dst[out + c] = b[row + c]
        }
      }
      for (let c = width; c < 8; c++) for (let p = 0; p < k; p++) dst[panel + p * 8 + c] = 0
    }
  }
  return at + batch * nPanels * 8 * k
}

/** C_t (m, n) out of the kernel's padded (4·mBlocks, 8·nPanels) rows at `at`, into a fresh array. */
export function unpackC(src: Float32Array, at: number, { batch, m, n, mBlocks, nPanels }: Layout): Float32Array {
  const ldc = nPanels * 8,
    padded = mBlocks * 4 * ldc
  if (ldc === n && mBlocks * 4 === m) return src.slice(at, at + batch * m * n) // no padding: one copy
  const c = new Float32Array(batch * m * n)
  for (let t = 0; t < batch; t++)
    for (let i = 0; i < m; i++)
      c.set(src.subarray(at + t * padded + i * ldc, at + t * padded + i * ldc + n), (t * m + i) * n)
  return c
}
