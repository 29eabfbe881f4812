// Autograd in ten lines, micrograd-style: build an expression out of scalars, call backward(), and every input
// holds d(output)/d(input). This is the very expression of micrograd's README, so the numbers can be compared.
//   npx tsx examples/autograd.ts
import { tensor, add, sub, mul, div, neg, pow, relu, type Tensor } from '../src/index'

const a = tensor(-4, { requiresGrad: true })
const b = tensor(2, { requiresGrad: true })
let c = add(a, b) // c = a + b
let d = add(mul(a, b), pow(b, 3)) // d = a·b + b³
c = add(c, add(c, 1)) // c += c + 1
c = add(c, add(add(1, c), neg(a))) // c += 1 + c + (−a)
d = add(d, add(mul(d, 2), relu(add(b, a)))) // d += 2d + relu(b + a)
d = add(d, add(mul(3, d), relu(sub(b, a)))) // d += 3d + relu(b − a)
const e = sub(c, d) // e = c − d
const f = pow(e, 2) // f = e²
let g = div(f, 2) // g = f / 2
g = add(g, div(10, f)) // g += 10 / f
g.backward() // one reverse sweep fills a.grad and b.grad

const show = (t: Tensor) => t.item().toFixed(4)
console.log(`g        = ${show(g)}   (micrograd: 24.7041)`)
console.log(`dg/da    = ${show(a.grad!)}  (micrograd: 138.8338)`)
console.log(`dg/db    = ${show(b.grad!)}  (micrograd: 645.5773)`)

// The same check by finite differences: nudge a, see how far g moves. No autograd involved.
const gOf = (av: number, bv: number): number => {
  let c = av + bv,
    d = av * bv + bv ** 3
  c += c + 1
  c += 1 + c - av
  d += 2 * d + Math.max(bv + av, 0)
  d += 3 * d + Math.max(bv - av, 0)
  const f = (c - d) ** 2
  return f / 2 + 10 / f
}
const h = 1e-6
const [dgda, dgdb] = [(gOf(-4 + h, 2) - gOf(-4 - h, 2)) / (2 * h), (gOf(-4, 2 + h) - gOf(-4, 2 - h)) / (2 * h)]
console.log(`numeric  dg/da = ${dgda.toFixed(4)}, dg/db = ${dgdb.toFixed(4)}`)
