// The matmul microkernel, generated as WebAssembly SIMD: C (4 rows × 8 columns) += A (4 × k) · B (k × 8), held
// in 8 f32x4 accumulators while k streams by. Each loop below is commented as the TypeScript loop it mirrors.
//
// Operands are packed by the caller (wasm/index.ts) so every load is contiguous:
//   A in blocks of 4 rows, p-major:    aPack[ib][p][r] = op(A)[4·ib + r][p]        (k·4 floats per block)
//   B in panels of 8 columns, p-major: bPack[jb][p][c] = op(B)[p][8·jb + c]        (k·8 floats per panel)
// and C is written with a row stride ldc (bytes), a multiple of 8 columns.
// 4 × 8 is the largest tile whose 8 accumulators, 2 B vectors and 1 splat fit x64's 16 vector registers:
// 5 × 8 and 6 × 8 spilled and measured slower (shared/MEASURED.md).
import { FunctionBody, type ValType } from './emit.js'

/** Bytes per float, per f32x4 vector. */
const F32 = 4, V128 = 16

/**
 * panel(aPack, bPanel, cPanel, mBlocks, k, ldc): one 8-column panel of C for every 4-row block, i.e.
 *
 *   for (let ib = 0; ib < mBlocks; ib++) {              // each block of 4 rows of C (a do-while: mBlocks ≥ 1)
 *     const acc = [[0, 0], [0, 0], [0, 0], [0, 0]]      // 4 rows × 2 vectors of 4 columns
 *     for (let p = 0; p < k; p++) {                     // a do-while too: the caller never passes k = 0
 *       const b0 = bPanel[p][0..3], b1 = bPanel[p][4..7]
 *       for (let r = 0; r < 4; r++) {                   // unrolled
 *         const a = splat(aPack[ib][p][r])              // one A value in all 4 lanes
 *         acc[r][0] += a * b0; acc[r][1] += a * b1
 *       }
 *     }
 *     for (let r = 0; r < 4; r++) C[4·ib + r][0..7] = acc[r]
 *   }
 *
 * All addresses are byte offsets into the module's memory. The p loop walks one pointer through A's block and
 * one through B's panel, with the 4 rows and 2 vectors at constant offsets from them.
 */
export function panelKernel(): FunctionBody {
  const params: ValType[] = ['i32', 'i32', 'i32', 'i32', 'i32', 'i32']
  const f = new FunctionBody(params)
  const [aPack, bPanel, cPanel, mBlocks, k, ldc] = [0, 1, 2, 3, 4, 5]
  const ap = f.local('i32'), bp = f.local('i32'), aEnd = f.local('i32'), blockEnd = f.local('i32'), cRow = f.local('i32')
  const b = [f.local('v128'), f.local('v128')]
  const a = f.local('v128')
  const acc = [0, 1, 2, 3].map(() => [f.local('v128'), f.local('v128')])

  f.get(cPanel).set(cRow)
  f.get(aPack).set(ap)
  f.get(ap).get(mBlocks).get(k).op('i32.mul').i32(4 * F32).op('i32.mul').op('i32.add').set(aEnd) // aPack + mBlocks·k·16
  f.doWhile(() => { // for each block ib: ap walks on through the packed blocks, which lie back to back
    for (const row of acc) for (const v of row) f.zero().set(v)
    f.get(bPanel).set(bp)
    f.get(ap).get(k).i32(4 * F32).op('i32.mul').op('i32.add').set(blockEnd)
    f.doWhile(() => { // for each p
      f.get(bp).mem('v128.load', 0).set(b[0])
      f.get(bp).mem('v128.load', V128).set(b[1])
      for (let r = 0; r < 4; r++) {
        f.get(ap).mem('v128.load32_splat', r * F32).set(a)
        for (let v = 0; v < 2; v++) f.get(acc[r][v]).get(a).get(b[v]).op('f32x4.mul').op('f32x4.add').set(acc[r][v])
      }
      f.get(bp).i32(8 * F32).op('i32.add').set(bp)
      f.get(ap).i32(4 * F32).op('i32.add').tee(ap).get(blockEnd).op('i32.lt_u') // p < k
    })
    for (let r = 0; r < 4; r++) { // C[4·ib + r][0..7] = acc[r]
      for (let v = 0; v < 2; v++) f.get(cRow).get(ldc).i32(r).op('i32.mul').op('i32.add').get(acc[r][v]).mem('v128.store', v * V128)
    }
    f.get(cRow).get(ldc).i32(4).op('i32.mul').op('i32.add').set(cRow)
    f.get(ap).get(aEnd).op('i32.lt_u') // ib < mBlocks
  })
  return f
}
