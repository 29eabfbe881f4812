// What the page (main.ts) and the model's Web Worker (worker.ts) say to each other: plain objects, posted.
import type { BackendName } from 'tenny'
import type { OwnSettings } from './own-model'
export type { OwnSettings }

/** LoRA settings, named as PEFT's LoraConfig and mlx-lm's lora config name them. */
export type Settings = {
  rank: number // r
  alpha: number // lora_alpha: the update is scaled by alpha / rank
  targets: string[] // target_modules: which Linear layers get an adapter
  learningRate: number
  iters: number // optimizer steps
  batchSize: number
  stepsPerEval: number // the validation loss every N steps: the adapters of the lowest are kept
}

/** The backend to start: auto (name null) unless the page's address names one, `?backend=wasm&threads=1`. */
export type BackendChoice = { name: BackendName | null; threads: number | null }

/** What the page asks of the worker. */
export type Request =
  | { type: 'start'; backend: BackendChoice } // the first message, and only once
  | { type: 'ask'; prompt: string; temperature: number; strength: number }
  | { type: 'train'; settings: Settings }
  | { type: 'stop' }
  | { type: 'download'; layout: Layout }
  | { type: 'load'; files: Record<string, Uint8Array> }
  | { type: 'open-model'; name: string; files: Record<string, Uint8Array> }
  | { type: 'own-train'; settings: OwnSettings; text: string }
  | { type: 'own-ask'; prompt: string; chat: boolean }
  | { type: 'own-download' }

/** The three adapter layouts: Tenny's own, Hugging Face PEFT's, mlx-lm's. */
export type Layout = 'tenny' | 'peft' | 'mlx'
export const LAYOUT_NAMES: Record<Layout, string> = {
  tenny: "Tenny's layout",
  peft: "PEFT's layout",
  mlx: "mlx-lm's layout",
}

/** Per adapted layer: what ΔW = scale·B·A turned out to be (nn.loraReport). */
export type LayerReport = {
  path: string
  rank: number
  deltaRank: number
  singularValues: number[]
  relativeNorm: number
}

/** The kernels that run, in words, and their measured speed. */
export type BackendSummary = { name: string; detail: string; gflops: number | null; reason: string; threads: string }

/** A step and its validation loss. */
export type StepLoss = { step: number; loss: number }

/** What the worker tells the page. */
export type Reply =
  | { type: 'ready'; backend: BackendSummary; model: string; data: string; targets: string[]; defaults: Settings }
  | { type: 'answer'; prompt: string; text: string; strength: number; adapted: boolean }
  | {
      type: 'progress'
      step: number
      iters: number
      trainLoss: number | null // the mean over the steps since the last progress (null: none)
      validLoss: number | null // measured at this step, or null
      tokens: number // trained on so far (the characters whose loss counts)
      seconds: number // since the first step
      kept: StepLoss // the lowest validation loss so far: the adapters that training keeps
    }
  | {
      type: 'trained'
      steps: number
      seconds: number
      tokens: number
      stopped: boolean
      kept: StepLoss // the adapters the model now has
      last: StepLoss // the last step's validation
      report: LayerReport[]
    }
  | { type: 'loaded'; what: string; report: LayerReport[] }
  | { type: 'files'; layout: Layout; files: Record<string, Uint8Array> }
  | { type: 'status'; text: string }
  | {
      type: 'model-opened'
      name: string
      facts: string // architecture, parameters, layers, vocabulary, context, chat template
      chatTemplate: boolean // whether its tokenizer has one
      targets: string[] // the layers LoRA can wrap, by their Hugging Face names
      defaults: OwnSettings
      weights: string // the size of the model's parameters, in words
      text: string // training text to start from: the page's four best-known questions
    }
  | { type: 'own-progress'; step: number; iters: number; trainLoss: number; tokens: number; seconds: number }
  | {
      type: 'own-trained'
      steps: number
      seconds: number
      tokens: number
      stopped: boolean
      loss: number // the mean loss per token on the training text, with the adapters (as Node can check)
      quantized: number // layers quantized to 4 bits (QLoRA), 0 without
      weights: string
    }
  | { type: 'own-answer'; prompt: string; text: string; adapted: boolean }
  | { type: 'own-files'; name: string; files: Record<string, Uint8Array> }
  | { type: 'error'; text: string; training: boolean; own: boolean } // own: about your own model
