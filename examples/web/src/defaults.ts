// The page's first Train click. Everything is the Node example's default (`npm run example`, from its flag table)
// but the number of steps: 1,200 steps take the Node example 2-4 minutes here, longer than a person waits for a
// first click, and so are the 135 questions of examples/data: the page trains on examples/data/first-click, 80 of
// them with the same answers (make-dataset.ts). 400 steps on those (2026-12-08, Node, seed 0) recalled the relu,
// matmul, softmax and gelu answers exactly and 71 of 80 in all, kept at step 300 by the validation loss; 300 steps
// recalled 23.
import { FLAGS } from '../../lib/flags'
import type { Settings } from './messages'

export const FIRST_CLICK: Settings = {
  rank: FLAGS.rank.default,
  alpha: FLAGS.alpha.default,
  targets: FLAGS.targets.default,
  learningRate: FLAGS.lr.default,
  iters: 400,
  batchSize: FLAGS.batchSize.default,
  stepsPerEval: FLAGS.stepsPerEval.default,
}
