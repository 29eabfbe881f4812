// A project outside the repository, as a user writes it: Tenny installed from its tarball, type-checked under
// strict NodeNext settings, compiled by tsc and run with plain `node` (no loader). It prints one JSON line.
import { mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  tensor,
  matmul,
  relu,
  sum,
  randn,
  manualSeed,
  randint,
  slice,
  nn,
  optim,
  backendInfo,
  setBackend,
  saveSafetensors,
  loadSafetensors,
  type Tensor,
} from 'tenny'

function check(ok: boolean, claim: string): void {
  if (!ok) throw new Error(`consumer: expected ${claim}`)
}

// autograd, the README's first example
const x = tensor([
  [1, 2],
  [3, 4],
])
const w = tensor(
  [
    [0.5, -1],
    [1, 1],
  ],
  { requiresGrad: true },
)
const y = sum(relu(matmul(x, w)))
y.backward()
check(y.item() === 10, `y = 10, got ${y.item()}`)
check(
  JSON.stringify(w.grad?.toArray()) === '[[4,4],[6,6]]',
  `dy/dw = [[4,4],[6,6]], got ${JSON.stringify(w.grad?.toArray())}`,
)

// gpu.js is an optional peer: not installed here, so asking for it is one clear error that says how to get it
let gpujsError = ''
try {
  setBackend('gpujs')
} catch (err) {
  gpujsError = err instanceof Error ? err.message : String(err)
}
check(
  gpujsError.includes('`npm install gpu.js` beside tenny'),
  `setBackend('gpujs') to say how to install gpu.js, got ${JSON.stringify(gpujsError)}`,
)

// every core: the parallel backend's workers start from the compiled package and take part in a product
const cores = availableParallelism()
const started = setBackend('parallel').parallel
check(
  started.failure === '' && started.threads === cores && started.workersReady === cores - 1,
  `all ${cores} threads ready, got ${JSON.stringify(started)}`,
)
check(matmul(randn([256, 256]), randn([256, 256])).size === 65536, 'a (256, 256) product')
check(
  backendInfo().parallel.blocksByWorkers > 0,
  `the workers took part, got ${JSON.stringify(backendInfo().parallel)}`,
)

// one LoRA training step of a small GPT, then its adapters saved and loaded into a fresh copy of the base
const config = { vocabSize: 65, blockSize: 32, nLayer: 2, nHead: 4, nEmbd: 64 }
const gpt = (): nn.GPT => {
  manualSeed(0)
  return new nn.GPT(config)
}
const model = gpt()
nn.applyLoRA(model, { targets: ['qProj', 'vProj'], rank: 8, alpha: 16 })
const opt = new optim.AdamW(model.trainableParameters(), { lr: 1e-2 })
const tokens = randint(0, 65, [4, 33])
const inputs = slice(tokens, 1, 0, 32),
  targets = slice(tokens, 1, 1, 33)
const loss: Tensor = model.loss(inputs, targets)
opt.zeroGrad()
loss.backward()
opt.step()
const after = model.loss(inputs, targets).item()
check(after < loss.item(), `the step lowers the loss, ${loss.item()} → ${after}`)

const dir = mkdtempSync(join(tmpdir(), 'tenny-consumer-'))
try {
  const file = join(dir, 'adapters.safetensors')
  nn.saveAdapters(file, model)
  const copy = gpt()
  nn.loadAdapters(copy, file)
  check(copy.loss(inputs, targets).item() === after, 'the loaded adapters give the same loss')
  saveSafetensors(join(dir, 'w.safetensors'), { w })
  check(
    JSON.stringify(loadSafetensors(join(dir, 'w.safetensors')).tensors.w?.shape) === '[2,2]',
    'a saved tensor loads back',
  )
} finally {
  rmSync(dir, { recursive: true, force: true })
}

console.log(JSON.stringify({ cores, info: backendInfo(), loss: [loss.item(), after] }))
