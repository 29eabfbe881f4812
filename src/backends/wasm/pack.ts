// Packing for the SIMD microkernel (matmul.ts), in plain TypeScript: op(A) into blocks of 4 rows and op(B) into
// panels of 8 columns, both p-major, so the kernel's loads are contiguous; the transpose flags are absorbed here
// (each case reads its operand in storage order). Rows and columns past m and n are packed as zeros.

/** Shapes of one call: `batch` products of op(A) (m, k) · op(B) (k, n); m in blocks of 4, n in panels of 8. */
export type Layout = { batch: number; m: number; k: number; n: number; mBlocks: number; nPanels: number }

/**
 * Blocks ib0 .. ib1 of batch entry t: dst[at + ((t·mBlocks + ib)·k + p)·4 + r] = op(A_t)[4·ib + r][p], 0 past
 * row m. A_t is stored (m, k) from a[src], or (k, m) when transA.
 */
export function packA(a: Float32Array, src: number, transA: boolean, { m, k, mBlocks }: Layout, t: number, ib0: number, ib1: number, dst: Float32Array, at: number): void {
  for (let ib = ib0; ib < ib1; ib++) {
    const block = at + (t * mBlocks + ib) * k * 4, rows = Math.min(4, m - ib * 4)
    if (transA) { // A_t (k, m): the block's 4 values at each p are contiguous in row p of A
      for (let p = 0; p < k; p++) {
        const from = src + p * m + ib * 4, to = block + p * 4
        for (let r = 0; r < rows; r++) dst[to + r] = a[from + r]
      }
    } else { // A_t (m, k): each of the block's rows is contiguous
      for (let r = 0; r < rows; r++) {
        const from = src + (ib * 4 + r) * k
        for (let p = 0; p < k; p++) dst[block + p * 4 + r] = a[from + p]
      }
    }
    for (let r = rows; r < 4; r++) for (let p = 0; p < k; p++) dst[block + p * 4 + r] = 0 // rows past m
  }
}

/**
 * dst[at + ((t·nPanels + jb)·k + p)·8 + c] = op(B_t)[p][8·jb + c], 0 past column n. Returns the float offset after it.
 * B_t is stored (k, n), or (n, k) when transB.
 */
export function packB(b: Float32Array, transB: boolean, { batch, k, n, nPanels }: Layout, dst: Float32Array, at: number): number {
  for (let t = 0; t < batch; t++) {
    const src = t * k * n
    for (let jb = 0; jb < nPanels; jb++) {
      const panel = at + (t * nPanels + jb) * k * 8
      const j0 = jb * 8, width = Math.min(8, n - j0)
      if (transB) { // B_t (n, k): op(B)[p][j] = B[j][p], each of the panel's 8 columns is a contiguous row of B
        for (let c = 0; c < width; c++) {
          const row = src + (j0 + c) * k
          for (let p = 0; p < k; p++) dst[panel + p * 8 + c] = b[row + p]
        }
      } else { // B_t (k, n): the panel's 8 values of row p are contiguous
        for (let p = 0; p < k; p++) {
          const row = src + p * n + j0, out = panel + p * 8
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
  const ldc = nPanels * 8, padded = mBlocks * 4 * ldc
  if (ldc === n && mBlocks * 4 === m) return src.slice(at, at + batch * m * n) // no padding: one copy
  const c = new Float32Array(batch * m * n)
  for (let t = 0; t < batch; t++)
    for (let i = 0; i < m; i++) c.set(src.subarray(at + t * padded + i * ldc, at + t * padded + i * ldc + n), (t * m + i) * n)
  return c
}
