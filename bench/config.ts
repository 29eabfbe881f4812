// The shared workload of the GPT rows: model shape, batch, optimizer and LoRA settings. No engine is
// imported here, so each memory child loads only the engine it measures.
import type { GPTConfig } from '../nn/gpt'
import { intData } from './timing'

/** vocab 65, context 64, nEmbd 128, 4 heads, 2 layers, MLP 4x: the configuration of issues 3, 4 and 6. */
export const TINY_GPT: GPTConfig = { vocabSize: 65, blockSize: 64, nLayer: 2, nHead: 4, nEmbd: 128, dropout: 0, bias: true }
export const BATCH = 16
export const ADAMW = { lr: 1e-3, betas: [0.9, 0.95] as [number, number], eps: 1e-8, weightDecay: 0.1 }
export const LORA = { targets: ['qProj', 'vProj'], rank: 8, alpha: 16 }
/** Both engines' first losses must agree this closely before a GPT row is timed. */
export const PARITY_TOL = 1e-4
export const SEED = 1337

/** The batch both engines train on: random token ids (B·T), the same every step. */
export function batchData(cfg: GPTConfig, B: number): { idx: Int32Array; targets: Int32Array } {
  return { idx: intData(B * cfg.blockSize, cfg.vocabSize, 1), targets: intData(B * cfg.blockSize, cfg.vocabSize, 2) }
}
