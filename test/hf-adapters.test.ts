// Adapters on the Hugging Face models in the layouts other tools read, checked against those tools' rules without
// running them: make.py loads every folder under test/fixtures/hf-adapters the way PEFT does (its key renaming and
// target_modules rules, written independently in Python) and stores the logits of W + scale·B·A (transposed for
// Conv1D; DoRA rescaled) and the modules PEFT wraps. Tenny's exports must be byte for byte what those folders hold,
// and give the same logits and the same layers; adapters written in PEFT's layout from Python load into Tenny with
// PyTorch's logits. mlx-lm's names are checked against its tuner's rules (mlx_lm/tuner/utils.py).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readdirSync, readFileSync, writeFileSync, cpSync } from 'node:fs'
import { join } from 'node:path'
import { Tensor, noGrad } from '../src/tensor'
import { manualSeed } from '../src/random'
import { parseSafetensors, type StoredTensor } from '../src/formats/safetensors'
import { loadPretrained } from '../nn/files/pretrained-node'
import { pretrainedFromFiles } from '../nn/files/pretrained'
import { peftFiles, peftSelector } from '../nn/files/peft'
import { mlxFiles } from '../nn/files/mlx'
import { exportPEFT, importPEFT, exportMLX, importMLX } from '../nn/files/adapters-node'
import { applyLoRA, loraAdapters, loraLayers, linearLayers } from '../nn/lora-model'
import { GPT } from '../nn/gpt'
import { Module } from '../nn/module'
import { LlamaForCausalLM } from '../nn/llama'
import { GPT2LMHeadModel } from '../nn/gpt2'
import { EXPORT_CASES, adaptedModel, exportCase, HERE } from './fixtures/hf-adapters/export'
import { assertClose } from './helpers'
import { withDir } from './fixtures'

const MODELS = 'test/fixtures/hf'
const CASES = readdirSync(HERE).filter((f) => !f.includes('.'))
const read = (...parts: string[]) => new Uint8Array(readFileSync(join(...parts)))
const json = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes))

/** What make.py computed for a folder: the logits PEFT's merged model gives, and the modules PEFT wraps. */
function peftReference(name: string): { logits: StoredTensor; wrapped: string[]; missing: string[]; model: string } {
  const { tensors, metadata } = parseSafetensors(read(HERE, name, 'peft-reference.safetensors'))
  return {
    logits: tensors.logits,
    wrapped: JSON.parse(metadata.wrapped),
    missing: JSON.parse(metadata.missing),
    model: metadata.model,
  }
}

/** The fixed batch (2, 8) of a model fixture. */
function batch(model: string): Tensor {
  const idx = parseSafetensors(read(MODELS, model, 'reference.safetensors')).tensors.idx
  return new Tensor(Float32Array.from(idx.data), idx.shape)
}

test('the fixture folders: every exportPEFT case and the PEFT-written ones, each with its Python reference', () => {
  assert.equal(CASES.filter((c) => c.startsWith('export-')).sort(), Object.keys(EXPORT_CASES).sort())
  assert.ok(CASES.filter((c) => c.startsWith('import-')).length >= 3)
  for (const c of CASES) assert.ok(peftReference(c).wrapped.length > 0, c)
})

for (const name of Object.keys(EXPORT_CASES)) {
  test(`${name}: exportPEFT writes the committed files; PEFT's loading rules give Tenny's logits and layers`, () => {
    const files = exportCase(name)
    assert.equal(Object.keys(files).sort(), ['adapter_config.json', 'adapter_model.safetensors'])
    for (const [file, bytes] of Object.entries(files))
      assert.ok(Buffer.from(bytes).equals(read(HERE, name, file)), `${name}/${file} is stale: rerun make.py`)
    const ref = peftReference(name)
    const model = adaptedModel(name)
    // PEFT (as make.py applies its rules) wraps exactly the adapted layers, and every one gets its tensors
    assert.equal(
      [...ref.wrapped].sort(),
      loraAdapters(model)
        .map(([p]) => p)
        .sort(),
    )
    assert.equal(ref.missing, [])
    const logits = noGrad(() => model.forward(batch(ref.model)))
    assertClose(logits.data, ref.logits.data, { atol: 2e-5, rtol: 1e-5, what: `${name}: Tenny vs W + scale·B·A` })
    // and the folder loads back into a fresh model (importPEFT) with the same numbers
    const { model: fresh } = loadPretrained(join(MODELS, ref.model))
    importPEFT(fresh, join(HERE, name))
    assertClose(noGrad(() => fresh.forward(batch(ref.model))).data, ref.logits.data, { atol: 2e-5, rtol: 1e-5 })
  })
}

test('exportPEFT`s config for the Hugging Face models: PEFT`s field names and values', () => {
  const cfg = (name: string) => json(read(HERE, name, 'adapter_config.json'))
  const gpt2 = cfg('export-gpt2-c_attn')
  assert.equal(
    [gpt2.peft_type, gpt2.task_type, gpt2.base_model_name_or_path, gpt2.fan_in_fan_out, gpt2.target_modules],
    ['LORA', 'CAUSAL_LM', 'test/fixtures/hf/gpt2-f32', true, ['c_attn']],
  )
  assert.equal([gpt2.r, gpt2.lora_alpha, gpt2.bias, gpt2.use_rslora, gpt2.use_dora], [4, 8, 'none', false, false])
  const llama = cfg('export-llama-qv')
  assert.equal(
    [llama.fan_in_fan_out, llama.target_modules, llama.layers_to_transform],
    [false, ['q_proj', 'v_proj'], null],
  )
  const qwen = cfg('export-qwen2-dora-last')
  assert.equal([qwen.use_dora, qwen.use_rslora, qwen.layers_to_transform], [true, true, [1]])
  assert.equal(qwen.target_modules, ['o_proj', 'q_proj', 'v_proj'])
  const mixed = cfg('export-gpt2-mixed')
  assert.equal(mixed.target_modules, [
    'transformer.h.0.attn.c_proj',
    'transformer.h.0.mlp.c_fc',
    'transformer.h.1.attn.c_proj',
  ])
  assert.equal(
    [mixed.rank_pattern, mixed.alpha_pattern],
    [{ 'transformer.h.0.mlp.c_fc': 2 }, { 'transformer.h.0.mlp.c_fc': 8 }],
  )
  const keys = Object.keys(parseSafetensors(read(HERE, 'export-qwen2-dora-last', 'adapter_model.safetensors')).tensors)
  assert.equal(keys.sort(), [
    'base_model.model.model.layers.1.self_attn.o_proj.lora_A.weight',
    'base_model.model.model.layers.1.self_attn.o_proj.lora_B.weight',
    'base_model.model.model.layers.1.self_attn.o_proj.lora_magnitude_vector',
    'base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight',
    'base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight',
    'base_model.model.model.layers.1.self_attn.q_proj.lora_magnitude_vector',
    'base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight',
    'base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight',
    'base_model.model.model.layers.1.self_attn.v_proj.lora_magnitude_vector',
  ])
  const shapes = parseSafetensors(read(HERE, 'export-gpt2-c_attn', 'adapter_model.safetensors')).tensors
  assert.equal(shapes['base_model.model.transformer.h.0.attn.c_attn.lora_A.weight'].shape, [4, 32]) // (r, in)
  assert.equal(shapes['base_model.model.transformer.h.0.attn.c_attn.lora_B.weight'].shape, [96, 4]) // (out, r)
})

for (const name of CASES.filter((c) => c.startsWith('import-'))) {
  test(`${name}: a PEFT-layout adapter from Python loads with PyTorch's logits, on the layers PEFT wraps`, () => {
    const ref = peftReference(name)
    const { model } = loadPretrained(join(MODELS, ref.model))
    const { paths } = importPEFT(model, join(HERE, name))
    assert.equal([...paths].sort(), [...ref.wrapped].sort())
    const logits = noGrad(() => model.forward(batch(ref.model)))
    assertClose(logits.data, ref.logits.data, { atol: 2e-5, rtol: 1e-5, what: `${name}: Tenny vs PyTorch` })
  })
}

test('base_model_name_or_path: the folder loadPretrained read, a config`s _name_or_path from bytes, or as given', () =>
  withDir((dir) => {
    const { model } = loadPretrained(join(MODELS, 'llama-tied-f32'))
    applyLoRA(model, { rank: 2, targets: ['q_proj'] })
    exportPEFT(dir, model)
    assert.is(json(read(dir, 'adapter_config.json')).base_model_name_or_path, 'test/fixtures/hf/llama-tied-f32')
    exportPEFT(dir, model, { baseModel: 'HuggingFaceTB/SmolLM2-135M' })
    assert.is(json(read(dir, 'adapter_config.json')).base_model_name_or_path, 'HuggingFaceTB/SmolLM2-135M')
    const files = Object.fromEntries(readdirSync(join(MODELS, 'gpt2-f32')).map((f) => [f, read(MODELS, 'gpt2-f32', f)]))
    const config = { ...json(files['config.json']), _name_or_path: 'openai-community/gpt2' }
    const fromBytes = pretrainedFromFiles({ ...files, 'config.json': new TextEncoder().encode(JSON.stringify(config)) })
    applyLoRA(fromBytes.model, { rank: 2, targets: ['c_attn'] })
    assert.is(json(peftFiles(fromBytes.model)['adapter_config.json']).base_model_name_or_path, 'openai-community/gpt2')
    const plain = pretrainedFromFiles(files).model
    applyLoRA(plain, { rank: 2, targets: ['c_attn'] })
    assert.is(json(peftFiles(plain)['adapter_config.json']).base_model_name_or_path, null)
  }))

test('importPEFT refuses tensors for a layer the config`s target_modules do not select (PEFT would drop them)', () =>
  withDir((dir) => {
    cpSync(join(HERE, 'export-llama-qv'), dir, { recursive: true })
    const cfg = json(read(dir, 'adapter_config.json'))
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...cfg, target_modules: ['q_proj'] }))
    const { model } = loadPretrained(join(MODELS, 'llama-tied-f32'))
    assert.throws(
      () => importPEFT(model, dir),
      new RegExp(
        '^importPEFT: .*adapter_model\\.safetensors holds adapters for model\\.layers\\.0\\.self_attn\\.v_proj, ' +
          'model\\.layers\\.1\\.self_attn\\.v_proj, which adapter_config\\.json\'s target_modules \\["q_proj"\\] ' +
          '\\(layers_to_transform null\\) do not select: PEFT would not load them$',
      ),
    )
    assert.equal(loraLayers(model), [], 'nothing changed')
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...cfg, layers_to_transform: [0] }))
    assert.throws(
      () => importPEFT(model, dir),
      /model\.layers\.1\.self_attn\.q_proj, model\.layers\.1\.self_attn\.v_proj, which/,
    )
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...cfg, target_modules: '(q|v)_proj(' }))
    assert.throws(
      () => importPEFT(model, dir),
      /^importPEFT: adapter_config\.json: target_modules ".*" is not a regular expression/,
    )
    writeFileSync(
      join(dir, 'adapter_config.json'),
      JSON.stringify({ ...cfg, target_modules: '.*layers\\.[01]\\..*_proj' }),
    )
    assert.equal(importPEFT(model, dir).paths.length, 4, 'a string is a regular expression over the whole path')
  }))

test('PEFT`s all-linear selects every linear layer but the output head: lm_head, and lmHead on Tenny`s own GPT', () => {
  const gpt = new GPT({ vocabSize: 11, blockSize: 4, nLayer: 1, nHead: 2, nEmbd: 8, dropout: 0, bias: true })
  const paths = linearLayers(gpt).map(([p]) => p)
  assert.ok(paths.includes('lmHead'), paths.join(', '))
  const selects = peftSelector('importPEFT', { target_modules: 'all-linear' }, paths)!
  assert.equal(
    paths.filter(selects),
    paths.filter((p) => p.startsWith('blocks.')),
  )
  const { model: llama } = loadPretrained(join(MODELS, 'llama-untied-bf16-sharded'))
  const hf = linearLayers(llama).map(([p]) => p)
  assert.equal(hf.filter(peftSelector('importPEFT', { target_modules: 'ALL-LINEAR' }, hf)!), hf.slice(0, -1))
  assert.is(hf[hf.length - 1], 'lm_head')
})

test('adapters put into a loaded model (eval mode) run in eval mode: no dropout until training is asked for', () => {
  const { model } = loadPretrained(join(MODELS, 'llama-tied-f32'))
  applyLoRA(model, { targets: ['q_proj', 'v_proj'], rank: 4, dropout: 0.5 })
  for (const [, l] of loraAdapters(model)) l.loraB.data.fill(0.2)
  const idx = batch('llama-tied-f32')
  const twice = [0, 1].map(() => noGrad(() => model.forward(idx)).data)
  assert.equal(twice[0], twice[1])
  assert.ok(loraAdapters(model).every(([, l]) => !l.training))
  model.train() // LoRA's dropout only now
  assert.not.equal(noGrad(() => model.forward(idx)).data, noGrad(() => model.forward(idx)).data)
  const fresh = loadPretrained(join(MODELS, 'llama-tied-f32')).model
  importPEFT(fresh, join(HERE, 'import-llama-layers')) // lora_dropout 0.05: off, as after PEFT's from_pretrained
  assert.equal(noGrad(() => fresh.forward(idx)).data, noGrad(() => fresh.forward(idx)).data)
})

/** mlx-lm's linear_to_lora_layers: `keys` (paths in a block) wrapped in the last num_layers blocks, and at the top. */
function mlxWraps(
  blocks: [string, Module][],
  top: Module,
  cfg: { num_layers: number; lora_parameters: { keys: string[] } },
): string[] {
  const keys = new Set(cfg.lora_parameters.keys)
  const n = Math.max(cfg.num_layers, 0)
  const wrapped: string[] = []
  for (const [prefix, block] of blocks.slice(n === 0 ? 0 : -n))
    for (const [k] of block.namedModules()) if (keys.has(k)) wrapped.push(`${prefix}.${k}`)
  for (const [k] of top.namedModules()) if (keys.has(k)) wrapped.push(k)
  return wrapped
}

test('exportMLX on Hugging Face models: mlx-lm`s module paths (GPT-2`s transformer. is model.), keys, num_layers', () =>
  withDir((dir) => {
    manualSeed(9)
    const llama = loadPretrained(join(MODELS, 'llama-tied-f32')).model as LlamaForCausalLM
    applyLoRA(llama, { targets: ['q_proj', 'v_proj'], layers: [1], rank: 2, scale: 20 })
    for (const [, l] of loraAdapters(llama)) l.loraB.data.fill(0.1)
    const files = mlxFiles(llama)
    const cfg = json(files['adapter_config.json'])
    assert.equal(
      [cfg.fine_tune_type, cfg.num_layers, cfg.lora_parameters],
      ['lora', 1, { rank: 2, scale: 20, dropout: 0, keys: ['self_attn.q_proj', 'self_attn.v_proj'] }],
    )
    const arrays = parseSafetensors(files['adapters.safetensors']).tensors
    assert.equal(Object.keys(arrays).sort(), [
      'model.layers.1.self_attn.q_proj.lora_a',
      'model.layers.1.self_attn.q_proj.lora_b',
      'model.layers.1.self_attn.v_proj.lora_a',
      'model.layers.1.self_attn.v_proj.lora_b',
    ])
    assert.equal(arrays['model.layers.1.self_attn.q_proj.lora_a'].shape, [32, 2]) // (in, r)
    const blocks = llama.model.layers.map((b, i): [string, Module] => [`model.layers.${i}`, b])
    assert.equal(
      mlxWraps(blocks, llama, cfg).sort(),
      loraAdapters(llama)
        .map(([p]) => p)
        .sort(),
    )

    const gpt2 = loadPretrained(join(MODELS, 'gpt2-f32')).model as GPT2LMHeadModel
    applyLoRA(gpt2, { targets: ['c_attn', 'c_fc'], layers: [0], rank: 2, alpha: 4, useDora: true })
    for (const [, l] of loraAdapters(gpt2)) l.loraB.data.fill(0.05)
    exportMLX(join(dir, 'adapters.safetensors'), gpt2)
    const g = json(read(dir, 'adapter_config.json'))
    assert.equal([g.fine_tune_type, g.num_layers, g.lora_parameters.keys], ['dora', 2, ['attn.c_attn', 'mlp.c_fc']])
    assert.equal(Object.keys(parseSafetensors(read(dir, 'adapters.safetensors')).tensors).sort(), [
      'model.h.0.attn.c_attn.lora_a',
      'model.h.0.attn.c_attn.lora_b',
      'model.h.0.attn.c_attn.m',
      'model.h.0.mlp.c_fc.lora_a',
      'model.h.0.mlp.c_fc.lora_b',
      'model.h.0.mlp.c_fc.m',
    ])
    // mlx-lm wraps block 1's layers too (num_layers counts from the last block); with B = 0 they change nothing
    const gblocks = gpt2.transformer.h.map((b, i): [string, Module] => [`transformer.h.${i}`, b])
    assert.equal(mlxWraps(gblocks, gpt2, g).length, 4)
    const { model: back } = loadPretrained(join(MODELS, 'gpt2-f32'))
    importMLX(back, join(dir, 'adapters.safetensors'))
    const idx = batch('gpt2-f32')
    assert.equal(noGrad(() => back.forward(idx)).data, noGrad(() => gpt2.forward(idx)).data)
    // the tied head is wte's as_linear in mlx-lm: no module to put an adapter on
    const { model: head } = loadPretrained(join(MODELS, 'gpt2-f32'))
    applyLoRA(head, { targets: ['lm_head'], rank: 2 })
    assert.throws(
      () => mlxFiles(head),
      /^exportMLX: mlx-lm's GPT2LMHeadModel with tied embeddings has no lm_head module/,
    )
  }))

test.run()
