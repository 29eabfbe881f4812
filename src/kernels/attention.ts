// Causal self-attention on (B, T, C) rows with the heads side by side in C = H·hs, so no head split or
// merge is ever copied. Query i (of Tq) sees keys j ≤ i + Tk − Tq: the usual causal mask when Tq = Tk,
// and the right one for a KV cache that already holds Tk − Tq earlier positions.

/**
 * y_i = Σ_j p_ij·v_j with p_i = softmax_j(scale · q_i·k_j) over the visible keys, per batch and head.
 * q (B, Tq, C); k, v hold kvRows rows per batch (≥ Tk; a cache has room to grow) of which Tk are used.
 * Returns y (B, Tq, C) and probs (B, H, Tq, Tk), zero above the diagonal, kept for the backward.
 */
export function attentionCausal(q: Float32Array, k: Float32Array, v: Float32Array, B: number, Tq: number, Tk: number, kvRows: number, H: number, hs: number, scale: number): { y: Float32Array; probs: Float32Array } {
  const C = H * hs
  const y = new Float32Array(B * Tq * C)
  const probs = new Float32Array(B * H * Tq * Tk)
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvBase = b * kvRows * C + h * hs
      for (let i = 0; i < Tq; i++) {
        const qOff = (b * Tq + i) * C + h * hs
        const pRow = ((b * H + h) * Tq + i) * Tk
        const last = i + Tk - Tq // the last visible key
        let max = -Infinity
        for (let j = 0; j <= last; j++) {
          const kOff = kvBase + j * C
          let s = 0
          for (let d = 0; d < hs; d++) s += q[qOff + d] * k[kOff + d]
          s *= scale
          probs[pRow + j] = s
          if (s > max) max = s
        }
        let sum = 0
        for (let j = 0; j <= last; j++) {
          const e = Math.exp(probs[pRow + j] - max)
          probs[pRow + j] = e
          sum += e
        }
        const inv = 1 / sum
        for (let j = 0; j <= last; j++) {
          const p = (probs[pRow + j] *= inv)
          const vOff = kvBase + j * C
          for (let d = 0; d < hs; d++) y[qOff + d] += p * v[vOff + d]
        }
      }
    }
  }
  return { y, probs }
}

/**
 * Backward of attentionCausal. With s_ij = scale·q_i·k_j and p = softmax(s):
 *   dv_j = Σ_i p_ij·dy_i        dp_ij = dy_i·v_j        ds_ij = p_ij·(dp_ij − Σ_l p_il·dp_il)
 *   dq_i = scale·Σ_j ds_ij·k_j  dk_j = scale·Σ_i ds_ij·q_i
 * dk and dv have k's layout (B, kvRows, C); rows past Tk stay zero.
 */
export function attentionCausalBackward(dy: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, probs: Float32Array, B: number, Tq: number, Tk: number, kvRows: number, H: number, hs: number, scale: number): { dq: Float32Array; dk: Float32Array; dv: Float32Array } {
  const C = H * hs
  const dq = new Float32Array(B * Tq * C)
  const dk = new Float32Array(B * kvRows * C)
  const dv = new Float32Array(B * kvRows * C)
  const dp = new Float32Array(Tk)
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvBase = b * kvRows * C + h * hs
      for (let i = 0; i < Tq; i++) {
        const qOff = (b * Tq + i) * C + h * hs
        const pRow = ((b * H + h) * Tq + i) * Tk
        const last = i + Tk - Tq
        let rowDot = 0
        for (let j = 0; j <= last; j++) {
          const vOff = kvBase + j * C, p = probs[pRow + j]
          let s = 0
          for (let d = 0; d < hs; d++) {
            s += dy[qOff + d] * v[vOff + d]
            dv[vOff + d] += p * dy[qOff + d]
          }
          dp[j] = s
          rowDot += p * s
        }
        for (let j = 0; j <= last; j++) {
          const kOff = kvBase + j * C
          const ds = probs[pRow + j] * (dp[j] - rowDot) * scale
          for (let d = 0; d < hs; d++) {
            dq[qOff + d] += ds * k[kOff + d]
            dk[kOff + d] += ds * q[qOff + d]
          }
        }
      }
    }
  }
  return { dq, dk, dv }
}
