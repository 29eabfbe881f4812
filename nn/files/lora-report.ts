// What a LoRA adapter learned, after section 7 of the LoRA paper (Hu et al., 2021): the rank and singular values
// of ΔW = scale·B·A, its size next to W, how strongly it amplifies directions W barely used, and how much two
// adapters' subspaces overlap. All of it from the factors: ΔW (out, in) is never formed.
import { Tensor, noGrad } from '../../src/tensor.js'
import { fail } from '../../src/errors.js'
import { shapeStr } from '../../src/shape.js'
import { mul } from '../../ops/elementwise.js'
import { matmul } from '../../ops/matmul.js'
import { slice, transpose } from '../../ops/movement.js'
import * as linalg from '../../ops/linalg.js'
import { Module } from '../module.js'
import { plainLoRA, originalWeight } from '../pissa.js'
import { loraLayers, adapterStack, adapterNames, getAdapter, activeAdapter, type Adapted } from '../lora-model.js'

const EPS32 = 2 ** -23

export type LoRALayerReport = {
  path: string
  adapter: string
  rank: number // r: A is (r, in), B is (out, r)
  deltaRank: number // rank(ΔW), never above r
  singularValues: number[] // σ of ΔW, descending: min(r, out, in) of them
  deltaNorm: number // ‖ΔW‖_F
  weightNorm: number // ‖W‖_F of the original W (dequantized for a quantized base; W_res + W_r for PiSSA)
  relativeNorm: number // ‖ΔW‖_F / ‖W‖_F
  amplification: number // ‖ΔW‖_F / ‖Uᵀ·W·V‖_F, U and V the singular directions ΔW really uses
}

/** The report for one adapter (by default the active one) of one stack of adapters. */
export function adapterReport(layer: Adapted, adapter = activeAdapter(layer), path = ''): LoRALayerReport {
  const found = getAdapter(layer, adapter)
  const names = adapterNames(layer).map((n) => `'${n}'`)
  if (!found) fail('adapterReport', `layer '${path}' has no adapter named '${adapter}'; it has ${names.join(', ')}`)
  // a PiSSA adapter is measured as plain LoRA on the original W (rank ≤ 2r), like its adapter files: what training
  // changed; a DoRA adapter by its low-rank update of the direction
  const a = plainLoRA(found)
  return noGrad(() => {
    const { U, S, V } = linalg.svdProduct(mul(a.loraB, a.scale), a.loraA) // ΔW = (scale·B)·A = U·diag(S)·Vᵀ
    const sigma = Array.from(S.data)
    const deltaNorm = Math.hypot(...sigma)
    const W = originalWeight(adapterStack(layer)[0])
    const weightNorm = linalg.norm(W)
    // NumPy's matrix_rank rule, as linalg.matrixRank(ΔW) would apply it to the formed (out, in) matrix
    const tol = (sigma[0] ?? 0) * Math.max(layer.outFeatures, layer.inFeatures) * EPS32
    const deltaRank = sigma.filter((s) => s > tol).length
    // Section 7.3: project W onto ΔW's own subspace. A small ‖Uᵀ·W·V‖ next to ‖ΔW‖ means the adapter
    // boosts
    // directions W had hardly used, rather than repeating W's dominant ones.
    const Ur = slice(U, 1, 0, deltaRank) // (out, deltaRank)
    const Vr = slice(V, 1, 0, deltaRank) // (in, deltaRank)
    const projected = linalg.norm(matmul(matmul(transpose(Ur), W), Vr)) // ‖(deltaRank, deltaRank)‖_F
    const amplification = deltaRank === 0 ? 0 : deltaNorm / projected
    const relativeNorm = weightNorm === 0 ? (deltaNorm === 0 ? 0 : Infinity) : deltaNorm / weightNorm
    return {
      path,
      adapter,
      rank: a.loraA.shape[0],
      deltaRank,
      singularValues: sigma,
      deltaNorm,
      weightNorm,
      relativeNorm,
      amplification,
    }
  })
}

/**
 * Print and return, per LoRA layer, what its adapter learned: rank(ΔW) ≤ r, the singular values of ΔW,
 * ‖ΔW‖_F / ‖W‖_F and the amplification factor. `adapter` picks a named adapter (default: each layer's active
 * one).
 */
export function loraReport(
  model: Module,
  { adapter, log = console.log }: { adapter?: string; log?: (line: string) => void } = {},
): LoRALayerReport[] {
  const layers = loraLayers(model).filter(([, l]) => adapter === undefined || adapterNames(l).includes(adapter))
  if (layers.length === 0 && adapter === undefined)
    fail('loraReport', 'the model has no LoRALinear layers; wrap some first (applyLoRA)')
  if (layers.length === 0) fail('loraReport', `no LoRA layer has an adapter named '${adapter}'`)
  const reports = layers.map(([path, layer]) => adapterReport(layer, adapter ?? activeAdapter(layer), path))
  const width = Math.max(5, ...reports.map((r) => r.path.length))
  const row = (cells: string[]) =>
    [
      cells[0].padEnd(width),
      cells[1].padEnd(9),
      cells[2].padEnd(12),
      cells[3].padStart(10),
      cells[4].padStart(13),
      cells[5],
    ].join('  ')
  log(row(['layer', 'adapter', 'rank(ΔW) ≤ r', '‖ΔW‖/‖W‖', 'amplification', 'singular values of ΔW']))
  for (const r of reports) {
    const shown = r.singularValues.slice(0, 8).map((s) => s.toPrecision(3)) // the rest are in the returned reports
    const sigma = shown.join(' ') + (r.singularValues.length > shown.length ? ' …' : '')
    log(
      row([
        r.path,
        r.adapter,
        `${r.deltaRank} ≤ ${r.rank}`,
        r.relativeNorm.toPrecision(3),
        r.amplification.toPrecision(3),
        sigma,
      ]),
    )
  }
  return reports
}

/**
 * φ(A1, A2, i, j) = ‖V1ᵢᵀ·V2ⱼ‖²_F / min(i, j) ∈ [0, 1], V1ᵢ the top-i right-singular vectors of A1,
 * V2ⱼ the top-j
 * of A2: how much of one adapter's top-i input directions lie in the other's top-j (LoRA paper, section 7.2).
 * A1: (r1, in)   A2: (r2, in); 1 means one subspace contains the other, 0 means they are orthogonal.
 */
export function subspaceSimilarity(A1: Tensor, A2: Tensor, i: number, j: number): number {
  const op = 'subspaceSimilarity',
    [s1, s2] = [shapeStr(A1.shape), shapeStr(A2.shape)]
  if (A1.ndim !== 2 || A2.ndim !== 2 || A1.shape[1] !== A2.shape[1])
    fail(op, `expected A1 (r1, in) and A2 (r2, in) with the same in, got ${s1} and ${s2}`)
  const k1 = Math.min(...A1.shape),
    k2 = Math.min(...A2.shape)
  if (!Number.isInteger(i) || i < 1 || i > k1) fail(op, `i must be an integer in 1..${k1} for A1 ${s1}, got ${i}`)
  if (!Number.isInteger(j) || j < 1 || j > k2) fail(op, `j must be an integer in 1..${k2} for A2 ${s2}, got ${j}`)
  return noGrad(() => {
    const V1 = slice(linalg.svd(A1).V, 1, 0, i) // (in, i)
    const V2 = slice(linalg.svd(A2).V, 1, 0, j) // (in, j)
    return linalg.norm(matmul(transpose(V1), V2)) ** 2 / Math.min(i, j) // ‖(i, j)‖²_F / min(i, j)
  })
}
