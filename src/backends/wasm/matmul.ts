// The matmul microkernel, generated as WebAssembly SIMD: C (4 rows × 8 columns) += A (4 × kc) · B (kc × 8), held
// in 8 f32x4 accumulators while kc streams by. The loops below are commented as the TypeScript loops they mirror.
//
// Operands are packed by the caller (pack.ts) so every load is contiguous:
//   A in blocks of 4 rows, p-major:    aPack[ib][p][r] = op(A)[4·ib + r][p]        (k·4 floats per block)
//   B in panels of 8 columns, p-major: bPack[jb][p][c] = op(B)[p][8·jb + c]        (k·8 floats per panel)
// and C is read and written with a row stride ldc (bytes). A call covers one chunk p0 .. p0 + kc of k, so a
// block's chunk (4·kc floats) and a panel's (8·kc) stay in L1 while the chunk of A's rows stays in L2.
// 4 × 8 is the largest tile whose 8 accumulators, 2 B vectors and 1 splat fit x64's 16 vector registers:
// 5 × 8 and 6 × 8 spilled and measured slower (shared/MEASURED.md).
import { FunctionBody, type ValType } from './emit.js'

/** Bytes per float, per f32x4 vector. */
const F32 = 4, V128 = 16

/**
 * panel(aPack, aStride, bPanel, cPanel, mBlocks, kc, ldc): one 8-column panel of C, for mBlocks blocks of 4 rows
 * (aStride bytes apart), over one chunk of kc values of p. As TypeScript, with offsets in floats:
 *
 *   for (let ib = 0; ib < mBlocks; ib++) {                // a do-while: the caller never passes mBlocks = 0
 *     const acc = [0, 1, 2, 3].map((r) => [C[4·ib + r][0..3], C[4·ib + r][4..7]])  // C += …: start from C
 *     for (let p = 0; p < kc; p++) {                      // a do-while too: kc ≥ 1
 *       const b0 = bPanel[p][0..3], b1 = bPanel[p][4..7]
 *       for (let r = 0; r < 4; r++) {                     // unrolled
 *         const a = splat(aPack[ib][p][r])                // one A value in all 4 lanes
 *         acc[r][0] += a * b0; acc[r][1] += a * b1
 *       }
 *     }
 *     for (let r = 0; r < 4; r++) C[4·ib + r][0..7] = acc[r]
 *   }
 *
 * The p loop walks one pointer through the block and one through the panel, with the block's 4 rows and the
 * panel's 2 vectors at constant offsets from them.
 */
export function panelKernel(): FunctionBody {
  const params: ValType[] = ['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32']
  const f = new FunctionBody(params)
  const [aPack, aStride, bPanel, cPanel, mBlocks, kc, ldc] = [0, 1, 2, 3, 4, 5, 6]
  const block = f.local('i32'), ap = f.local('i32'), bp = f.local('i32'), pEnd = f.local('i32'), cRow = f.local('i32'), ib = f.local('i32')
  const b = [f.local('v128'), f.local('v128')]
  const a = f.local('v128')
  const acc = [0, 1, 2, 3].map(() => [f.local('v128'), f.local('v128')])
  const cAddress = (r: number) => f.get(cRow).get(ldc).i32(r).op('i32.mul').op('i32.add') // &C[4·ib + r][0]

  f.get(aPack).set(block)
  f.get(cPanel).set(cRow)
  f.i32(0).set(ib)
  f.doWhile(() => { // for each block ib
    for (let r = 0; r < 4; r++) for (let v = 0; v < 2; v++) cAddress(r).mem('v128.load', v * V128).set(acc[r][v])
    f.get(block).set(ap)
    f.get(bPanel).set(bp)
    f.get(ap).get(kc).i32(4 * F32).op('i32.mul').op('i32.add').set(pEnd)
    f.doWhile(() => { // for each p of the chunk
      f.get(bp).mem('v128.load', 0).set(b[0])
      f.get(bp).mem('v128.load', V128).set(b[1])
      for (let r = 0; r < 4; r++) {
        f.get(ap).mem('v128.load32_splat', r * F32).set(a)
        for (let v = 0; v < 2; v++) f.get(acc[r][v]).get(a).get(b[v]).op('f32x4.mul').op('f32x4.add').set(acc[r][v])
      }
      f.get(bp).i32(8 * F32).op('i32.add').set(bp)
      f.get(ap).i32(4 * F32).op('i32.add').tee(ap).get(pEnd).op('i32.lt_u') // p < kc
    })
    for (let r = 0; r < 4; r++) for (let v = 0; v < 2; v++) cAddress(r).get(acc[r][v]).mem('v128.store', v * V128)
    f.get(cRow).get(ldc).i32(4).op('i32.mul').op('i32.add').set(cRow)
    f.get(block).get(aStride).op('i32.add').set(block)
    f.get(ib).i32(1).op('i32.add').tee(ib).get(mBlocks).op('i32.lt_u') // ib < mBlocks
  })
  return f
}
