// The shared workload of the GPT rows: model shape, batch, optimizer and LoRA settings. No engine is
// imported here, so each memory child loads only the engine it measures.
import type { GPTConfig as TennyConfig } from '../nn/gpt'
import { intData } from './timing'

export type NamedWeights = Map<string, { data: Float32Array; shape: readonly number[] }>
export type GPTConfig = { vocabSize: number; blockSize: number; nLayer: number; nHead: number; nEmbd: number }
export type AdamWOptions = { lr: number; betas: [number, number]; eps: number; weightDecay: number }
export type LoRAOptions = { targets: string[]; rank: number; alpha: number }

/** vocab 65, context 64, nEmbd 128, 4 heads, 2 layers, MLP 4x: the configuration of issues 3, 4 and 6. */
export const TINY_GPT: TennyConfig = {
  vocabSize: 65,
  blockSize: 64,
  nLayer: 2,
  nHead: 4,
  nEmbd: 128,
  dropout: 0,
  bias: true,
}
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

/**
 * Weights named and shaped as Tenny's GPT names them, filled with small seeded values (LayerNorm gains 1):
 * for the memory children, which must not load Tenny to make weights for tfjs.
 */
export function randomWeights(cfg: GPTConfig, lora?: LoRAOptions): NamedWeights {
  const { vocabSize: V, blockSize, nLayer, nEmbd: C } = cfg
  const w: NamedWeights = new Map()
  let s = 12345
  const fill = (name: string, shape: number[], value?: number) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1))
    for (let i = 0; i < data.length; i++)
      data[i] = value ?? ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 0.04
    w.set(name, { data, shape })
  }
  const linear = (p: string, out: number, inp: number, bias = true) => {
    fill(`${p}.weight`, [out, inp])
    if (bias) fill(`${p}.bias`, [out])
    if (lora && lora.targets.some((t) => p.endsWith(`.${t}`))) {
      fill(`${p}.loraA`, [lora.rank, inp])
      fill(`${p}.loraB`, [out, lora.rank], 0)
    }
  }
  const norm = (p: string) => {
    fill(`${p}.weight`, [C], 1)
    fill(`${p}.bias`, [C], 0)
  }
  fill('wte.weight', [V, C])
  fill('wpe.weight', [blockSize, C])
  for (let i = 0; i < nLayer; i++) {
    const p = `blocks.${i}`
    norm(`${p}.ln1`)
    for (const name of ['qProj', 'kProj', 'vProj', 'outProj']) linear(`${p}.attn.${name}`, C, C)
    norm(`${p}.ln2`)
    linear(`${p}.mlp.fc`, 4 * C, C)
    linear(`${p}.mlp.proj`, C, 4 * C)
  }
  norm('lnF')
  linear('lmHead', V, C, false)
  return w
}
