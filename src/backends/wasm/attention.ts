// Causal self-attention for one (batch, head) as WebAssembly SIMD, mirroring src/kernels/attention.ts (read it
// first): scores, softmax and the weighted sum of values forward; dp, ds, dq, dk and dv backward. Rows of q, k,
// v, dy (hs floats each) lie `rowBytes` apart, as in the (B, T, C) tensors; hs is a multiple of 4. Scores,
// probabilities and ds use rows of TkPad (Tk rounded up to 4) floats, so a row is whole vectors, and lanes past a
// query's last visible key hold 0. The caller (wasm/kernels.ts) copies tensors in and out and loops over (b, h).
import { fail } from '../../errors.js'
import { FunctionBody, type ValType } from './emit.js'
import { exp } from './elementwise.js'

const F32 = 4,
  V128 = 16
type Locals = Record<string, number>
const I32_LOCALS = [
  'i',
  'j',
  'd',
  'jv',
  'dc',
  'idx',
  'lo',
  'hi',
  'n',
  'last',
  'tp',
  'op',
  'wp',
  'rp',
  'row',
  'pRow',
  'xi',
  'yi',
]

/** Parameters by name, in order: all i32 (addresses and counts) but the f32 scale. */
const signature = (names: string[]): Record<string, ValType> =>
  Object.fromEntries(names.map((name) => [name, name === 'scale' ? 'f32' : 'i32']))

/** The function's parameters and its working locals, by name (the two lists share no name). */
function setup(f: FunctionBody, names: string[]): Locals {
  if (names.some((name) => I32_LOCALS.includes(name))) fail('attention kernel', "a parameter shares a local's name")
  const L: Locals = { ...f.param }
  for (const name of I32_LOCALS) L[name] = f.local('i32')
  for (const name of ['a', 'acc', 'acc1', 'acc2', 'acc3', 'wv', 'e', 'm']) L[name] = f.local('v128')
  for (const name of ['mx', 'total']) L[name] = f.local('f32')
  return L
}

/** Push base + index·scale (bytes) on the stack. */
function address(f: FunctionBody, base: number, index: number, scale: () => void): void {
  f.get(base).get(index)
  scale()
  f.op('i32.mul').op('i32.add')
}

/** T[d][j] = rows[j][d] for j < Tk, 0 for Tk ≤ j < TkPad: the transpose that lets scores go 4 keys at a time. */
function transpose(f: FunctionBody, rows: number, T: number, L: Locals): void {
  f.forLoop(
    L.d,
    () => f.i32(0),
    () => f.get(L.hs),
    () => {
      f.forLoop(
        L.j,
        () => f.i32(0),
        () => f.get(L.TkPad),
        () => {
          // &T[d][j]
          f.get(T).get(L.d).get(L.TkPad).op('i32.mul').get(L.j).op('i32.add').i32(F32).op('i32.mul').op('i32.add')
          f.get(L.j)
            .get(L.Tk)
            .op('i32.lt_s')
            .ifElse(
              () =>
                f
                  .get(rows)
                  .get(L.j)
                  .get(L.rowBytes)
                  .op('i32.mul')
                  .op('i32.add')
                  .get(L.d)
                  .i32(F32)
                  .op('i32.mul')
                  .op('i32.add')
                  .mem('f32.load'),
              () => f.f32(0),
              'f32',
            )
          f.mem('f32.store')
        },
      )
    },
  )
}

/** A weighted sum of rows: its weights (wStride bytes apart), its rows (rowStride bytes apart) and how many columns. */
type Sum = { w: number; wStride: () => void; rows: number; rowStride: () => void; width: () => void }

/**
 * out[c..c+3] = Σ_{idx = lo}^{hi − 1} splat(w[idx]) · rows[idx][c..c+3] for c = 0, 4, … < width (lo, hi: locals
 * L.lo,
 * L.hi). The weights are a row of probabilities or ds (stride 4), a column of them (4·TkPad), or a query (4) against
 * the rows of kT. Four vectors (16 columns) at a time while they fit, then one: four independent sums keep the adds
 * from waiting on each other, and each weight is loaded once for the four.
 */
function weightedRows(f: FunctionBody, sum: Sum, out: number, L: Locals): void {
  f.forLoop(
    L.dc,
    () => f.i32(0),
    () => {
      sum.width()
      f.i32(12).op('i32.sub')
    },
    () => weightedColumns(f, sum, out, L, 4),
    16,
  ) // dc + 16 ≤ width
  f.forLoop(
    L.dc,
    () => f.get(L.dc),
    sum.width,
    () => weightedColumns(f, sum, out, L, 1),
    4,
  ) // the rest, from where dc stopped
}

/** weightedRows for `vectors` vectors from column dc: sums in acc, acc1, … */
function weightedColumns(
  f: FunctionBody,
  { w, wStride, rows, rowStride }: Sum,
  out: number,
  L: Locals,
  vectors: number,
): void {
  const acc = [L.acc, L.acc1, L.acc2, L.acc3].slice(0, vectors)
  for (const a of acc) f.zero().set(a)
  address(f, w, L.lo, wStride)
  f.set(L.wp)
  address(f, rows, L.lo, rowStride)
  f.get(L.dc).i32(F32).op('i32.mul').op('i32.add').set(L.rp)
  f.forLoop(
    L.idx,
    () => f.get(L.lo),
    () => f.get(L.hi),
    () => {
      f.get(L.wp).mem('v128.load32_splat').set(L.wv)
      acc.forEach((a, g) =>
        f
          .get(a)
          .get(L.wv)
          .get(L.rp)
          .mem('v128.load', g * V128)
          .op('f32x4.mul')
          .op('f32x4.add')
          .set(a),
      )
      f.get(L.wp)
      wStride()
      f.op('i32.add').set(L.wp)
      f.get(L.rp)
      rowStride()
      f.op('i32.add').set(L.rp)
    },
  )
  acc.forEach((a, g) =>
    f
      .get(out)
      .get(L.dc)
      .i32(F32)
      .op('i32.mul')
      .op('i32.add')
      .get(a)
      .mem('v128.store', g * V128),
  )
}

/** out[0 .. 4n) = Σ_d splat(x[d]) · T[d][0 .. 4n): a row of dot products x·row_j, as a weighted sum of T's rows. */
function dotRows(f: FunctionBody, x: number, T: number, out: number, L: Locals): void {
  f.i32(0).set(L.lo)
  f.get(L.hs).set(L.hi)
  weightedRows(
    f,
    {
      w: x,
      wStride: () => f.i32(F32),
      rows: T,
      rowStride: () => f.get(L.TkPad).i32(F32).op('i32.mul'),
      width: () => f.get(L.n).i32(4).op('i32.mul'),
    },
    out,
    L,
  )
}

/** Σ_j w_j·row_j over rows of q, k, v or dy (rowBytes apart), hs columns. */
const rowsOf = (f: FunctionBody, w: number, wStride: () => void, rows: number, L: Locals): Sum => ({
  w,
  wStride,
  rows,
  rowStride: () => f.get(L.rowBytes),
  width: () => f.get(L.hs),
})

/** The four lanes of local v combined by `op` into one f32 on the stack. */
function across(f: FunctionBody, v: number, op: 'f32.add' | 'f32.max'): void {
  f.get(v).lane(0).get(v).lane(1).op(op).get(v).lane(2).op(op).get(v).lane(3).op(op)
}

/**
 * For query row i: last = i + shift, n = ⌈(last + 1)/4⌉ vectors of keys; rows at rowBytes, padded rows at 4·TkPad.
 */
function rowSetup(f: FunctionBody, L: Locals, rows: [number, number][], padded: [number, number][]): void {
  f.get(L.i).get(L.shift).op('i32.add').set(L.last)
  f.get(L.last).i32(4).op('i32.add').i32(2).op('i32.shr_s').set(L.n)
  for (const [base, at] of rows) {
    address(f, base, L.i, () => f.get(L.rowBytes))
    f.set(at)
  }
  for (const [base, at] of padded) {
    address(f, base, L.i, () => f.get(L.TkPad).i32(F32).op('i32.mul'))
    f.set(at)
  }
}

/** Each vector jv < n of the padded row at `row`: body() with its address in L.op. */
function eachKeyVector(f: FunctionBody, row: number, count: () => void, L: Locals, body: () => void): void {
  f.forLoop(
    L.jv,
    () => f.i32(0),
    count,
    () => {
      address(f, row, L.jv, () => f.i32(V128))
      f.set(L.op)
      body()
    },
  )
}

const FORWARD = ['q', 'k', 'v', 'y', 'probs', 'kT', 'Tq', 'Tk', 'TkPad', 'shift', 'hs', 'rowBytes', 'scale']

/**
 * attentionForward(q, k, v, y, probs, kT, Tq, Tk, TkPad, shift, hs, rowBytes, scale), one (b, h):
 *   kT = kᵀ
 *   for (let i = 0; i < Tq; i++) {
 *     s = dotRows(q_i, kT)                            // keys 0..last (last = i + shift); the lanes after, −∞
 *     p = exp(scale·(s − max s)) / Σ exp(scale·(s − max s))   // so the masked lanes become 0
 *     y_i = Σ_{j ≤ last} p_j · v_j
 *   }
 */
export function attentionForwardKernel(): FunctionBody {
  const f = new FunctionBody(signature(FORWARD))
  const L = setup(f, FORWARD)
  transpose(f, L.k, L.kT, L)
  f.forLoop(
    L.i,
    () => f.i32(0),
    () => f.get(L.Tq),
    () => {
      rowSetup(
        f,
        L,
        [
          [L.q, L.xi],
          [L.y, L.yi],
        ],
        [[L.probs, L.row]],
      )
      dotRows(f, L.xi, L.kT, L.row, L)
      softmaxScores(f, L)
      f.i32(0).set(L.lo)
      f.get(L.last).i32(1).op('i32.add').set(L.hi)
      weightedRows(
        f,
        rowsOf(f, L.row, () => f.i32(F32), L.v, L),
        L.yi,
        L,
      ) // y_i = Σ_j p_ij·v_j
    },
  )
  return f
}

/** Row i's scores (at L.row) become probabilities: masked past the last visible key, then softmax(scale·s). */
function softmaxScores(f: FunctionBody, L: Locals): void {
  f.forLoop(
    L.j,
    () => f.get(L.last).i32(1).op('i32.add'),
    () => f.get(L.n).i32(4).op('i32.mul'),
    () => {
      address(f, L.row, L.j, () => f.i32(F32))
      f.f32(-Infinity).mem('f32.store')
    },
  )
  f.splat(-Infinity).set(L.m)
  eachKeyVector(
    f,
    L.row,
    () => f.get(L.n),
    L,
    () => f.get(L.m).get(L.op).mem('v128.load').op('f32x4.max').set(L.m),
  )
  across(f, L.m, 'f32.max')
  f.set(L.mx)
  f.zero().set(L.acc)
  eachKeyVector(
    f,
    L.row,
    () => f.get(L.n),
    L,
    () => {
      // p_j = exp(scale·(s_j − max)), summed
      f.get(L.op)
        .mem('v128.load')
        .get(L.mx)
        .op('f32x4.splat')
        .op('f32x4.sub')
        .get(L.scale)
        .op('f32x4.splat')
        .op('f32x4.mul')
        .set(L.a)
      exp(f, L.a, L.e)
      f.get(L.op).get(L.e).mem('v128.store')
      f.get(L.acc).get(L.e).op('f32x4.add').set(L.acc)
    },
  )
  across(f, L.acc, 'f32.add')
  f.set(L.total)
  f.f32(1).get(L.total).op('f32.div').op('f32x4.splat').set(L.a)
  eachKeyVector(
    f,
    L.row,
    () => f.get(L.TkPad).i32(2).op('i32.shr_s'),
    L,
    () => {
      // normalize; 0 past the visible keys
      f.get(L.op)
        .get(L.op)
        .mem('v128.load')
        .get(L.a)
        .op('f32x4.mul')
        .zero()
        .get(L.jv)
        .get(L.n)
        .op('i32.lt_s')
        .op('select')
        .mem('v128.store')
    },
  )
}

const BACKWARD = [
  'q',
  'k',
  'v',
  'dy',
  'probs',
  'dq',
  'dk',
  'dv',
  'vT',
  'ds',
  'Tq',
  'Tk',
  'TkPad',
  'shift',
  'hs',
  'rowBytes',
  'scale',
]

/**
 * attentionBackward(q, k, v, dy, probs, dq, dk, dv, vT, ds, Tq, Tk, TkPad, shift, hs, rowBytes, scale), one (b, h).
 * With s_ij = scale·q_i·k_j and p = softmax(s):
 *   dp_ij = dy_i·v_j        ds_ij = scale·p_ij·(dp_ij − Σ_l p_il·dp_il)
 *   dq_i = Σ_j ds_ij·k_j    dk_j = Σ_{i ≥ j − shift} ds_ij·q_i    dv_j = Σ_{i ≥ j − shift} p_ij·dy_i
 */
export function attentionBackwardKernel(): FunctionBody {
  const f = new FunctionBody(signature(BACKWARD))
  const L = setup(f, BACKWARD)
  transpose(f, L.v, L.vT, L)
  f.forLoop(
    L.i,
    () => f.i32(0),
    () => f.get(L.Tq),
    () => {
      rowSetup(
        f,
        L,
        [
          [L.dy, L.xi],
          [L.dq, L.yi],
        ],
        [
          [L.ds, L.row],
          [L.probs, L.pRow],
        ],
      )
      dotRows(f, L.xi, L.vT, L.row, L) // dp_i·
      scoreGrads(f, L) // ds_i·, in place of dp_i·
      f.i32(0).set(L.lo)
      f.get(L.last).i32(1).op('i32.add').set(L.hi)
      weightedRows(
        f,
        rowsOf(f, L.row, () => f.i32(F32), L.k, L),
        L.yi,
        L,
      ) // dq_i = Σ_j ds_ij·k_j
    },
  )
  keyGrads(f, L)
  return f
}

/** Row i's dp (at L.row) becomes ds = scale·p ⊙ (dp − Σ_j p_j·dp_j), in place (p at L.pRow). */
function scoreGrads(f: FunctionBody, L: Locals): void {
  f.zero().set(L.acc)
  eachKeyVector(
    f,
    L.row,
    () => f.get(L.n),
    L,
    () => {
      // Σ_j p_ij·dp_ij (p is 0 past last)
      address(f, L.pRow, L.jv, () => f.i32(V128))
      f.mem('v128.load').get(L.op).mem('v128.load').op('f32x4.mul').get(L.acc).op('f32x4.add').set(L.acc)
    },
  )
  across(f, L.acc, 'f32.add')
  f.op('f32x4.splat').set(L.m)
  eachKeyVector(
    f,
    L.row,
    () => f.get(L.n),
    L,
    () => {
      // ds_ij = scale·p_ij·(dp_ij − Σ)
      f.get(L.op).get(L.op).mem('v128.load').get(L.m).op('f32x4.sub')
      address(f, L.pRow, L.jv, () => f.i32(V128))
      f.mem('v128.load').op('f32x4.mul').get(L.scale).op('f32x4.splat').op('f32x4.mul').mem('v128.store')
    },
  )
}

/** dk_j = Σ_i ds_ij·q_i and dv_j = Σ_i p_ij·dy_i, for each key j, over the queries i that see it. */
function keyGrads(f: FunctionBody, L: Locals): void {
  f.forLoop(
    L.j,
    () => f.i32(0),
    () => f.get(L.Tk),
    () => {
      // dk_j and dv_j over the queries that see key j
      f.get(L.j).get(L.shift).op('i32.sub').set(L.lo)
      f.i32(0).get(L.lo).get(L.lo).i32(0).op('i32.lt_s').op('select').set(L.lo) // max(0, j − shift)
      f.get(L.Tq).set(L.hi)
      const column = (base: number) => {
        f.get(base).get(L.j).i32(F32).op('i32.mul').op('i32.add').set(L.tp) // &base[0][j]
        return L.tp
      }
      address(f, L.dk, L.j, () => f.get(L.rowBytes))
      f.set(L.yi)
      weightedRows(
        f,
        rowsOf(f, column(L.ds), () => f.get(L.TkPad).i32(F32).op('i32.mul'), L.q, L),
        L.yi,
        L,
      )
      address(f, L.dv, L.j, () => f.get(L.rowBytes))
      f.set(L.yi)
      weightedRows(
        f,
        rowsOf(f, column(L.probs), () => f.get(L.TkPad).i32(F32).op('i32.mul'), L.dy, L),
        L.yi,
        L,
      )
    },
  )
}
