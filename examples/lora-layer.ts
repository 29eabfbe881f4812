// LoRA on one layer: freeze a Linear W, learn only ΔW = scale·B·A with B (out, r) and A (r, in). However long it
// trains, ΔW never has rank above r, which is the tutorial's point: a few directions carry the whole update.
//   npx tsx examples/lora-layer.ts
import { manualSeed, randn, add, sub, matmul, linear, mseLoss, noGrad, linalg, nn, optim } from '../src/index'

manualSeed(0)
const [inF, outF, r] = [16, 12, 2]
const base = new nn.Linear(inF, outF) // W (12, 16), b (12): the "pretrained" layer
const layer = nn.LoRALinear.fromLinear(base, { rank: r, alpha: 4 }) // freezes W and b; scale = alpha / r = 2
const shapes = `A ${layer.loraA.shape}, B ${layer.loraB.shape}`
console.log(
  `frozen: ${base.numParameters()} parameters; trainable: ${layer.numParameters({ trainable: true })} (${shapes})`,
)

// B starts at zero, so before training the wrapped layer is exactly the base layer.
const x = randn([64, inF]) // (64, 16) inputs
const same = noGrad(() => mseLoss(layer.forward(x), base.forward(x)).item())
console.log(`before training: mean (LoRA(x) − Wx)² = ${same}`)

// The new task wants W + ΔW★ for a ΔW★ of rank 2: targets y = x·(W + ΔW★)ᵀ + b.
const deltaStar = matmul(randn([outF, r]), randn([r, inF])) // (12, 2)·(2, 16) → (12, 16), rank 2
const target = noGrad(() => add(base.forward(x), linear(x, deltaStar))) // (64, 12)

const opt = new optim.Adam(layer.trainableParameters(), { lr: 0.05 })
for (let step = 0; step <= 300; step++) {
  const loss = mseLoss(layer.forward(x), target)
  opt.zeroGrad()
  loss.backward()
  opt.step()
  if (step % 100 === 0) console.log(`step ${String(step).padStart(3)}: loss ${loss.item().toExponential(2)}`)
}

// ΔW = scale·B·A is a (12, 16) matrix, yet only r of its singular values are non-zero.
const deltaW = layer.deltaWeight()
const sigma = Array.from(linalg.svdvals(deltaW).data, (s) => s.toExponential(1))
console.log(`ΔW ${deltaW.shape.join('×')}: singular values [${sigma.join(', ')}]`)
const full = `a full ${outF}×${inF} update could have rank ${Math.min(outF, inF)}`
console.log(`rank(ΔW) = ${linalg.matrixRank(deltaW)} ≤ r = ${r}   (${full})`)
const error = linalg.norm(sub(deltaW, deltaStar)) / linalg.norm(deltaStar)
console.log(`‖ΔW − ΔW★‖ / ‖ΔW★‖ = ${error.toExponential(1)}: the rank-${r} factors found the update`)

// Merging folds ΔW into W: one plain Linear again, with the same outputs and no extra cost at inference.
const merged = layer.merge()
const difference = noGrad(() => mseLoss(merged.forward(x), layer.forward(x)).item())
console.log(`merged Linear vs LoRA layer: mean squared difference ${difference.toExponential(1)}`)

// Section 7.2 of the LoRA paper: do adapters of different ranks find the same directions? Train a rank-8 adapter
// from another seed and compare the top-2 input directions of the two A's: φ = 1 means the same plane.
manualSeed(1)
const wide = nn.LoRALinear.fromLinear(base, { rank: 8, alpha: 16 })
const opt8 = new optim.Adam(wide.trainableParameters(), { lr: 0.05 })
for (let step = 0; step < 300; step++) {
  const loss = mseLoss(wide.forward(x), target)
  opt8.zeroGrad()
  loss.backward()
  opt8.step()
}
const phi = nn.subspaceSimilarity(layer.loraA, wide.loraA, 2, 2)
const chance = nn.subspaceSimilarity(randn([2, inF]), randn([8, inF]), 2, 2)
console.log(`φ(A r=2, A r=8, 2, 2) = ${phi.toFixed(3)}; two random planes in ${inF}-d: ${chance.toFixed(3)}`)
