// Row kernels as WebAssembly SIMD, mirroring src/kernels/rows.ts (read it first): softmax, layer norm and its
// backward over the rows of a (rows, cols) matrix, four columns per step, and sumAxis. A float32 sum's error grows
// with its terms (10⁸ equal terms in 4 lanes stall at 4·2²⁴), so no sum here grows long in float32: a row's sums
// run in float32 for BLOCK columns at a time, then join a float64 total; sums down columns run in float64 throughout.
import { FunctionBody } from './emit.js'
import { exp } from './elementwise.js'

/**
 * Columns of a row summed in float32 (16 per lane) before their sum joins the row's float64 total. Float64 sums of
 * every vector instead (two f64x2 per f32x4) measured 1.06–1.3× the time of the float32 ones for softmax and layer
 * norm at (256, 768–8192); blocks of 64 cost nothing measurable (bench/kernels-ab.ts).
 */
const BLOCK = 64
/** Rows whose dw and db terms add up in float32 before joining the float64 totals (as BLOCK, down a column). */
const ROW_BLOCK = 64
/** A float64 sum of f32x4 vectors: two f64x2 locals, for lanes 0–1 and lanes 2–3. */
type Wide = [low: number, high: number]
/** A row sum: the block's f32x4 (acc, which the loop's body adds into) and the float64 total (wide). */
type Sum = { acc: number; wide: Wide }
/** i8x16.shuffle bytes moving lanes 2–3 of an f32x4 to lanes 0–1, where f64x2.promote_low_f32x4 reads. */
const HIGH_HALF = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]
/** i8x16.shuffle bytes joining the low halves (two f32 each) of two vectors into one f32x4. */
const LOW_HALVES = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]

const wide = (f: FunctionBody): Wide => [f.local('v128'), f.local('v128')]
const sum = (f: FunctionBody): Sum => ({ acc: f.local('v128'), wide: wide(f) })
const clear = (f: FunctionBody, s: Wide) => f.zero().set(s[0]).zero().set(s[1])
/** s += v (a local f32x4), each lane widened to float64. */
function addWide(f: FunctionBody, s: Wide, v: number): void {
  f.get(s[0]).get(v).op('f64x2.promote_low_f32x4').op('f64x2.add').set(s[0])
  f.get(s[1]).get(v).get(v).shuffle(HIGH_HALF).op('f64x2.promote_low_f32x4').op('f64x2.add').set(s[1])
}
/** Push the four lanes' total as one f32, rounded once (s's low half is overwritten). */
function total(f: FunctionBody, s: Wide): void {
  f.get(s[0]).get(s[1]).op('f64x2.add').tee(s[0]).lane64(0).get(s[0]).lane64(1).op('f64.add').op('f32.demote_f64')
}
/** Push s's four lanes, each rounded once, as an f32x4. */
const narrow = (f: FunctionBody, s: Wide) =>
  f.get(s[0]).op('f32x4.demote_f64x2_zero').get(s[1]).op('f32x4.demote_f64x2_zero').shuffle(LOW_HALVES)

type Locals = Record<string, number>
const rowLocals = (f: FunctionBody, cols: number): Locals => ({
  cols,
  r: f.local('i32'),
  row: f.local('i32'),
  j: f.local('i32'),
  jBlock: f.local('i32'),
  jEnd: f.local('i32'),
  off: f.local('i32'),
  col: f.local('i32'),
})

/**
 * for (j = 0; j < cols; j += 4) body(), on row r (L.row = its byte offset): L.off = byte offset of (r, j), L.col =
 * of column j. With `sums`, in blocks of BLOCK columns: each sum's acc starts the block at 0 and ends it added
 * into its float64 total, which starts the row at 0.
 */
function eachColumn(f: FunctionBody, L: Locals, body: () => void, sums: Sum[] = []): void {
  const vector = () => {
    f.get(L.row).get(L.j).i32(4).op('i32.mul').op('i32.add').set(L.off)
    f.get(L.j).i32(4).op('i32.mul').set(L.col)
    body()
  }
  if (sums.length === 0)
    return void f.forLoop(
      L.j,
      () => f.i32(0),
      () => f.get(L.cols),
      vector,
      4,
    )
  for (const s of sums) clear(f, s.wide)
  f.forLoop(
    L.jBlock,
    () => f.i32(0),
    () => f.get(L.cols),
    () => {
      for (const s of sums) f.zero().set(s.acc)
      f.get(L.jBlock).i32(BLOCK).op('i32.add').tee(L.jEnd) // jEnd = min(jBlock + BLOCK, cols)
      f.get(L.cols).get(L.jEnd).get(L.cols).op('i32.lt_s').op('select').set(L.jEnd)
      f.forLoop(
        L.j,
        () => f.get(L.jBlock),
        () => f.get(L.jEnd),
        vector,
        4,
      )
      for (const s of sums) addWide(f, s.wide, s.acc)
    },
    BLOCK,
  )
}
/** Each row r from `from` to `to` (all rows: 0 to `rows`): L.row = r·cols·4, then body(). */
function eachRow(f: FunctionBody, L: Locals, from: () => void, to: () => void, body: () => void): void {
  f.forLoop(L.r, from, to, () => {
    f.get(L.r).get(L.cols).op('i32.mul').i32(4).op('i32.mul').set(L.row)
    body()
  })
}
const load = (f: FunctionBody, base: number, off: number) => f.get(base).get(off).op('i32.add').mem('v128.load')
/** acc += the f32x4 on the stack. */
const addTo = (f: FunctionBody, acc: number) => f.get(acc).op('f32x4.add').set(acc)
/** Push &stats[r] (which 0: the means) or &stats[rows + r] (1: the rstds). */
const statAt = (f: FunctionBody, stats: number, rows: number, L: Locals, which: 0 | 1) => {
  f.get(stats).get(L.r).i32(4).op('i32.mul').op('i32.add')
  if (which === 1) f.get(rows).i32(4).op('i32.mul').op('i32.add')
}

/**
 * softmaxRows(src, dst, stats, rows, colsPad): each row of colsPad floats (a multiple of 4; padded with −∞, which
 * exp turns into 0) becomes its softmax, as kernels/rows.ts's softmaxRows; stats gets each row's max and
 * Σ e^(x − max), from which the caller takes log-sum-exp for cross-entropy.
 *   for (let r = 0; r < rows; r++) { max = max_j x[j]; e[j] = exp(x[j] − max); sum = Σ e; y[j] = e[j] / sum }
 */
export function softmaxRowsKernel(): FunctionBody {
  const f = new FunctionBody({ src: 'i32', dst: 'i32', stats: 'i32', rows: 'i32', colsPad: 'i32' })
  const { src, dst, stats, rows, colsPad } = f.param
  const L = rowLocals(f, colsPad)
  const m = f.local('v128'),
    x = f.local('v128'),
    e = f.local('v128'),
    mx = f.local('f32'),
    total32 = f.local('f32'),
    es = sum(f)
  eachRow(
    f,
    L,
    () => f.i32(0),
    () => f.get(rows),
    () => {
      f.splat(-Infinity).set(m)
      eachColumn(f, L, () => load(f, src, L.off).get(m).op('f32x4.max').set(m))
      f.get(m).lane(0).get(m).lane(1).op('f32.max').get(m).lane(2).op('f32.max').get(m).lane(3).op('f32.max').set(mx)
      eachColumn(
        f,
        L,
        () => {
          load(f, src, L.off).get(mx).op('f32x4.splat').op('f32x4.sub').set(x)
          exp(f, x, e)
          f.get(dst).get(L.off).op('i32.add').get(e).mem('v128.store')
          addTo(f.get(e), es.acc)
        },
        [es],
      )
      total(f, es.wide)
      f.set(total32)
      f.get(stats).get(L.r).i32(8).op('i32.mul').op('i32.add').get(mx).mem('f32.store')
      f.get(stats).get(L.r).i32(8).op('i32.mul').op('i32.add').get(total32).mem('f32.store', 4)
      f.f32(1).get(total32).op('f32.div').op('f32x4.splat').set(x)
      eachColumn(f, L, () =>
        f
          .get(dst)
          .get(L.off)
          .op('i32.add')
          .get(dst)
          .get(L.off)
          .op('i32.add')
          .mem('v128.load')
          .get(x)
          .op('f32x4.mul')
          .mem('v128.store'),
      )
    },
  )
  return f
}

/**
 * layerNorm(x, w, b, y, stats, rows, cols, invCols, eps): y = (x − mean) · rstd · w + b per row,
 * rstd = 1/√(var + eps), var the mean of (x − mean)².
 */
export function layerNormKernel(): FunctionBody {
  const i32 = 'i32'
  const f = new FunctionBody({
    x: i32,
    w: i32,
    b: i32,
    y: i32,
    stats: i32,
    rows: i32,
    cols: i32,
    invCols: 'f32',
    eps: 'f32',
  })
  const { x, w, b, y, stats, rows, cols, invCols, eps } = f.param
  const L = rowLocals(f, cols)
  const s = sum(f),
    d = f.local('v128'),
    mu = f.local('f32'),
    rs = f.local('f32')
  eachRow(
    f,
    L,
    () => f.i32(0),
    () => f.get(rows),
    () => {
      eachColumn(f, L, () => addTo(load(f, x, L.off), s.acc), [s])
      total(f, s.wide)
      f.get(invCols).op('f32.mul').set(mu) // mean
      eachColumn(
        f,
        L,
        () => {
          load(f, x, L.off).get(mu).op('f32x4.splat').op('f32x4.sub').set(d)
          addTo(f.get(d).get(d).op('f32x4.mul'), s.acc)
        },
        [s],
      )
      f.f32(1)
      total(f, s.wide)
      f.get(invCols).op('f32.mul').get(eps).op('f32.add').op('f32.sqrt').op('f32.div').set(rs) // 1/√(var + eps)
      eachColumn(f, L, () => {
        f.get(y).get(L.off).op('i32.add')
        load(f, x, L.off).get(mu).op('f32x4.splat').op('f32x4.sub').get(rs).op('f32x4.splat').op('f32x4.mul')
        load(f, w, L.col).op('f32x4.mul')
        load(f, b, L.col).op('f32x4.add').mem('v128.store')
      })
      statAt(f, stats, rows, L, 0)
      f.get(mu).mem('f32.store')
      statAt(f, stats, rows, L, 1)
      f.get(rs).mem('f32.store')
    },
  )
  return f
}

/**
 * layerNormBackward(dy, x, w, stats, dx, dw, db, partial, rows, cols, invCols, withParams). With x̂ = (x −
 * mean)·rstd
 * and g = dy ⊙ w:  dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)),  dw += Σ_rows dy ⊙ x̂,  db += Σ_rows
 * dy. dw and db
 * are float64 (cols each, from 0): ROW_BLOCK rows add up in float32 in `partial` (2·cols floats of zeros), which is
 * then added into them and cleared. withParams = 0 (a frozen weight and bias) leaves all three untouched.
 */
export function layerNormBackwardKernel(): FunctionBody {
  const i32 = 'i32'
  const addresses = { dy: i32, x: i32, w: i32, stats: i32, dx: i32, dw: i32, db: i32, partial: i32 } as const
  const f = new FunctionBody({ ...addresses, rows: i32, cols: i32, invCols: 'f32', withParams: i32 })
  const B: Backward = {
    ...f.param,
    ...rowLocals(f, f.param.cols),
    ...Object.fromEntries(['xHat', 'g', 'dyv', 't'].map((name) => [name, f.local('v128')])),
    ...Object.fromEntries(['at', 'rBlock', 'rEnd'].map((name) => [name, f.local('i32')])),
    ...Object.fromEntries(['mu', 'rs', 'gMean', 'gxMean'].map((name) => [name, f.local('f32')])),
  }
  const S: RowSums = { g: sum(f), gx: sum(f) }
  f.forLoop(
    B.rBlock,
    () => f.i32(0),
    () => f.get(B.rows),
    () => {
      f.get(B.rBlock).i32(ROW_BLOCK).op('i32.add').tee(B.rEnd) // end of the block: min(rBlock + ROW_BLOCK, rows)
      f.get(B.rows).get(B.rEnd).get(B.rows).op('i32.lt_s').op('select').set(B.rEnd)
      eachRow(
        f,
        B,
        () => f.get(B.rBlock),
        () => f.get(B.rEnd),
        () => backwardRow(f, B, S),
      )
      f.get(B.withParams).ifElse(
        () => foldPartials(f, B),
        () => {},
      )
    },
    ROW_BLOCK,
  )
  return f
}

/** layerNormBackward's parameters and locals, by name (rowLocals' among them). */
type Backward = Locals
/** A row's sums of g and of g ⊙ x̂. */
type RowSums = { g: Sum; gx: Sum }

/** x̂ = (x − mean)·rstd, dy and g = dy·w of the current vector, into B.xHat, B.dyv and B.g. */
function hat(f: FunctionBody, B: Backward): void {
  load(f, B.x, B.off)
    .get(B.mu)
    .op('f32x4.splat')
    .op('f32x4.sub')
    .get(B.rs)
    .op('f32x4.splat')
    .op('f32x4.mul')
    .set(B.xHat)
  load(f, B.dy, B.off).tee(B.dyv)
  load(f, B.w, B.col).op('f32x4.mul').set(B.g)
}

/** Push partial + col (dw's float32 partial sums of column j) or that + 4·cols (db's). */
const partialAt = (f: FunctionBody, B: Backward, which: 'dw' | 'db') => {
  f.get(B.partial).get(B.col).op('i32.add')
  if (which === 'db') f.get(B.cols).i32(4).op('i32.mul').op('i32.add')
}

/** One row: its means of g and g ⊙ x̂ (and dw, db's partial sums), then dx. */
function backwardRow(f: FunctionBody, B: Backward, S: RowSums): void {
  statAt(f, B.stats, B.rows, B, 0)
  f.mem('f32.load').set(B.mu)
  statAt(f, B.stats, B.rows, B, 1)
  f.mem('f32.load').set(B.rs)
  const columnTerms = () => {
    hat(f, B)
    addTo(f.get(B.g), S.g.acc)
    addTo(f.get(B.g).get(B.xHat).op('f32x4.mul'), S.gx.acc)
    f.get(B.withParams).ifElse(
      () => {
        partialAt(f, B, 'dw')
        f.tee(B.at).get(B.at).mem('v128.load').get(B.dyv).get(B.xHat).op('f32x4.mul').op('f32x4.add').mem('v128.store')
        partialAt(f, B, 'db')
        f.tee(B.at).get(B.at).mem('v128.load').get(B.dyv).op('f32x4.add').mem('v128.store')
      },
      () => {},
    )
  }
  eachColumn(f, B, columnTerms, [S.g, S.gx])
  total(f, S.g.wide)
  f.get(B.invCols).op('f32.mul').set(B.gMean)
  total(f, S.gx.wide)
  f.get(B.invCols).op('f32.mul').set(B.gxMean)
  eachColumn(f, B, () => {
    hat(f, B)
    f.get(B.dx).get(B.off).op('i32.add')
    f.get(B.g).get(B.gMean).op('f32x4.splat').op('f32x4.sub')
    f.get(B.xHat).get(B.gxMean).op('f32x4.splat').op('f32x4.mul').op('f32x4.sub')
    f.get(B.rs).op('f32x4.splat').op('f32x4.mul').mem('v128.store')
  })
}

/** dw[j..j+3] and db[j..j+3] (float64, at dw + 2·col) += the block's float32 partial sums, which are cleared. */
function foldPartials(f: FunctionBody, B: Backward): void {
  eachColumn(f, B, () => {
    for (const which of ['dw', 'db'] as const) {
      partialAt(f, B, which)
      f.mem('v128.load').set(B.t)
      partialAt(f, B, which)
      f.zero().mem('v128.store')
      f.get(B[which]).get(B.col).i32(2).op('i32.mul').op('i32.add').set(B.at)
      f.get(B.at).get(B.at).mem('v128.load').get(B.t).op('f64x2.promote_low_f32x4').op('f64x2.add').mem('v128.store')
      f.get(B.at).get(B.at).mem('v128.load', 16).get(B.t).get(B.t).shuffle(HIGH_HALF).op('f64x2.promote_low_f32x4')
      f.op('f64x2.add').mem('v128.store', 16)
    }
  })
}

/**
 * sumAxis(src, dst, outer, n, inner): dst[o][i] = Σ_j src[o][j][i], as kernels/rows.ts's sumAxis, for inner a
 * multiple of 4: four i at a time, each a float64 sum in the same j order, rounded once: bit for bit the TS loop's.
 *   for (o) for (i += 4) { acc = 0; for (j) acc += src[o][j][i..i+3]; dst[o][i..i+3] = acc }
 */
export function sumAxisKernel(): FunctionBody {
  const f = new FunctionBody({ src: 'i32', dst: 'i32', outer: 'i32', n: 'i32', inner: 'i32' })
  const { src, dst, outer, n, inner } = f.param
  const o = f.local('i32'),
    i = f.local('i32'),
    j = f.local('i32'),
    at = f.local('i32'),
    v = f.local('v128'),
    acc = wide(f)
  f.forLoop(
    o,
    () => f.i32(0),
    () => f.get(outer),
    () => {
      f.forLoop(
        i,
        () => f.i32(0),
        () => f.get(inner),
        () => {
          clear(f, acc)
          f.get(src).get(o).get(n).op('i32.mul').get(inner).op('i32.mul').get(i).op('i32.add').i32(4).op('i32.mul')
          f.op('i32.add').set(at) // &src[o][0][i]
          f.forLoop(
            j,
            () => f.i32(0),
            () => f.get(n),
            () => {
              f.get(at).mem('v128.load').set(v)
              addWide(f, acc, v)
              f.get(at).get(inner).i32(4).op('i32.mul').op('i32.add').set(at) // next j: inner floats on
            },
          )
          // dst + 4·(o·inner + i)
          f.get(dst).get(o).get(inner).op('i32.mul').get(i).op('i32.add').i32(4).op('i32.mul')
          f.op('i32.add')
          narrow(f, acc).mem('v128.store')
        },
        4,
      )
    },
  )
  return f
}
