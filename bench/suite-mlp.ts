// Row (2): an MLP's forward + backward (784 → 256 → 256 → 10, ReLU, cross-entropy, batch 128), the
// classic MNIST shape. tfjs runs it as tf.layers.dense would: fused x·W + b with the activation, W (in, out).
// Both start from the same weights; the losses must agree before any time is reported.
import * as tf from '@tensorflow/tfjs'
import { manualSeed } from '../src/random'
import { tensor } from '../src/tensor'
import { relu } from '../ops/elementwise'
import { crossEntropy } from '../ops/nn'
import { Linear } from '../nn/linear'
import { useTf, type TfBackend } from './tfjs-gpt'
import { timeCall, uniformData, intData, type Row } from './timing'
import type { TennyBackends } from './tenny-backends'

export type MlpOptions = { quick: boolean; tenny: TennyBackends; tfBackends: TfBackend[] }

const SIZES = [784, 256, 256, 10]
const BATCH = 128

export async function mlpRows({ quick, tenny, tfBackends }: MlpOptions): Promise<Row[]> {
  const row: Row = {
    section: 'MLP',
    name: `MLP ${SIZES.join('→')} forward + backward, batch ${BATCH}`,
    unit: 'ms',
    cells: {},
    notes: [],
  }
  manualSeed(7)
  const layers = SIZES.slice(1).map((out, i) => new Linear(SIZES[i], out))
  const xData = uniformData(BATCH * SIZES[0], 11)
  const labels = intData(BATCH, SIZES[SIZES.length - 1], 12)
  const x = tensor(xData, [BATCH, SIZES[0]])
  const tennyStep = () => {
    for (const l of layers) for (const p of l.parameters()) p.grad = null
    let h = x
    for (const [i, l] of layers.entries()) h = i < layers.length - 1 ? relu(l.forward(h)) : l.forward(h) // (BATCH, out)
    const loss = crossEntropy(h, labels)
    loss.backward()
    return loss.item()
  }
  const reference = tennyStep()
  for (const backend of tenny.names) {
    await tenny.use(backend)
    const loss = tennyStep()
    if (Math.abs(loss - reference) > 1e-4)
      row.notes.push(`Tenny ${backend}: loss ${loss} differs from Tenny cpu's ${reference}`)
    row.cells[`Tenny ${backend}`] = timeCall(
      () => {
        tennyStep()
      },
      { quick },
    )
  }
  await tenny.use('cpu')

  for (const backend of tfBackends) {
    await useTf(backend)
    const vars = layers.map((l) => ({
      w: tf.variable(tf.tidy(() => tf.transpose(tf.tensor2d(l.weight.data, [l.outFeatures, l.inFeatures])))), // (in, out)
      b: tf.variable(tf.tensor1d(l.bias!.data)),
    }))
    const xs = tf.tensor2d(xData, [BATCH, SIZES[0]])
    const onehot = tf.oneHot(tf.tensor1d(labels, 'int32'), SIZES[SIZES.length - 1])
    const lossFn = () => {
      let h: tf.Tensor = xs
      for (const [i, v] of vars.entries())
        h = tf.fused.matMul({ a: h, b: v.w, bias: v.b, activation: i < vars.length - 1 ? 'relu' : 'linear' })
      return tf.losses.softmaxCrossEntropy(onehot, h) as tf.Scalar
    }
    const step = () =>
      tf.tidy(() => {
        const { value } = tf.variableGrads(
          lossFn,
          vars.flatMap((v) => [v.w, v.b]),
        )
        return value.dataSync()[0]
      })
    const loss = step()
    if (Math.abs(loss - reference) > 1e-4) {
      row.notes.push(`tfjs ${backend} refused: loss ${loss} differs from Tenny's ${reference} by more than 1e-4`)
      row.cells[`tfjs ${backend}`] = null
    } else {
      row.cells[`tfjs ${backend}`] = timeCall(
        () => {
          step()
        },
        { quick },
      )
    }
    tf.dispose([xs, onehot, ...vars.flatMap((v) => [v.w, v.b])])
  }
  if (!row.notes.some((n) => n.includes('refused')))
    row.notes.push(`first losses agree to 1e-4 (${reference.toFixed(6)})`)
  return [row]
}
