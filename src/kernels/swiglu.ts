// SwiGLU, the Llama family's MLP activation silu(gate) ⊙ up, in one pass forward and one backward: the composite
// keeps silu(gate) alive until the backward (1.5 MB a layer at SmolLM2's 256 × 1536) and makes three passes.

/** h = g·σ(g)·u, elementwise. */
export function swiglu(g: Float32Array, u: Float32Array): Float32Array {
  const out = new Float32Array(g.length)
  for (let i = 0; i < g.length; i++) out[i] = (g[i] * u[i]) / (1 + Math.exp(-g[i]))
  return out
}

/**
 * dg = dh·u·σ(g)·(1 + g·(1 − σ(g))) and du = dh·g·σ(g), one σ per element; a gradient not wanted is not
 * computed
 * (null): under LoRA the MLP is frozen, yet both are wanted, since x's gradient flows through them.
 */
export function swigluBackward(
  g: Float32Array,
  u: Float32Array,
  dh: Float32Array,
  wantG: boolean,
  wantU: boolean,
): { dg: Float32Array | null; du: Float32Array | null } {
  const dg = wantG ? new Float32Array(g.length) : null,
    du = wantU ? new Float32Array(g.length) : null
  for (let i = 0; i < g.length; i++) {
    const s = 1 / (1 + Math.exp(-g[i]))
    if (dg) dg[i] = dh[i] * u[i] * s * (1 + g[i] * (1 - s))
    if (du) du[i] = dh[i] * g[i] * s
  }
  return { dg, du }
}
