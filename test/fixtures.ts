// Shared test fixtures: the tiny GPT config, small models with Linear layers to adapt, and a temp folder.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Tensor } from '../src/tensor'
import { add, tanh } from '../ops'
import { Module } from '../nn/module'
import { Linear } from '../nn/linear'
import type { GPTConfig } from '../nn/gpt'
import { manualSeed } from '../src/random'
import { applyLoRA, loraLayers, loraAdapters, type ApplyLoRAOptions } from '../nn/lora-model'
import { normal } from './helpers'

/** The GPT the nn tests build: small enough for finite differences and bitwise round trips. */
export const TINY_GPT: GPTConfig = { vocabSize: 11, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 16 }

/** fc2(tanh(fc1(x))): 12 → 20 → 6. */
export class TwoLayer extends Module {
  fc1 = new Linear(12, 20)
  fc2 = new Linear(20, 6)
  forward(x: Tensor): Tensor {
    return this.fc2.forward(tanh(this.fc1.forward(x)))
  }
}

/** A block with the names LoRA targets: tanh(qProj(x) + vProj(x)), then fc (when asked for). */
export class Block extends Module {
  qProj: Linear
  vProj: Linear
  fc?: Linear
  constructor(d: number, fc: boolean) {
    super()
    this.qProj = new Linear(d, d)
    this.vProj = new Linear(d, d)
    if (fc) this.fc = new Linear(d, d)
  }
  forward(x: Tensor): Tensor {
    const h = tanh(add(this.qProj.forward(x), this.vProj.forward(x)))
    return this.fc ? this.fc.forward(h) : h
  }
}

/** n Blocks of width d, then a head (d → 4) when asked for. */
export class Toy extends Module {
  blocks: Block[]
  head?: Linear
  constructor({ d = 16, n = 3, fc = true, head = true } = {}) {
    super()
    this.blocks = Array.from({ length: n }, () => new Block(d, fc))
    if (head) this.head = new Linear(d, 4)
  }
  forward(x: Tensor): Tensor {
    for (const b of this.blocks) x = b.forward(x)
    return this.head ? this.head.forward(x) : x
  }
}

/** Run fn with a fresh temp folder, removed afterwards. */
export function withDir(fn: (dir: string) => void, prefix = 'tenny-test-'): void {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  try {
    fn(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Seed `seed`: a small Toy (width 8, two blocks of qProj/vProj), fresh copies of its base, and the base with LoRA whose B has moved off zero. */
export function adaptedToy(seed: number, options: ApplyLoRAOptions = {}): { fresh: () => Toy; adapted: Toy } {
  manualSeed(seed)
  const make = () => new Toy({ d: 8, n: 2, fc: false, head: false })
  const adapted = make()
  const state = adapted.stateDict()
  const fresh = () => {
    const m = make()
    m.loadStateDict(state)
    return m
  }
  applyLoRA(adapted, { rank: 2, ...options })
  for (const [, l] of loraAdapters(adapted)) l.loraB.data.set(normal(l.loraB.shape, 0.3).data)
  return { fresh, adapted }
}
