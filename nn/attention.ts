// CausalSelfAttention: separate q, k, v and output projections (LoRA and quantization replace them by
// name) around the fused causalAttention op. In generation a KVCache holds the earlier positions' keys
// and values, so each new token costs one position instead of the whole context.
import { Tensor, zeros } from '../src/tensor.js'
import { fail, quote } from '../src/errors.js'
import { causalAttention } from '../ops/attention.js'
import { Module } from './module.js'
import { Linear, type LinearLike } from './linear.js'
import { Dropout } from './dropout.js'

/** Keys and values of the positions seen so far for one layer: k, v (B, capacity, C), first `length` rows used. */
export class KVCache {
  readonly k: Tensor
  readonly v: Tensor
  length = 0

  constructor(
    readonly batch: number,
    readonly capacity: number,
    readonly channels: number,
  ) {
    this.k = zeros([batch, capacity, channels])
    this.v = zeros([batch, capacity, channels])
  }

  /** Copy new keys and values (B, T, C) into rows [length, length + T). */
  append(k: Tensor, v: Tensor): void {
    const [B, T, C] = k.shape
    if (B !== this.batch || C !== this.channels || this.length + T > this.capacity) {
      const cache = `(${this.batch}, ${this.capacity}, ${this.channels}) holding ${this.length}`
      fail('KVCache.append', `(${B}, ${T}, ${C}) does not fit a cache of ${cache}`)
    }
    for (let b = 0; b < B; b++) {
      const at = (b * this.capacity + this.length) * C
      this.k.data.set(k.data.subarray(b * T * C, (b + 1) * T * C), at)
      this.v.data.set(v.data.subarray(b * T * C, (b + 1) * T * C), at)
    }
    this.length += T
  }
}

/**
 * Multi-head causal self-attention: y = outProj(softmax(q·kᵀ/√hs, causal)·v) with q, k, v = xWqᵀ, xWkᵀ,
 * xWvᵀ.
 */
export class CausalSelfAttention extends Module {
  qProj: LinearLike
  kProj: LinearLike
  vProj: LinearLike
  outProj: LinearLike
  residDrop: Dropout
  readonly nHead: number

  constructor(config: { nEmbd: number; nHead: number; dropout?: number; bias?: boolean }) {
    super()
    const { nEmbd, nHead, dropout = 0, bias = true } = config ?? {}
    if (!Number.isInteger(nHead) || nHead < 1 || nEmbd % nHead !== 0)
      fail('CausalSelfAttention', `nEmbd ${quote(nEmbd)} must split evenly into nHead ${quote(nHead)} heads`)
    this.nHead = nHead
    this.qProj = new Linear(nEmbd, nEmbd, { bias })
    this.kProj = new Linear(nEmbd, nEmbd, { bias })
    this.vProj = new Linear(nEmbd, nEmbd, { bias })
    this.outProj = new Linear(nEmbd, nEmbd, { bias })
    this.residDrop = new Dropout(dropout)
  }

  /**
   * x (B, T, C) → (B, T, C). With a cache (inference only), x holds new positions after cache.length earlier ones.
   */
  forward(x: Tensor, cache?: KVCache): Tensor {
    // The heads sit side by side in C: head h owns channels [h·hs, (h+1)·hs), hs = C / nHead, so q, k and v are
    // (B, T, C) read as (B, T, nHead, hs). nanoGPT splits them with view + transpose into (B, nHead, T, hs)
    // (attentionComposite does too); the fused op reads each head's slice in place instead, so nothing is copied.
    const q = this.qProj.forward(x) // (B, T, C) = (B, T, nHead, hs)
    const k = this.kProj.forward(x) // (B, T, C) = (B, T, nHead, hs)
    const v = this.vProj.forward(x) // (B, T, C) = (B, T, nHead, hs)
    let y: Tensor
    if (cache) {
      // NOTE: the cache copies k and v, so no gradient could reach the projections through it.
      if (k.requiresGrad || v.requiresGrad)
        fail('CausalSelfAttention', 'a KV cache is for inference; run it under noGrad()')
      cache.append(k, v)
      // (B, T, C): per head, softmax(q·kᵀ/√hs)·v over every cached row
      y = causalAttention(q, cache.k, cache.v, this.nHead, cache.length)
    } else {
      y = causalAttention(q, k, v, this.nHead) // (B, T, C): heads merged back side by side
    }
    return this.residDrop.forward(this.outProj.forward(y)) // (B, T, C): outProj mixes the heads
  }
}
