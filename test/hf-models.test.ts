// Hugging Face checkpoints loaded into nn/llama.ts and nn/gpt2.ts, against PyTorch: every fixture under
// test/fixtures/hf (written with its references by make.py, transformers' math in float32) gives PyTorch's logits
// to float32 rounding, its loss and its greedy tokens; the cached generation equals the recomputed one; a loaded
// model is in eval mode, keyed by Hugging Face's names, and drew nothing from the random stream.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Tensor, noGrad } from '../src/tensor'
import { rngState, manualSeed } from '../src/random'
import { parseSafetensors, type StoredTensor } from '../src/formats/safetensors'
import { slice } from '../ops'
import { loadPretrained } from '../nn/files/pretrained-node'
import { pretrainedFromFiles } from '../nn/files/pretrained'
import { LlamaForCausalLM } from '../nn/llama'
import { GPT2LMHeadModel } from '../nn/gpt2'
import { applyLoRA, loraAdapters } from '../nn/lora-model'
import { AdamW } from '../nn/optim'
import { readConfig } from '../nn/files/pretrained-config'
import { assertClose } from './helpers'

const ROOT = 'test/fixtures/hf'
const FIXTURES = readdirSync(ROOT).filter((f) => !f.includes('.'))

function reference(name: string): Record<string, StoredTensor> {
  return parseSafetensors(readFileSync(join(ROOT, name, 'reference.safetensors'))).tensors
}
const ids = (t: StoredTensor) => new Tensor(Float32Array.from(t.data), t.shape)

/** A fixture folder's files as bytes, for the browser-safe entry. */
function files(name: string): Record<string, Uint8Array> {
  const dir = join(ROOT, name)
  return Object.fromEntries(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]))
}

test('fixtures: all seven architectures and layouts are there', () => {
  assert.equal(FIXTURES.sort(), [
    'gpt2-f32',
    'gpt2-hub-f16',
    'gpt2-untied-bf16',
    'llama-tied-f32',
    'llama-untied-bf16-sharded',
    'mistral-bf16',
    'qwen2-f16',
  ])
})

for (const name of FIXTURES) {
  test(`${name}: logits and loss equal PyTorch's to float32 rounding, greedy tokens equal`, () => {
    const ref = reference(name)
    const { model } = loadPretrained(join(ROOT, name))
    const logits = noGrad(() => model.forward(ids(ref.idx)))
    assert.equal(logits.shape, ref.logits.shape)
    assertClose(logits.data, ref.logits.data, { atol: 2e-5, rtol: 1e-5, what: `${name} logits` })
    const loss = noGrad(() => model.loss(ids(ref.idx), ids(ref.targets)))
    assertClose([loss.item()], ref.loss.data, { atol: 1e-5, rtol: 1e-6, what: `${name} loss` })
    const [, T0] = ref.prompt.shape,
      n = ref.generated.shape[1] - T0
    assert.equal(
      Array.from(model.generate(ids(ref.prompt), n, { temperature: 0 }).data),
      Array.from(ref.generated.data),
    )
    assert.equal(
      Array.from(model.generate(ids(ref.prompt), n, { temperature: 0, useCache: false }).data),
      Array.from(ref.generated.data),
    )
  })
}

test('pretrainedFromFiles (bytes, browser-safe) builds the same model as loadPretrained (paths)', () => {
  for (const name of ['llama-untied-bf16-sharded', 'gpt2-hub-f16', 'qwen2-f16']) {
    const ref = reference(name)
    const fromBytes = pretrainedFromFiles(files(name)).model
    const fromDisk = loadPretrained(join(ROOT, name)).model
    const a = noGrad(() => fromBytes.forward(ids(ref.idx))),
      b = noGrad(() => fromDisk.forward(ids(ref.idx)))
    assert.equal(a.data, b.data, name)
  }
  // an ArrayBuffer (what fetch().arrayBuffer() gives) is accepted as well
  const buffers = Object.fromEntries(Object.entries(files('gpt2-f32')).map(([k, v]) => [k, v.slice().buffer]))
  assert.ok(pretrainedFromFiles(buffers).model instanceof GPT2LMHeadModel)
})

test('the folder`s tokenizer comes with the model: its ids fit the embeddings, eos as config.json says; none → null', () => {
  for (const name of FIXTURES) {
    const { model, tokenizer, config } = loadPretrained(join(ROOT, name))
    assert.ok(tokenizer, name)
    assert.is(tokenizer.eosTokenId, config.eos_token_id, name)
    const ids = tokenizer.encode('The model reads the text.', { addSpecialTokens: false })
    assert.ok(ids.length > 1 && ids.every((id) => id >= 0 && id < model.vocabSize), name)
    assert.is(tokenizer.decode(ids), 'The model reads the text.')
  }
  const { 'tokenizer.json': _, ...without } = files('gpt2-f32')
  assert.is(pretrainedFromFiles(without).tokenizer, null)
})

test('the classes and module paths are Hugging Face`s: state-dict keys are the checkpoint`s', () => {
  const header = (name: string, file = 'model.safetensors') =>
    Object.keys(parseSafetensors(readFileSync(join(ROOT, name, file))).tensors)
  const llama = loadPretrained(join(ROOT, 'llama-tied-f32')).model
  assert.ok(llama instanceof LlamaForCausalLM)
  // tied: the file stores the embeddings once; the model has the same Tensor under a second name, lm_head.weight
  assert.equal(Object.keys(llama.stateDict()).sort(), [...header('llama-tied-f32'), 'lm_head.weight'].sort())
  assert.ok(llama.stateDict()['lm_head.weight'] === llama.stateDict()['model.embed_tokens.weight'])
  assert.ok(llama.stateDict()['model.layers.1.self_attn.k_proj.weight'])
  const untied = loadPretrained(join(ROOT, 'gpt2-untied-bf16')).model
  assert.equal(Object.keys(untied.stateDict()).sort(), header('gpt2-untied-bf16').sort())
  const qwen = loadPretrained(join(ROOT, 'qwen2-f16')).model.stateDict()
  assert.ok(qwen['model.layers.0.self_attn.q_proj.bias'] && !qwen['model.layers.0.self_attn.o_proj.bias'])
  // the hub's gpt2 layout has no `transformer.` prefix and carries attn.bias buffers: same model, HF's full names
  const hub = loadPretrained(join(ROOT, 'gpt2-hub-f16')).model
  assert.ok(hub.stateDict()['transformer.h.1.attn.c_attn.weight'])
  assert.equal(hub.stateDict()['transformer.h.1.attn.c_attn.weight'].shape, [32, 96]) // Conv1D: (in, out)
})

test('loading draws nothing from the random stream and gives a model in eval mode', () => {
  manualSeed(123)
  const before = rngState()
  const { model } = loadPretrained(join(ROOT, 'gpt2-f32')) // resid_pdrop, embd_pdrop 0.1
  assert.equal(rngState(), before)
  assert.is(model.training, false)
  assert.ok([...model.namedModules()].every(([, m]) => !m.training))
  const idx = ids(reference('gpt2-f32').idx)
  const twice = [0, 1].map(() => noGrad(() => model.forward(idx)).data)
  assert.equal(twice[0], twice[1])
  model.train() // dropout only now
  const trained = [0, 1].map(() => noGrad(() => model.forward(idx)).data)
  assert.not.equal(trained[0], trained[1])
})

test('KV cache: each cached step gives the logits of a full forward, rotary positions offset (Llama, GPT-2)', () => {
  for (const name of ['llama-untied-bf16-sharded', 'mistral-bf16', 'gpt2-f32']) {
    const { model } = loadPretrained(join(ROOT, name))
    const idx = ids(reference(name).idx) // (2, 8)
    const full = noGrad(() => model.forward(idx)) // (2, 8, V)
    noGrad(() => {
      const caches = model.newCaches(2, 8)
      const first = model.head(model.hidden(slice(idx, 1, 0, 3), caches)) // positions 0-2 at once
      assertClose(first.data, slice(full, 1, 0, 3).data, { atol: 1e-5, what: `${name} prefix` })
      for (let t = 3; t < 8; t++) {
        const step = model.head(model.hidden(slice(idx, 1, t, t + 1), caches)) // position t alone
        assertClose(step.data, slice(full, 1, t, t + 1).data, { atol: 1e-5, what: `${name} position ${t}` })
      }
    })
  }
})

test('generation: cached = recomputed when sampling too, and past the context (cropped and rebuilt)', () => {
  for (const name of ['llama-tied-f32', 'gpt2-hub-f16']) {
    const { model } = loadPretrained(join(ROOT, name))
    const prompt = ids(reference(name).prompt)
    const n = model.contextSize + 5 // runs past n_positions / max_position_embeddings
    const cached = model.generate(prompt, n, { temperature: 0.8, topK: 20, seed: 7 })
    const recomputed = model.generate(prompt, n, { temperature: 0.8, topK: 20, seed: 7, useCache: false })
    assert.equal(cached.shape, [2, prompt.shape[1] + n])
    assert.equal(cached.data, recomputed.data, name)
  }
})

test('Mistral`s sliding window: a longer forward is refused naming it; generation keeps to the window', () => {
  const f = files('mistral-bf16')
  const config = { ...JSON.parse(new TextDecoder().decode(f['config.json'])), sliding_window: 6 }
  const { model } = pretrainedFromFiles({ ...f, 'config.json': new TextEncoder().encode(JSON.stringify(config)) })
  const idx = ids(reference('mistral-bf16').idx) // (2, 8)
  assert.throws(() => model.forward(idx), /^LlamaForCausalLM: 8 positions exceed sliding_window 6, which is not/)
  assert.is(model.contextSize, 6)
  const out = model.generate(slice(idx, 1, 0, 4), 5, { temperature: 0 })
  assert.equal(out.shape, [2, 9])
  assert.equal(out.data, model.generate(slice(idx, 1, 0, 4), 5, { temperature: 0, useCache: false }).data)
})

test('built from a config alone (transformers` init, seeded), a Llama and a GPT-2 overfit one batch', () => {
  for (const name of ['llama-untied-bf16-sharded', 'gpt2-f32']) {
    const parsed = readConfig('test', JSON.parse(readFileSync(join(ROOT, name, 'config.json'), 'utf8')))
    const make = () => {
      manualSeed(5)
      return parsed.arch === 'llama' ? new LlamaForCausalLM(parsed.config) : new GPT2LMHeadModel(parsed.config)
    }
    const model = make()
    const ref = reference(name)
    assert.equal(noGrad(() => model.forward(ids(ref.idx))).data, noGrad(() => make().forward(ids(ref.idx))).data)
    model.eval() // no dropout: the loss then falls step by step
    const opt = new AdamW(model.trainableParameters(), { lr: 3e-3, weightDecay: 0 })
    const losses: number[] = []
    for (let step = 0; step < 8; step++) {
      opt.zeroGrad()
      const loss = model.loss(ids(ref.idx), ids(ref.targets))
      loss.backward()
      opt.step()
      losses.push(loss.item())
    }
    assert.ok(losses[7] < losses[0] - 1, `${name}: ${losses.map((l) => l.toFixed(3)).join(' → ')}`)
  }
})

test('LoRA on q_proj and v_proj by Hugging Face names: loss and every A, B gradient equal PyTorch`s (PEFT math)', () => {
  for (const name of ['llama-tied-f32', 'qwen2-f16']) {
    const ref = reference(name)
    const { model } = loadPretrained(join(ROOT, name))
    const rank = Number(parseSafetensors(readFileSync(join(ROOT, name, 'reference.safetensors'))).metadata.lora_rank)
    applyLoRA(model, { targets: ['q_proj', 'v_proj'], rank, alpha: 2 * rank })
    const layers = loraAdapters(model)
    assert.equal(
      layers.map(([p]) => p),
      [
        'model.layers.0.self_attn.q_proj',
        'model.layers.0.self_attn.v_proj',
        'model.layers.1.self_attn.q_proj',
        'model.layers.1.self_attn.v_proj',
      ],
    )
    for (const [path, l] of layers) {
      l.loraA.data.set(ref[`base_model.model.${path}.lora_A.weight`].data)
      l.loraB.data.set(ref[`base_model.model.${path}.lora_B.weight`].data)
    }
    const loss = model.loss(ids(ref.idx), ids(ref.targets))
    assertClose([loss.item()], ref.lora_loss.data, { atol: 1e-5, what: `${name} LoRA loss` })
    loss.backward()
    for (const [path, l] of layers) {
      const key = `base_model.model.${path}`
      assertClose(l.loraA.grad!.data, ref[`${key}.lora_A.grad`].data, { atol: 1e-5, what: `${key}.lora_A grad` })
      assertClose(l.loraB.grad!.data, ref[`${key}.lora_B.grad`].data, { atol: 1e-5, what: `${key}.lora_B grad` })
    }
  }
})

test.run()
