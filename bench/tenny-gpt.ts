// Tenny's side of the GPT rows: build the model (optionally with LoRA), export its weights by name for
// tfjs, and one AdamW training step. Imports Tenny only, so a memory child can measure it alone.
import { manualSeed } from '../src/random'
import { tensor, noGrad, type Tensor } from '../src/tensor'
import { GPT, type GPTConfig } from '../nn/gpt'
import { AdamW } from '../nn/optim'
import { applyLoRA } from '../nn/lora-model'
import type { Module } from '../nn/module'
import { ADAMW, LORA } from './config'
import type { NamedWeights } from './tfjs-gpt'

/** A freshly initialised Tenny GPT, identical for the same seed; with LoRA r=8 on qProj and vProj when asked (base frozen). */
export function buildTennyGPT(cfg: GPTConfig, seed: number, { lora = false } = {}): GPT {
  manualSeed(seed)
  const model = new GPT(cfg)
  if (lora) applyLoRA(model, { targets: LORA.targets, rank: LORA.rank, alpha: LORA.alpha })
  return model
}

/** Every parameter (trainable or frozen) by its dotted name, copied. */
export function exportWeights(model: Module): NamedWeights {
  const out: NamedWeights = new Map()
  for (const [name, t] of model.namedParameters()) out.set(name, { data: t.data.slice(), shape: [...t.shape] })
  return out
}

/** Token ids (B·T) as the (B, T) float tensor Tenny's GPT takes. */
export function ids(data: Int32Array, B: number, T: number): Tensor {
  return tensor(Float32Array.from(data), [B, T])
}

/** Tenny's loss on the batch without training (the parity reference). */
export function tennyLoss(model: GPT, idx: Int32Array, targets: Int32Array, B: number): number {
  const T = model.config.blockSize
  return noGrad(() => model.loss(ids(idx, B, T), ids(targets, B, T)).item())
}

/** A closure running one training step (zeroGrad, loss, backward, AdamW step) and returning the loss. */
export function tennyTrainer(model: GPT, idx: Int32Array, targets: Int32Array, B: number): () => number {
  const T = model.config.blockSize
  const opt = new AdamW(model.trainableParameters(), ADAMW)
  const x = ids(idx, B, T),
    y = ids(targets, B, T)
  return () => {
    opt.zeroGrad()
    const loss = model.loss(x, y)
    loss.backward()
    opt.step()
    return loss.item()
  }
}
