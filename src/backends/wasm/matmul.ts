// The matmul kernel generator: C (4 rows × 8 columns) += A (4 × kc) · B (kc × 8) as WebAssembly SIMD, held in 8
// f32x4 accumulators while kc streams by, and the one-row kernel for A·Bᵀ. The loops below are commented as the
// TypeScript loops they mirror.
//
// A is read where it lies, through two strides: op(A)[i][p] sits at a + i·aRow + p·aStep (bytes), so a row-major
// A (aRow = 4k, aStep = 4) and a transposed one (aRow = 4, aStep = 4m) need no copy. B is packed by the caller
// (pack.ts) in panels of 8 columns, p-major, so its two vectors per p are contiguous (bStep = 32 bytes):
//   bPack[jb][p][c] = op(B)[p][8·jb + c]        (k·8 floats per panel)
// or, untransposed and for few rows of C, read as given: panel jb's row p is B[p][8·jb ..], bStep = 4n.
// C is read and written with a row stride ldc (bytes). A call covers one chunk p0 .. p0 + kc of k, so a block's
// chunk of A and a panel's (8·kc floats) stay in L1 while the chunk of A's rows stays in L2.
// Why 4 × 8: by count 5 × 8 (10 accumulators, 2 B vectors, 1 splat: 13) and 6 × 8 (15) also fit x64's 16 vector
// registers, but V8's optimizing compiler hoists the A loads and needs more registers than that count, so they
// spilled: 25–38 GFLOP/s against 45 for 4 × 8 in the prototype (as did unrolling p by 2–4).
import { FunctionBody } from './emit.js'

/** Bytes per float, per f32x4 vector. */
const F32 = 4,
  V128 = 16

/** The panel kernel as JavaScript calls it (byte addresses and strides, counts); it writes C and returns nothing. */
export type Panel = (
  a: number,
  aRow: number,
  aStep: number,
  bPanel: number,
  bStep: number,
  cPanel: number,
  init: number,
  mBlocks: number,
  kc: number,
  ldc: number,
) => void
/** The row kernel as JavaScript calls it: y[j] += x · w[j] for j < nPad. */
export type RowDots = (x: number, w: number, y: number, nPad: number, k: number) => void

/**
 * panel(a, aRow, aStep, bPanel, bStep, cPanel, init, mBlocks, kc, ldc): one 8-column panel of C, for mBlocks blocks
 * of 4 rows of op(A) from address a, over one chunk of kc values of p. As TypeScript, with A[i][p] at
 * a + i·aRow + p·aStep and the panel's row p at bPanel + p·bStep:
 *
 *   for (let ib = 0; ib < mBlocks; ib++) {                // a do-while: the caller never passes mBlocks = 0
 *     const acc = [0, 1, 2, 3].map((r) => init ? [init[0..3], init[4..7]]        // the first chunk: from the
 * : [C[4·ib + r][0..3], C[4·ib + r][4..7]])  // bias (or 0); then C += …
 *     for (let p = 0; p < kc; p++) {                      // a do-while too: kc ≥ 1
 *       const b0 = bPanel[p][0..3], b1 = bPanel[p][4..7]
 *       for (let r = 0; r < 4; r++) {                     // unrolled
 *         const a = splat(A[4·ib + r][p])                 // one A value in all 4 lanes
 *         acc[r][0] += a * b0; acc[r][1] += a * b1
 *       }
 *     }
 *     for (let r = 0; r < 4; r++) C[4·ib + r][0..7] = acc[r]
 *   }
 *
 * The p loop walks one pointer along row 4·ib of A and one through the panel; rows 1–3 are 1–3 aRow further.
 */
export function panelKernel(): FunctionBody {
  const i32 = 'i32'
  const f = new FunctionBody({
    a: i32,
    aRow: i32,
    aStep: i32,
    bPanel: i32,
    bStep: i32,
    cPanel: i32,
    init: i32,
    mBlocks: i32,
    kc: i32,
    ldc: i32,
  })
  const P = f.param
  const L: PanelLocals = {
    block: f.local('i32'), // &A[4·ib][0]
    ap: f.local('i32'), // &A[4·ib][p]
    bp: f.local('i32'), // the panel's row p
    bEnd: f.local('i32'),
    cRow: f.local('i32'), // &C[4·ib][0]
    ib: f.local('i32'),
    row: [0, f.local('i32'), f.local('i32'), f.local('i32')], // r · aRow
    b: [f.local('v128'), f.local('v128')],
    a: f.local('v128'),
    acc: [0, 1, 2, 3].map(() => [f.local('v128'), f.local('v128')]),
  }
  for (let r = 1; r < 4; r++) f.get(P.aRow).i32(r).op('i32.mul').set(L.row[r])
  f.get(P.a).set(L.block)
  f.get(P.cPanel).set(L.cRow)
  f.get(P.bPanel).get(P.kc).get(P.bStep).op('i32.mul').op('i32.add').set(L.bEnd)
  f.i32(0).set(L.ib)
  f.doWhile(() => {
    // for each block ib
    startAccumulators(f, P, L)
    multiplyChunk(f, P, L)
    for (let r = 0; r < 4; r++)
      for (let v = 0; v < 2; v++)
        cAddress(f, P, L, r)
          .get(L.acc[r][v])
          .mem('v128.store', v * V128)
    f.get(L.cRow).get(P.ldc).i32(4).op('i32.mul').op('i32.add').set(L.cRow)
    f.get(L.block).get(P.aRow).i32(4).op('i32.mul').op('i32.add').set(L.block) // 4 rows down: 4 · aRow
    f.get(L.ib).i32(1).op('i32.add').tee(L.ib).get(P.mBlocks).op('i32.lt_u') // ib < mBlocks
  })
  return f
}

type PanelParams = Record<
  'a' | 'aRow' | 'aStep' | 'bPanel' | 'bStep' | 'cPanel' | 'init' | 'mBlocks' | 'kc' | 'ldc',
  number
>
type PanelLocals = Record<'block' | 'ap' | 'bp' | 'bEnd' | 'cRow' | 'ib' | 'a', number> & {
  row: number[]
  b: number[]
  acc: number[][]
}

/** Push &C[4·ib + r][0]. */
const cAddress = (f: FunctionBody, P: PanelParams, L: PanelLocals, r: number) =>
  f.get(L.cRow).get(P.ldc).i32(r).op('i32.mul').op('i32.add')

/** The accumulators start from init's 8 floats in every row (the first chunk: the bias, or zeros), or from C. */
function startAccumulators(f: FunctionBody, P: PanelParams, L: PanelLocals): void {
  f.get(P.init).ifElse(
    () => {
      for (let r = 0; r < 4; r++)
        for (let v = 0; v < 2; v++)
          f.get(P.init)
            .mem('v128.load', v * V128)
            .set(L.acc[r][v])
    },
    () => {
      for (let r = 0; r < 4; r++)
        for (let v = 0; v < 2; v++)
          cAddress(f, P, L, r)
            .mem('v128.load', v * V128)
            .set(L.acc[r][v])
    },
  )
}

/** The p loop: for each p of the chunk, the panel's two vectors times each of 4 splat A values, added up. */
function multiplyChunk(f: FunctionBody, P: PanelParams, L: PanelLocals): void {
  f.get(L.block).set(L.ap)
  f.get(P.bPanel).set(L.bp)
  f.doWhile(() => {
    f.get(L.bp).mem('v128.load', 0).set(L.b[0])
    f.get(L.bp).mem('v128.load', V128).set(L.b[1])
    for (let r = 0; r < 4; r++) {
      f.get(L.ap)
      if (r > 0) f.get(L.row[r]).op('i32.add')
      f.mem('v128.load32_splat').set(L.a) // A[4·ib + r][p] in all 4 lanes
      for (let v = 0; v < 2; v++)
        f.get(L.acc[r][v]).get(L.a).get(L.b[v]).op('f32x4.mul').op('f32x4.add').set(L.acc[r][v]) // acc += a · b
    }
    f.get(L.ap).get(P.aStep).op('i32.add').set(L.ap)
    f.get(L.bp).get(P.bStep).op('i32.add').tee(L.bp).get(L.bEnd).op('i32.lt_u') // p < kc
  })
}

/**
 * rowDots(x, w, y, nPad, k): y[j] += x · w[j] for j < nPad, x (k) and w (nPad, k) row-major, k a multiple of 4 —
 * one row of A·Bᵀ, as a linear layer computes for a single token in generation. B's rows are read as given (no
 * packing, which would cost as much as the product at one row). As TypeScript:
 *
 *   for (let j = 0; j < nPad; j += 4) {                  // 4 rows of w share each load of x; nPad a multiple of 4
 *     const acc = [0, 1, 2, 3].map(() => [0, 0, 0, 0])   // 4 lanes of partial sums per row
 *     for (let p = 0; p < k; p += 4)
 *       for (let r = 0; r < 4; r++) acc[r][0..3] += x[p..p+3] * w[j + r][p..p+3]
 *     for (let r = 0; r < 4; r++) y[j + r] += (acc[r][0] + acc[r][1]) + (acc[r][2] + acc[r][3])
 *   }
 */
export function rowDotsKernel(): FunctionBody {
  const f = new FunctionBody({ x: 'i32', w: 'i32', y: 'i32', nPad: 'i32', k: 'i32' })
  const { x, w, y, nPad, k } = f.param
  const j = f.local('i32'),
    xp = f.local('i32'),
    wp = f.local('i32'),
    xEnd = f.local('i32'),
    rowBytes = f.local('i32')
  const xv = f.local('v128')
  const acc = [f.local('v128'), f.local('v128'), f.local('v128'), f.local('v128')]
  f.get(k).i32(F32).op('i32.mul').set(rowBytes)
  f.get(x).get(rowBytes).op('i32.add').set(xEnd)
  f.i32(0).set(j)
  f.doWhile(() => {
    // for each 4 rows of w, from j
    for (const a of acc) f.zero().set(a)
    f.get(x).set(xp)
    f.get(w).set(wp) // &w[j][p]; rows j + 1 .. j + 3 are 1–3 rowBytes further
    f.doWhile(() => {
      // for each 4 values of p
      f.get(xp).mem('v128.load').set(xv)
      for (let r = 0; r < 4; r++) {
        f.get(acc[r]).get(xv).get(wp)
        if (r > 0) f.get(rowBytes).i32(r).op('i32.mul').op('i32.add')
        f.mem('v128.load').op('f32x4.mul').op('f32x4.add').set(acc[r])
      }
      f.get(wp).i32(V128).op('i32.add').set(wp)
      f.get(xp).i32(V128).op('i32.add').tee(xp).get(xEnd).op('i32.lt_u') // p < k
    })
    for (let r = 0; r < 4; r++) {
      // y[j + r] += (lane 0 + lane 1) + (lane 2 + lane 3)
      f.get(y)
        .get(y)
        .mem('f32.load', F32 * r)
      f.get(acc[r])
        .lane(0)
        .get(acc[r])
        .lane(1)
        .op('f32.add')
        .get(acc[r])
        .lane(2)
        .get(acc[r])
        .lane(3)
        .op('f32.add')
        .op('f32.add')
      f.op('f32.add').mem('f32.store', F32 * r)
    }
    f.get(y)
      .i32(4 * F32)
      .op('i32.add')
      .set(y)
    f.get(w).get(rowBytes).i32(4).op('i32.mul').op('i32.add').set(w) // 4 rows down
    f.get(j).i32(4).op('i32.add').tee(j).get(nPad).op('i32.lt_u') // j < nPad
  })
  return f
}
