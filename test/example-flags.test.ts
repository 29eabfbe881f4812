// The example fine-tune's other flags end to end, as child processes with tiny settings (a few steps on a few
// examples): QLoRA with --quantize then `npm run fuse`, --full, --resume-adapter-file, `npm run generate` with
// --adapter-strength 0, Ctrl-C sent to `npm run example` as a terminal sends it, and a damaged adapter file.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, existsSync, copyFileSync, rmSync } from 'node:fs'
import { tmpdir, constants } from 'node:os'
import { join, relative } from 'node:path'
import { nn } from '../src/node'
import { loadBase } from '../examples/lib/checkpoint'
import { root, base, example, generate, fuse, exampleEnv, failsClearly, smallData, type Run } from './example-helpers'

const dir = mkdtempSync(join(tmpdir(), 'tenny-flags-'))
const PROMPT = 'Q: What is relu in tenny?\nA: ' // as the example prints it (the flag takes \n literally)

const data = smallData(join(dir, 'data'), { train: 6, valid: 3, test: 3 })

/** Tiny training: 3 steps of 2 examples, validation only at the end, short answers. */
const tiny = (iters = 3) => [
  '--train',
  '--iters',
  String(iters),
  '--batch-size',
  '2',
  '--steps-per-eval',
  '1000',
  '--max-tokens',
  '5',
  '--data',
  data,
]

/** Exit code 0, or a failure that shows what the example printed. */
function succeeds(run: Run): void {
  assert.is(run.status, 0, `exit code ${run.status}\nstderr: ${run.stderr}\nstdout tail: ${run.stdout.slice(-2000)}`)
}

/** The answer printed under `header` (the continuation of PROMPT, up to the newline). */
function answerUnder(stdout: string, header: string): string {
  const at = stdout.indexOf(`\n${header}\n${PROMPT}`)
  assert.ok(at >= 0, `"${header}" with the prompt in:\n${stdout}`)
  return stdout.slice(at + header.length + PROMPT.length + 2).split('\n')[0]
}

/** Whether any weight of two models of the same shapes differs. */
function differs(a: ReturnType<typeof loadBase>['model'], b: ReturnType<typeof loadBase>['model']): boolean {
  const pb = b.parameters()
  return a.parameters().some((p, i) => p.data.some((x, j) => x !== pb[i].data[j]))
}

const runRecord = (out: string) => JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'))

/** The adapters in `file`, loaded onto a fresh base: every LoRA layer's A and B, by path. */
function adapterWeights(file: string): Map<string, Float32Array> {
  const { model } = loadBase(base)
  nn.loadAdapters(model, file)
  const out = new Map<string, Float32Array>()
  for (const [path, l] of nn.loraAdapters(model)) {
    out.set(`${path}.A`, Float32Array.from(l.loraA.data))
    out.set(`${path}.B`, Float32Array.from(l.loraB.data))
  }
  return out
}

test('--quantize 4 trains QLoRA; npm run fuse writes fused.safetensors and reports the requantization', () => {
  const out = join(dir, 'q4')
  const run = example(...tiny(), '--quantize', '4', '--adapter-path', out)
  succeeds(run)
  assert.match(run.stdout, /Quantized \d+ Linear layers to 4 bits/)
  const fusing = fuse('--adapter-path', out, '--data', data)
  succeeds(fusing)
  assert.match(fusing.stdout, /Quantized \d+ Linear layers to 4 bits/) // the bits run.json records
  assert.match(
    fusing.stdout,
    /Fused \d+ layers by requantizing W \+ dW: \d+(\.\d)?% of codes changed,\n {2}\d+% of dW retained on average/,
  )
  assert.match(fusing.stdout, /Test loss of the requantized fused model: \d+\.\d{3}/)
  for (const file of ['adapters.safetensors', 'adapter_config.json', 'fused.safetensors'])
    assert.ok(existsSync(join(out, file)), file)
  assert.is(runRecord(out).training.quantize, 4)
  // the fused model is a float checkpoint of the base's shape (the codes dequantized), not the base itself
  const fused = loadBase(join(out, 'fused.safetensors')).model,
    orig = loadBase(base).model
  assert.is(fused.numParameters(), orig.numParameters())
  assert.ok(differs(fused, orig), 'some fused weight differs from the base')
  // and it answers as a base of its own, with no adapter file
  const ask = generate(
    '--base',
    join(out, 'fused.safetensors'),
    '--no-adapter',
    '--prompt',
    'Q: What is relu in tenny?\\nA: ',
    '--max-tokens',
    '5',
  )
  succeeds(ask)
  assert.match(ask.stdout, /Base model \(.*fused\.safetensors\):/)
  assert.not.match(ask.stdout, /Adapted model/)
  failsClearly(
    example('--no-adapter', '--train'),
    /--no-adapter tests the base alone: it cannot be combined with --train/,
  )
  failsClearly(example(...tiny(), '--fuse'), /--fuse is a script of its own now: npm run fuse -- --adapter-path DIR/)
  failsClearly(fuse('--adapter-path', out), /fused\.safetensors exists already: give --save-path FILE/)
})

test('--quantize 8 works too; --quantize 5 is one clear error', () => {
  const out = join(dir, 'q8')
  const run = example(...tiny(), '--quantize', '8', '--adapter-path', out)
  succeeds(run)
  assert.match(run.stdout, /Quantized \d+ Linear layers to 8 bits/)
  assert.ok(existsSync(join(out, 'adapters.safetensors')))
  assert.is(runRecord(out).training.quantize, 8)
  failsClearly(
    example(...tiny(), '--quantize', '5', '--adapter-path', join(dir, 'q5')),
    /--quantize must be 4 or 8, got 5/,
  )
  assert.not.ok(existsSync(join(dir, 'q5')), 'nothing written for --quantize 5')
})

test('--full writes full-model.safetensors and no adapters; --full --quantize 4 is one clear error', () => {
  const out = join(dir, 'full')
  // 5 steps: after 3 on these 6 lines the validation loss may not have fallen yet, and then step 0 (the base) is kept
  const run = example(...tiny(5), '--full', '--adapter-path', out)
  succeeds(run)
  assert.match(run.stdout, /trainable params: ([\d,]+) \|\| all params: \1 \|\| trainable%: 100\.0000/)
  assert.match(run.stdout, /the weights kept are step \d+'s/) // not "the adapters"
  assert.not.match(run.stdout, /adapters kept/)
  assert.ok(existsSync(join(out, 'full-model.safetensors')), 'full-model.safetensors')
  assert.not.ok(existsSync(join(out, 'adapters.safetensors')), 'no adapters.safetensors after --full')
  assert.not.ok(existsSync(join(out, 'adapter_config.json')), 'no adapter_config.json after --full')
  const log = runRecord(out)
  assert.ok(log.final.train < log.before.train, `train loss ${log.before.train} → ${log.final.train}`)
  // the saved model has the base's shapes and weights that moved
  const tuned = loadBase(join(out, 'full-model.safetensors')).model,
    orig = loadBase(base).model
  assert.is(tuned.numParameters(), orig.numParameters())
  assert.ok(differs(tuned, orig), 'some weight of the fully fine-tuned model differs from the base')

  failsClearly(
    example(...tiny(), '--full', '--quantize', '4', '--adapter-path', join(dir, 'full-q4')),
    /--full .*cannot be combined with --quantize/,
  )
  assert.not.ok(existsSync(join(dir, 'full-q4')), 'nothing written for --full --quantize 4')
})

const first = join(dir, 'first', 'adapters.safetensors'),
  resumed = join(dir, 'resumed', 'adapters.safetensors')
const firstRun = join(dir, 'first'),
  resumedRun = join(dir, 'resumed')

test('--resume-adapter-file continues from saved adapters into another file', () => {
  const a = example(...tiny(), '--adapter-path', firstRun)
  succeeds(a)
  assert.not.match(a.stdout, /Resuming from/)
  const b = example(...tiny(), '--resume-adapter-file', first, '--adapter-path', resumedRun)
  succeeds(b)
  assert.match(b.stdout, /Resuming from \S*first\/adapters\.safetensors \(rank 32, scale 2\)/)
  assert.ok(existsSync(resumed) && existsSync(join(dir, 'resumed', 'adapter_config.json')))

  const wa = adapterWeights(first),
    wb = adapterWeights(resumed)
  assert.equal([...wb.keys()], [...wa.keys()])
  assert.ok(
    [...wa].some(([k, x]) => x.some((v, i) => v !== wb.get(k)![i])),
    'the resumed adapters differ from the first ones',
  )
  // Same seed, same batches: starting from trained adapters, the resumed run's 3 steps have a lower train loss
  // than the first run's 3 steps from B = 0. A resume that silently started afresh would repeat them exactly.
  const la = runRecord(firstRun).train,
    lb = runRecord(resumedRun).train
  assert.ok(lb[1][1] < la[1][1], `mean train loss over steps 1-3: first ${la[1][1]}, resumed ${lb[1][1]}`)
})

test('--use-dora trains DoRA adapters that load back as DoRA; npm run fuse fuses that run into a base of its own', () => {
  const out = join(dir, 'dora')
  const run = example(...tiny(), '--use-dora', '--adapter-path', out)
  succeeds(run)
  assert.match(run.stdout, /DoRA 'default': rank 32, alpha 64, scale 2 \(alpha\/rank\), strength 1, active: 13 layers/)
  assert.is(runRecord(out).training.useDora, true)
  const { model } = loadBase(base)
  nn.loadAdapters(model, join(out, 'adapters.safetensors'))
  assert.ok(
    nn.loraLayers(model).every(([, l]) => l instanceof nn.DoRALinear),
    'every adapted layer is a DoRALinear',
  )
  const fused = fuse('--adapter-path', out, '--data', data)
  succeeds(fused)
  assert.ok(existsSync(join(out, 'fused.safetensors')))
  // a float fuse is exact: the fused model's test loss is the adapted one's
  const m = /Test loss (\d+\.\d+) with the adapters, (\d+\.\d+) fused/.exec(fused.stdout)
  assert.ok(m && m[1] === m[2], fused.stdout)
  // the fused model answers as the adapters did (greedy, same prompt): DoRA's rescaled rows folded into W exactly
  const ask = ['--prompt', 'Q: What is relu in tenny?\\nA: ', '--max-tokens', '12']
  const adapted = answerUnder(generate(...ask, '--adapter-path', out).stdout, 'Adapted model:')
  const merged = generate(...ask, '--base', join(out, 'fused.safetensors'), '--no-adapter')
  succeeds(merged)
  assert.is(answerUnder(merged.stdout, `Base model (${relative(root, join(out, 'fused.safetensors'))}):`), adapted)
})

test('npm run generate -- --adapter-strength 0 answers as the base does', () => {
  const args = ['--prompt', 'Q: What is relu in tenny?\\nA: ', '--max-tokens', '12', '--adapter-path', resumedRun]
  const zero = generate(...args, '--adapter-strength', '0')
  succeeds(zero)
  assert.match(zero.stdout, /Adapters: \S*resumed\n/)
  assert.match(zero.stdout, /LoRA 'default': rank 32, alpha 64, scale 2 \(alpha\/rank\), strength 0, active: 13 layers/) // the strength used
  const baseAnswer = answerUnder(zero.stdout, 'Base model (knows English, not Tenny):')
  assert.is(answerUnder(zero.stdout, 'Adapted model (adapter strength 0):'), baseAnswer)
  // strength 1 (the default) runs and prints the plain header; its answer may or may not differ from the base
  const one = generate(...args)
  succeeds(one)
  assert.is(answerUnder(one.stdout, 'Base model (knows English, not Tenny):'), baseAnswer)
  answerUnder(one.stdout, 'Adapted model:')
})

test('Ctrl-C sent to the whole process group of `npm run example` stops, saves adapters that load, and exits with 130', async () => {
  const out = join(dir, 'interrupted'),
    file = join(out, 'adapters.safetensors')
  const iters = 500 // progress every 50 steps; SIGINT at the first progress line, far from the end
  // its own process group (setsid), signalled as a terminal signals its foreground group: npm, sh and node all get it
  // batches of 6 make a step (~0.1 s) longer than tsx's CLI waits for a child after a SIGINT before killing it
  const child = spawn(
    'npm',
    ['run', '-s', 'example', '--', ...tiny(iters), '--batch-size', '6', '--adapter-path', out],
    { cwd: root, env: exampleEnv(), detached: true },
  )
  let stdout = '',
    stderr = '',
    sent = false
  const status = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      process.kill(-child.pid!, 'SIGKILL')
      reject(new Error(`no progress within 60 s:\n${stdout}\n${stderr}`))
    }, 60_000)
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      stdout += s
      if (!sent && /^train \d+\/\d+ \|/m.test(stdout)) {
        sent = true
        process.kill(-child.pid!, 'SIGINT')
      }
    })
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s
    })
    child.on('error', reject)
    // npm waits for the script, then ends itself by the SIGINT it got: a shell reports 128 + 2 either way
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve(code ?? 128 + constants.signals[signal!])
    })
  })
  assert.ok(sent, `training progress was seen:\n${stdout}\n${stderr}`)
  assert.is(status, 130, `exit code ${status}\nstderr: ${stderr}\nstdout tail: ${stdout.slice(-2000)}`)
  const m = /Interrupted after (\d+) steps/.exec(stdout)
  assert.ok(m, `"Interrupted after N steps" in:\n${stdout}`)
  const steps = Number(m![1])
  assert.ok(steps >= 50 && steps < iters, `stopped after ${steps} of ${iters} steps`)
  assert.ok(existsSync(file), 'adapters.safetensors')
  assert.is(runRecord(out).training.steps, steps)
  adapterWeights(file) // they load onto the base
  const answer = generate('--prompt', 'Q: x', '--max-tokens', '5', '--adapter-path', out)
  succeeds(answer)
  assert.match(answer.stdout, /Adapters: \S*interrupted\n/)
})

test('a damaged adapter file is one clear error', () => {
  const good = readFileSync(first)
  const damaged: [string, Buffer][] = [
    ['truncated', good.subarray(0, 5000)],
    ['garbled-header', Buffer.concat([good.subarray(0, 8), Buffer.from('#'.repeat(32)), good.subarray(40)])],
    ['empty', Buffer.alloc(0)],
  ]
  for (const [name, bytes] of damaged) {
    const file = join(dir, name, 'adapters.safetensors')
    mkdirSync(join(dir, name), { recursive: true })
    copyFileSync(join(dir, 'first', 'adapter_config.json'), join(dir, name, 'adapter_config.json')) // only the weights are bad
    writeFileSync(file, bytes)
    failsClearly(
      generate('--prompt', 'Q: x', '--max-tokens', '5', '--adapter-path', join(dir, name)),
      /adapters\.safetensors/,
    )
  }
})

test.after(() => rmSync(dir, { recursive: true, force: true }))

test.run()
