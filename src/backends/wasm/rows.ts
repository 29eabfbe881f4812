// Layer norm over rows as WebAssembly SIMD, mirroring src/kernels/rows.ts's layerNormRows and its backward (read
// those first): each row's sums go four columns per step, then one horizontal add. cols is a multiple of 4 (the
// caller checks); stats holds every row's mean, then every row's rstd. Sums run in float32 here, where the TS loops
// add in float64: results agree to float32 rounding, not bit for bit. Also sumAxis, which agrees bit for bit.
import { FunctionBody } from './emit.js'

type Locals = Record<string, number>

/** Each vector of row r: body() with L.at = &x[r][j], L.dyAt = &dy[r][j] (if dy given), L.wAt = &w[j], L.out = &y[r][j]. */
function eachColumn(f: FunctionBody, L: Locals, body: () => void): void {
  f.forLoop(
    L.j,
    () => f.i32(0),
    () => f.get(L.cols),
    () => {
      f.get(L.row).get(L.j).i32(4).op('i32.mul').op('i32.add').set(L.off) // byte offset of (r, j) from the arrays' starts
      f.get(L.j).i32(4).op('i32.mul').set(L.col)
      body()
    },
    4,
  )
}
const load = (f: FunctionBody, base: number, off: number) => f.get(base).get(off).op('i32.add').mem('v128.load')
/** Push &stats[r] (which 0: the means) or &stats[rows + r] (1: the rstds). */
const statAt = (f: FunctionBody, stats: number, rows: number, L: Locals, which: 0 | 1) => {
  f.get(stats).get(L.r).i32(4).op('i32.mul').op('i32.add')
  if (which === 1) f.get(rows).i32(4).op('i32.mul').op('i32.add')
}
const across = (f: FunctionBody, v: number) =>
  f.get(v).lane(0).get(v).lane(1).op('f32.add').get(v).lane(2).op('f32.add').get(v).lane(3).op('f32.add')

/**
 * layerNorm(x, w, b, y, stats, rows, cols, invCols, eps): y = (x − mean) · rstd · w + b per row,
 * rstd = 1/√(var + eps), var the mean of (x − mean)².
 */
export function layerNormKernel(): FunctionBody {
  const f = new FunctionBody(['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'f32', 'f32'])
  const [x, w, b, y, stats, rows, cols, invCols, eps] = [0, 1, 2, 3, 4, 5, 6, 7, 8]
  const L: Locals = {
    cols,
    r: f.local('i32'),
    j: f.local('i32'),
    row: f.local('i32'),
    off: f.local('i32'),
    col: f.local('i32'),
  }
  const acc = f.local('v128'),
    d = f.local('v128'),
    mu = f.local('f32'),
    rs = f.local('f32')
  f.forLoop(
    L.r,
    () => f.i32(0),
    () => f.get(rows),
    () => {
      f.get(L.r).get(cols).op('i32.mul').i32(4).op('i32.mul').set(L.row)
      f.zero().set(acc)
      eachColumn(f, L, () => {
        load(f, x, L.off)
        f.get(acc).op('f32x4.add').set(acc)
      })
      across(f, acc)
      f.get(invCols).op('f32.mul').set(mu) // mean
      f.zero().set(acc)
      eachColumn(f, L, () => {
        load(f, x, L.off)
        f.get(mu).op('f32x4.splat').op('f32x4.sub').set(d)
        f.get(acc).get(d).get(d).op('f32x4.mul').op('f32x4.add').set(acc)
      })
      f.f32(1)
      across(f, acc)
      f.get(invCols).op('f32.mul').get(eps).op('f32.add').op('f32.sqrt').op('f32.div').set(rs) // 1/√(var + eps)
      eachColumn(f, L, () => {
        f.get(y).get(L.off).op('i32.add')
        load(f, x, L.off)
        f.get(mu).op('f32x4.splat').op('f32x4.sub').get(rs).op('f32x4.splat').op('f32x4.mul')
        load(f, w, L.col)
        f.op('f32x4.mul')
        load(f, b, L.col)
        f.op('f32x4.add').mem('v128.store')
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
 * layerNormBackward(dy, x, w, stats, dx, dw, db, rows, cols, invCols, withParams). With x̂ = (x − mean)·rstd and
 * g = dy ⊙ w:  dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)),  dw += Σ_rows dy ⊙ x̂,  db += Σ_rows dy (dw and db
 * start at 0, and stay untouched when withParams is 0: a frozen weight and bias).
 */
export function layerNormBackwardKernel(): FunctionBody {
  const f = new FunctionBody(['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'f32', 'i32'])
  const [dy, x, w, stats, dx, dw, db, rows, cols, invCols, withParams] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
  const L: Locals = {
    cols,
    r: f.local('i32'),
    j: f.local('i32'),
    row: f.local('i32'),
    off: f.local('i32'),
    col: f.local('i32'),
  }
  const gAcc = f.local('v128'),
    gxAcc = f.local('v128'),
    xHat = f.local('v128'),
    g = f.local('v128'),
    dyv = f.local('v128')
  const mu = f.local('f32'),
    rs = f.local('f32'),
    gMean = f.local('f32'),
    gxMean = f.local('f32')
  const hat = () => {
    // x̂ = (x − mean)·rstd and g = dy·w of the current vector
    load(f, x, L.off)
    f.get(mu).op('f32x4.splat').op('f32x4.sub').get(rs).op('f32x4.splat').op('f32x4.mul').set(xHat)
    load(f, dy, L.off)
    f.set(dyv)
    f.get(dyv)
    load(f, w, L.col)
    f.op('f32x4.mul').set(g)
  }
  f.forLoop(
    L.r,
    () => f.i32(0),
    () => f.get(rows),
    () => {
      f.get(L.r).get(cols).op('i32.mul').i32(4).op('i32.mul').set(L.row)
      statAt(f, stats, rows, L, 0)
      f.mem('f32.load').set(mu)
      statAt(f, stats, rows, L, 1)
      f.mem('f32.load').set(rs)
      f.zero().set(gAcc)
      f.zero().set(gxAcc)
      eachColumn(f, L, () => {
        hat()
        f.get(gAcc).get(g).op('f32x4.add').set(gAcc)
        f.get(gxAcc).get(g).get(xHat).op('f32x4.mul').op('f32x4.add').set(gxAcc)
        f.get(withParams).ifElse(
          () => {
            f.get(dw).get(L.col).op('i32.add')
            load(f, dw, L.col)
            f.get(dyv).get(xHat).op('f32x4.mul').op('f32x4.add').mem('v128.store')
            f.get(db).get(L.col).op('i32.add')
            load(f, db, L.col)
            f.get(dyv).op('f32x4.add').mem('v128.store')
          },
          () => {},
        )
      })
      across(f, gAcc)
      f.get(invCols).op('f32.mul').set(gMean)
      across(f, gxAcc)
      f.get(invCols).op('f32.mul').set(gxMean)
      eachColumn(f, L, () => {
        hat()
        f.get(dx).get(L.off).op('i32.add')
        f.get(g)
          .get(gMean)
          .op('f32x4.splat')
          .op('f32x4.sub')
          .get(xHat)
          .get(gxMean)
          .op('f32x4.splat')
          .op('f32x4.mul')
          .op('f32x4.sub')
        f.get(rs).op('f32x4.splat').op('f32x4.mul').mem('v128.store')
      })
    },
  )
  return f
}

/**
 * sumAxis(src, dst, outer, n, inner): dst[o][i] = Σ_j src[o][j][i], as kernels/rows.ts's sumAxis, for inner a multiple
 * of 4: four i at a time, j in the same order, so each lane rounds as the TS loop's float32 accumulator does.
 *   for (o) for (i += 4) { acc = 0; for (j) acc += src[o][j][i..i+3]; dst[o][i..i+3] = acc }
 */
export function sumAxisKernel(): FunctionBody {
  const f = new FunctionBody(['i32', 'i32', 'i32', 'i32', 'i32'])
  const [src, dst, outer, n, inner] = [0, 1, 2, 3, 4]
  const o = f.local('i32'),
    i = f.local('i32'),
    j = f.local('i32'),
    at = f.local('i32'),
    acc = f.local('v128')
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
          f.zero().set(acc)
          f.get(src)
            .get(o)
            .get(n)
            .op('i32.mul')
            .get(inner)
            .op('i32.mul')
            .get(i)
            .op('i32.add')
            .i32(4)
            .op('i32.mul')
            .op('i32.add')
            .set(at) // &src[o][0][i]
          f.forLoop(
            j,
            () => f.i32(0),
            () => f.get(n),
            () => {
              f.get(acc).get(at).mem('v128.load').op('f32x4.add').set(acc)
              f.get(at).get(inner).i32(4).op('i32.mul').op('i32.add').set(at) // next j: inner floats on
            },
          )
          f.get(dst)
            .get(o)
            .get(inner)
            .op('i32.mul')
            .get(i)
            .op('i32.add')
            .i32(4)
            .op('i32.mul')
            .op('i32.add')
            .get(acc)
            .mem('v128.store') // &dst[o][i]
        },
        4,
      )
    },
  )
  return f
}
