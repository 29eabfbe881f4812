// One fine-tuning step, shared by the Node example and the browser playground so both train the same way:
// label-smoothed cross-entropy, backward, gradients clipped at norm 1, an AdamW step. Browser-safe.
import { Tensor, crossEntropy, logSoftmax, mean, sum, mul, add, optim } from '../../src/index'
import { IGNORE } from './batches'

/** What trainStep needs of a model: logits (B, T, V) for inputs (B, T). */
type LanguageModel = { forward(inputs: Tensor): Tensor }

/** One optimizer step on one batch; returns the batch's plain cross-entropy (comparable with evaluations), NaN if it diverged. */
export function trainStep(
  model: LanguageModel,
  opt: optim.Optimizer,
  params: Tensor[],
  batch: { inputs: Tensor; targets: Tensor; tokens: number },
  smoothing: number,
): number {
  const step = lossOrNaN(() => smoothedLoss(model.forward(batch.inputs), batch.targets, batch.tokens, smoothing)) // logits (B, T, V) → scalar
  if (typeof step === 'number') return step // diverged: the caller reports it
  const { loss, ce } = step
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
  const uniform = mul(sum(mul(mean(logSoftmax(logits), -1), real)), -1 / tokens) // mean over positions of −mean_v log p
  return { loss: add(mul(ce, 1 - eps), mul(uniform, eps)), ce: ce.item() }
}

/** crossEntropy refuses to return a NaN or infinite loss (it names the row); for training that is a diverged run: NaN. */
export function lossOrNaN<T>(f: () => T): T | number {
  try {
    return f()
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('crossEntropy: row')) return NaN
    throw err
  }
}
