// Rows (1): square float32 matmul, A·B and A·Bᵀ, on every engine column, in two modes: the product alone
// (operands already inside the engine) and the whole trip (make tensors from Float32Arrays, multiply,
// read the result back into JS). Every column's result is checked against Tenny's CPU kernel first.
import * as tf from '@tensorflow/tfjs'
import { K } from '../src/kernels'
import { tensor } from '../src/tensor'
import { matmul, linear } from '../ops/matmul'
import { useTf, type TfBackend } from './tfjs-gpt'
import { timeCall, uniformData, type Row } from './timing'
import type { TennyBackends } from './tenny-backends'
import { jaxMatmulCell } from './suite-jaxjs'

export type MatmulOptions = {
  quick: boolean
  sizes: number[]
  tenny: TennyBackends
  tfBackends: TfBackend[]
  jaxjs: boolean
}

type Case = { n: number; transB: boolean; mode: 'compute' | 'trip' }

function rowName(c: Case): string {
  return `matmul ${c.n}×${c.n} ${c.transB ? 'A·Bᵀ' : 'A·B'}`
}

function maxAbsDiff(a: Float32Array | Uint8Array | Int32Array, b: Float32Array): number {
  let m = 0
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]))
  return m
}

/** A tolerance for float32 products with K-term sums of values in [-1, 1] (measured on the dev machine: 8e-5 at 1024). */
function tolerance(n: number): number {
  return 2e-7 * n * Math.sqrt(n)
}

export async function matmulRows({ quick, sizes, tenny, tfBackends, jaxjs }: MatmulOptions): Promise<Row[]> {
  const cases: Case[] = sizes.flatMap((n) =>
    [false, true].flatMap((transB) => (['compute', 'trip'] as const).map((mode) => ({ n, transB, mode }))),
  )
  const rows = new Map<Case, Row>()
  for (const c of cases) {
    rows.set(c, {
      section: c.mode === 'compute' ? 'matmul, product alone' : 'matmul, + tensor creation and read-back',
      name: rowName(c),
      unit: 'ms',
      cells: {},
      notes: [],
      flops: 2 * c.n ** 3,
    })
  }
  const data = new Map(sizes.map((n) => [n, { a: uniformData(n * n, n), b: uniformData(n * n, n + 1) }]))
  const reference = new Map(
    sizes.flatMap((n) =>
      [false, true].map((transB) => {
        const { a, b } = data.get(n)!
        return [`${n}${transB}`, K.matmul(a, b, n, n, n, { transB })] as const
      }),
    ),
  )
  const check = (c: Case, column: string, out: Float32Array | Uint8Array | Int32Array) => {
    const err = maxAbsDiff(out, reference.get(`${c.n}${c.transB}`)!)
    if (err > tolerance(c.n))
      rows.get(c)!.notes.push(`${column} differs from Tenny's CPU kernel by ${err.toExponential(1)}`)
  }

  for (const backend of tenny.names) {
    await tenny.use(backend)
    const column = `Tenny ${backend}`
    for (const c of cases) {
      const { a, b } = data.get(c.n)!
      const { n, transB } = c
      if (c.mode === 'compute') {
        check(c, column, K.matmul(a, b, n, n, n, { transB }))
        rows.get(c)!.cells[column] = timeCall(
          () => {
            K.matmul(a, b, n, n, n, { transB })
          },
          { quick },
        )
      } else {
        // tensor() wraps the array; linear(x, w) = x·wᵀ is Tenny's A·Bᵀ without a transposed copy
        const trip = () => {
          const ta = tensor(a, [n, n]),
            tb = tensor(b, [n, n])
          return (transB ? linear(ta, tb) : matmul(ta, tb)).data
        }
        check(c, column, trip())
        rows.get(c)!.cells[column] = timeCall(
          () => {
            trip()
          },
          { quick },
        )
      }
    }
  }
  await tenny.use('cpu')

  for (const backend of tfBackends) {
    await useTf(backend)
    const column = `tfjs ${backend}`
    for (const c of cases) {
      const { a, b } = data.get(c.n)!
      const { n, transB } = c
      if (c.mode === 'compute') {
        const ta = tf.tensor2d(a, [n, n]),
          tb = tf.tensor2d(b, [n, n])
        const out = tf.matMul(ta, tb, false, transB)
        check(c, column, out.dataSync())
        out.dispose()
        rows.get(c)!.cells[column] = timeCall(
          () => {
            tf.matMul(ta, tb, false, transB).dispose()
          },
          { quick },
        )
        ta.dispose()
        tb.dispose()
      } else {
        const trip = () => {
          const ta = tf.tensor2d(a, [n, n]),
            tb = tf.tensor2d(b, [n, n])
          const out = tf.matMul(ta, tb, false, transB)
          const values = out.dataSync()
          tf.dispose([ta, tb, out])
          return values
        }
        check(c, column, trip())
        rows.get(c)!.cells[column] = timeCall(
          () => {
            trip()
          },
          { quick },
        )
      }
    }
  }
  if (jaxjs) {
    for (const c of cases.filter((c) => c.mode === 'compute')) {
      const { a, b } = data.get(c.n)!
      rows.get(c)!.cells['jax-js'] = jaxMatmulCell(a, b, c.n, c.transB, quick, (out) => check(c, 'jax-js', out))
    }
  }
  const order = (r: Row) => (r.section.includes('read-back') ? 1 : 0)
  return [...rows.values()].sort((a, b) => order(a) - order(b)) // stable: sizes stay in order within a section
}
