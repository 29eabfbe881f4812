// Causal self-attention on (B, T, C) rows with the heads side by side in C = H·hs, so no head split or
// merge is ever copied. Query i (of Tq) sees keys j ≤ i + Tk − Tq: the usual causal mask when Tq = Tk,
// and the right one for a KV cache that already holds Tk − Tq earlier positions.
//
// attentionCausalRef is the plain loop to read first. The fast kernels compute the same sums four rows
// at a time (each loaded k, v or q element feeds four accumulators held in registers) and skip the keys
// above the diagonal. In the backward a block's last rows may repeat the matrix's last row, which only
// rewrites equal values.

/**
 * Reference: y_i = Σ_j p_ij·v_j with p_i = softmax_j(scale·q_i·k_j) over the visible keys, per batch and head.
 * q (B, Tq, C); k, v hold kvRows rows per batch (≥ Tk; a cache has room to grow) of which Tk are used.
 * Returns y (B, Tq, C) and probs (B, H, Tq, Tk), zero above the diagonal, kept for the backward.
 */
export function attentionCausalRef(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  B: number,
  Tq: number,
  Tk: number,
  kvRows: number,
  H: number,
  hs: number,
  scale: number,
): { y: Float32Array; probs: Float32Array } {
  const C = H * hs
  const y = new Float32Array(B * Tq * C)
  const probs = new Float32Array(B * H * Tq * Tk)
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < Tq; i++) {
        const qOff = (b * Tq + i) * C + h * hs,
          pRow = ((b * H + h) * Tq + i) * Tk,
          last = i + Tk - Tq
        for (let j = 0; j <= last; j++) {
          let s = 0
          for (let d = 0; d < hs; d++) s += q[qOff + d] * k[(b * kvRows + j) * C + h * hs + d]
          probs[pRow + j] = s * scale
        }
        softmaxPrefix(probs, pRow, last, last)
        for (let j = 0; j <= last; j++)
          for (let d = 0; d < hs; d++) y[qOff + d] += probs[pRow + j] * v[(b * kvRows + j) * C + h * hs + d]
      }
  return { y, probs }
}

/** Softmax of a[off .. off+last] in place; a[off+last+1 .. off+end] (keys masked for this row) become 0. */
function softmaxPrefix(a: Float32Array, off: number, last: number, end: number): void {
  let max = -Infinity
  for (let j = 0; j <= last; j++) if (a[off + j] > max) max = a[off + j]
  let sum = 0
  for (let j = 0; j <= last; j++) sum += a[off + j] = Math.exp(a[off + j] - max)
  const inv = 1 / sum
  for (let j = 0; j <= last; j++) a[off + j] *= inv
  for (let j = last + 1; j <= end; j++) a[off + j] = 0
}

/** Same result as attentionCausalRef, about 2x faster: rows of q go four at a time, the leftover rows one by one. */
export function attentionCausal(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  B: number,
  Tq: number,
  Tk: number,
  kvRows: number,
  H: number,
  hs: number,
  scale: number,
): { y: Float32Array; probs: Float32Array } {
  const C = H * hs,
    shift = Tk - Tq
  const y = new Float32Array(B * Tq * C)
  const probs = new Float32Array(B * H * Tq * Tk)
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const kv = b * kvRows * C + h * hs,
        pBase = (b * H + h) * Tq * Tk
      let i0 = 0
      for (; i0 + 4 <= Tq; i0 += 4) {
        const i1 = i0 + 1,
          i2 = i0 + 2,
          i3 = i0 + 3
        const q0 = (b * Tq + i0) * C + h * hs,
          q1 = q0 + C,
          q2 = q1 + C,
          q3 = q2 + C
        const p0 = pBase + i0 * Tk,
          p1 = p0 + Tk,
          p2 = p1 + Tk,
          p3 = p2 + Tk
        const end = i3 + shift // the last key any row of the block sees
        for (let j = 0; j <= end; j++) {
          // scores: s_ij = scale · q_i·k_j
          const kj = kv + j * C
          let s0 = 0,
            s1 = 0,
            s2 = 0,
            s3 = 0
          for (let d = 0; d < hs; d++) {
            const x = k[kj + d]
            s0 += q[q0 + d] * x
            s1 += q[q1 + d] * x
            s2 += q[q2 + d] * x
            s3 += q[q3 + d] * x
          }
          probs[p0 + j] = s0 * scale
          probs[p1 + j] = s1 * scale
          probs[p2 + j] = s2 * scale
          probs[p3 + j] = s3 * scale
        }
        softmaxPrefix(probs, p0, i0 + shift, end)
        softmaxPrefix(probs, p1, i1 + shift, end)
        softmaxPrefix(probs, p2, i2 + shift, end)
        softmaxPrefix(probs, p3, i3 + shift, end)
        for (let d = 0; d < hs; d++) {
          // y_i = Σ_j p_ij·v_j, one column d at a time
          let s0 = 0,
            s1 = 0,
            s2 = 0,
            s3 = 0
          for (let j = 0, vj = kv + d; j <= end; j++, vj += C) {
            const x = v[vj]
            s0 += probs[p0 + j] * x
            s1 += probs[p1 + j] * x
            s2 += probs[p2 + j] * x
            s3 += probs[p3 + j] * x
          }
          y[q0 + d] = s0
          y[q1 + d] = s1
          y[q2 + d] = s2
          y[q3 + d] = s3
        }
      }
      for (; i0 < Tq; i0++)
        attendRow(q, k, v, y, probs, (b * Tq + i0) * C + h * hs, kv, pBase + i0 * Tk, i0 + shift, C, hs, scale)
    }
  return { y, probs }
}

/** One query row of attentionCausal (the last Tq % 4, as each cached token in generation), summed in the same order. */
function attendRow(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  y: Float32Array,
  probs: Float32Array,
  qOff: number,
  kv: number,
  pRow: number,
  last: number,
  C: number,
  hs: number,
  scale: number,
): void {
  for (let j = 0; j <= last; j++) {
    let s = 0
    for (let d = 0, kj = kv + j * C; d < hs; d++) s += q[qOff + d] * k[kj + d]
    probs[pRow + j] = s * scale
  }
  softmaxPrefix(probs, pRow, last, last)
  for (let d = 0; d < hs; d++) {
    let s = 0
    for (let j = 0, vj = kv + d; j <= last; j++, vj += C) s += probs[pRow + j] * v[vj]
    y[qOff + d] = s
  }
}

/**
 * Backward of attentionCausal. With s_ij = scale·q_i·k_j and p = softmax(s):
 *   dp_ij = dy_i·v_j        ds_ij = scale·p_ij·(dp_ij − Σ_l p_il·dp_il)
 *   dq_i = Σ_j ds_ij·k_j    dk_j = Σ_i ds_ij·q_i    dv_j = Σ_i p_ij·dy_i
 * Per batch and head: dq by blocks of four queries, then dk and dv by blocks of four keys over the visible queries.
 * dk and dv have k's layout (B, kvRows, C); rows past Tk stay zero.
 */
export function attentionCausalBackward(
  dy: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  probs: Float32Array,
  B: number,
  Tq: number,
  Tk: number,
  kvRows: number,
  H: number,
  hs: number,
  scale: number,
): { dq: Float32Array; dk: Float32Array; dv: Float32Array } {
  const C = H * hs,
    shift = Tk - Tq
  const dq = new Float32Array(B * Tq * C)
  const dk = new Float32Array(B * kvRows * C)
  const dv = new Float32Array(B * kvRows * C)
  const ds = new Float32Array(Tq * Tk) // one head's ds, rebuilt per (b, h)
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const kv = b * kvRows * C + h * hs,
        pBase = (b * H + h) * Tq * Tk
      ds.fill(0)
      for (let i0 = 0; i0 < Tq; i0 += 4) {
        const i1 = Math.min(i0 + 1, Tq - 1),
          i2 = Math.min(i0 + 2, Tq - 1),
          i3 = Math.min(i0 + 3, Tq - 1)
        const q0 = (b * Tq + i0) * C + h * hs,
          q1 = (b * Tq + i1) * C + h * hs,
          q2 = (b * Tq + i2) * C + h * hs,
          q3 = (b * Tq + i3) * C + h * hs
        const r0 = i0 * Tk,
          r1 = i1 * Tk,
          r2 = i2 * Tk,
          r3 = i3 * Tk
        const end = i3 + shift
        for (let j = 0; j <= end; j++) {
          // dp_ij = dy_i·v_j
          const vj = kv + j * C
          let s0 = 0,
            s1 = 0,
            s2 = 0,
            s3 = 0
          for (let d = 0; d < hs; d++) {
            const x = v[vj + d]
            s0 += dy[q0 + d] * x
            s1 += dy[q1 + d] * x
            s2 += dy[q2 + d] * x
            s3 += dy[q3 + d] * x
          }
          ds[r0 + j] = s0
          ds[r1 + j] = s1
          ds[r2 + j] = s2
          ds[r3 + j] = s3
        }
        softmaxGrad(ds, probs, r0, pBase + r0, end, scale) // in place: a repeated last row goes once
        if (i1 > i0) softmaxGrad(ds, probs, r1, pBase + r1, end, scale)
        if (i2 > i1) softmaxGrad(ds, probs, r2, pBase + r2, end, scale)
        if (i3 > i2) softmaxGrad(ds, probs, r3, pBase + r3, end, scale)
        for (let d = 0; d < hs; d++) {
          // dq_i = Σ_j ds_ij·k_j
          let s0 = 0,
            s1 = 0,
            s2 = 0,
            s3 = 0
          for (let j = 0, kj = kv + d; j <= end; j++, kj += C) {
            const x = k[kj]
            s0 += ds[r0 + j] * x
            s1 += ds[r1 + j] * x
            s2 += ds[r2 + j] * x
            s3 += ds[r3 + j] * x
          }
          dq[q0 + d] = s0
          dq[q1 + d] = s1
          dq[q2 + d] = s2
          dq[q3 + d] = s3
        }
      }
      for (let j0 = 0; j0 < Tk; j0 += 4) {
        // dk_j = Σ_i ds_ij·q_i and dv_j = Σ_i p_ij·dy_i over queries i ≥ j − shift
        const j1 = Math.min(j0 + 1, Tk - 1),
          j2 = Math.min(j0 + 2, Tk - 1),
          j3 = Math.min(j0 + 3, Tk - 1)
        const k0 = kv + j0 * C,
          k1 = kv + j1 * C,
          k2 = kv + j2 * C,
          k3 = kv + j3 * C
        const first = Math.max(0, j0 - shift)
        for (let d = 0; d < hs; d++) {
          let a0 = 0,
            a1 = 0,
            a2 = 0,
            a3 = 0,
            c0 = 0,
            c1 = 0,
            c2 = 0,
            c3 = 0
          for (let i = first; i < Tq; i++) {
            const qi = (b * Tq + i) * C + h * hs + d,
              r = i * Tk,
              p = pBase + r
            const x = q[qi],
              g = dy[qi]
            a0 += ds[r + j0] * x
            a1 += ds[r + j1] * x
            a2 += ds[r + j2] * x
            a3 += ds[r + j3] * x
            c0 += probs[p + j0] * g
            c1 += probs[p + j1] * g
            c2 += probs[p + j2] * g
            c3 += probs[p + j3] * g
          }
          dk[k0 + d] = a0
          dk[k1 + d] = a1
          dk[k2 + d] = a2
          dk[k3 + d] = a3
          dv[k0 + d] = c0
          dv[k1 + d] = c1
          dv[k2 + d] = c2
          dv[k3 + d] = c3
        }
      }
    }
  return { dq, dk, dv }
}

/** In place over one row, ds = scale·p ⊙ (dp − Σ p·dp), for keys 0..end (p is 0 past the row's own last key). */
function softmaxGrad(
  ds: Float32Array,
  probs: Float32Array,
  off: number,
  pOff: number,
  end: number,
  scale: number,
): void {
  let dot = 0
  for (let j = 0; j <= end; j++) dot += probs[pOff + j] * ds[off + j]
  for (let j = 0; j <= end; j++) ds[off + j] = scale * probs[pOff + j] * (ds[off + j] - dot)
}
