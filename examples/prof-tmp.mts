import { Tensor, crossEntropy, nn, optim } from '../src/node'
import { checkpointLayers } from './lib/grad-checkpoint'
const [B, T, ck] = [Number(process.argv[2] ?? 4), Number(process.argv[3] ?? 200), process.argv[4] === 'ck']
let t0 = performance.now()
const { model } = nn.loadPretrained('/tmp/smollm2-shape')
console.log('load', ((performance.now() - t0) / 1000).toFixed(1), 's')
nn.applyLoRA(model, { targets: ['q_proj', 'v_proj'], layers: 16, rank: 8, alpha: 160 })
if (ck) checkpointLayers(model)
model.train()
const params = model.trainableParameters()
const opt = new optim.AdamW(params, { lr: 1e-5, weightDecay: 0 })
const ids = new Tensor(
  Float32Array.from({ length: B * T }, (_, i) => (i * 97) % 320),
  [B, T],
)
const tg = new Tensor(
  Float32Array.from({ length: B * T }, (_, i) => (i * 31) % 320),
  [B, T],
)
let peak = 0
const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20)
for (let s = 0; s < 3; s++) {
  t0 = performance.now()
  const logits = model.forward(ids)
  const t1 = performance.now()
  const loss = crossEntropy(logits, tg)
  opt.zeroGrad()
  loss.backward()
  const t2 = performance.now()
  opt.step()
  console.log(
    `step ${s}: forward ${(t1 - t0).toFixed(0)} ms, loss+backward ${(t2 - t1).toFixed(0)} ms, total ${(performance.now() - t0).toFixed(0)} ms, rss ${(process.memoryUsage().rss / 2 ** 30).toFixed(2)} GiB`,
  )
  await new Promise((r) => setTimeout(r, 30))
}
clearInterval(timer)
console.log(`peak rss (sampled) ${(peak / 2 ** 30).toFixed(2)} GiB`)
