// What every training loop of the examples shares (the Node fine-tune, pretraining and the browser playground):
// one step — label-smoothed cross-entropy, backward, gradients clipped at norm 1, an AdamW step —, the evaluation
// of a split and the learning-rate schedule. Browser-safe.
import { Tensor, crossEntropy, logSoftmax, mean, sum, mul, add, noGrad, optim } from '../../src/index'
import { IGNORE } from './batches'

/** What the loops need of a model: logits (B, T, V) for inputs (B, T), and a train and an eval mode (dropout). */
type LanguageModel = { forward(inputs: Tensor): Tensor; train(): unknown; eval(): unknown }
/** Inputs and next-token targets (B, T), and how many targets count (padding and masked ones do not). */
export type Batch = { inputs: Tensor; targets: Tensor; tokens: number }

/** One optimizer step on one batch; its plain cross-entropy (comparable with evaluations), or NaN if it diverged. */
export function trainStep(
  model: LanguageModel,
  opt: optim.Optimizer,
  params: Tensor[],
  batch: Batch,
  smoothing: number,
): number {
  const logits = model.forward(batch.inputs) // (B, T, V)
  if (!finite(logits)) return NaN // diverged: the caller says so and what to try
  const { loss, ce } = smoothedLoss(logits, batch.targets, batch.tokens, smoothing)
  opt.zeroGrad()
  loss.backward()
  optim.clipGradNorm(params, 1)
  opt.step()
  return ce
}

/**
 * Cross-entropy with label smoothing: (1 − eps)·CE(target) + eps·CE(uniform), the uniform part being the mean of
 * −log p over the vocabulary. With ~100 examples the adapter memorises them; smoothing keeps it from becoming
 * certain, so held-out loss does not blow up while the trained answers are learned.  logits (B, T, V), targets (B, T)
 */
export function smoothedLoss(
  logits: Tensor,
  targets: Tensor,
  tokens: number,
  eps: number,
): { loss: Tensor; ce: number } {
  const ce = crossEntropy(logits, targets) // mean over the non-padding positions
  if (eps === 0) return { loss: ce, ce: ce.item() }
  const real = new Tensor(
    targets.data.map((t) => (t === IGNORE ? 0 : 1)),
    targets.shape,
  ) // (B, T): 0 at padding
  // mean over positions of −mean_v log p
  const uniform = mul(sum(mul(mean(logSoftmax(logits), -1), real)), -1 / tokens)
  return { loss: add(mul(ce, 1 - eps), mul(uniform, eps)), ce: ce.item() }
}

/** The examples evaluate a split in batches of this many: the loss is the same for any size, the time is not. */
export const EVAL_BATCH = 8

/** Mean loss per predicted token over `batches` (dropout off, no graph); NaN once the model has diverged. */
export function evaluate(model: LanguageModel, batches: Iterable<Batch>): number {
  return noGrad(() => {
    model.eval()
    let total = 0,
      count = 0
    for (const batch of batches) {
      const logits = model.forward(batch.inputs) // (B, T, V)
      total += (finite(logits) ? crossEntropy(logits, batch.targets).item() : NaN) * batch.tokens
      count += batch.tokens
    }
    model.train()
    return total / count
  })
}

/** The examples' learning rate at each step: linear warmup to `lr`, then cosine decay to a tenth of it. */
export function schedule(lr: number, iters: number, warmupSteps = Math.min(10, iters)): (step: number) => number {
  return optim.cosineSchedule({ lr, warmupSteps, totalSteps: iters, minLr: lr / 10 })
}

/** No NaN or infinity among the logits: crossEntropy refuses those, and for training they mean divergence. */
function finite(logits: Tensor): boolean {
  for (const x of logits.data) if (!Number.isFinite(x)) return false
  return true
}

/** A loss that is NaN or infinite ends the run before anything is saved: one line saying where and what to lower. */
export function checkFinite(what: string, value: number, step: number, lower: Record<string, number>): void {
  if (Number.isFinite(value)) return
  const now = (x: number) => (Math.abs(x) >= 1e5 ? x.toExponential() : String(x))
  const settings = Object.entries(lower).map(([name, x]) => `${name} (now ${now(x)})`)
  throw new Error(
    `step ${step}: the ${what} is ${value}, so training diverged and nothing was saved; ` +
      `try a lower ${settings.join(' or ')}`,
  )
}

/** Copies of the parameters' values, to restore the best step's weights after training went on past it. */
export const snapshot = (params: Tensor[]): Float32Array[] => params.map((p) => p.data.slice())
export const restore = (params: Tensor[], saved: Float32Array[]) => params.forEach((p, i) => p.data.set(saved[i]))
