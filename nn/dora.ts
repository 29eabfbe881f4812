// DoRA (Liu et al., 2024): split W into a magnitude per output row and a direction, and train the magnitude m
// plus a LoRA update of the direction: W' = m ⊙ (W + s·B·A) / ‖W + s·B·A‖_row. m starts at W's row norms, so
// a
// fresh layer computes what its base did. PEFT calls it use_dora (key lora_magnitude_vector), mlx-lm DoRALinear (m).
import { Tensor, noGrad } from '../src/tensor.js'
import { add, div, mul, sqrt, sub } from '../ops/elementwise.js'
import { sum } from '../ops/reduce.js'
import { linear } from '../ops/matmul.js'
import { reshape } from '../ops/movement.js'
import { LoRALinear, asLinear, type BaseLayer, type LoRAOptions } from './lora.js'

/** ‖V‖ of each row of V (out, in) → (out). */
function rowNorms(V: Tensor): Tensor {
  return sqrt(sum(mul(V, V), 1))
}

/**
 * y = (m / ‖W + s·B·A‖_row) ⊙ (x·Wᵀ + s·x·Aᵀ·Bᵀ) + b.   x: (..., in)   W: (out, in)   m: (out)   y:
 * (..., out)
 */
export class DoRALinear extends LoRALinear {
  magnitude: Tensor // (out): m, trained with A and B

  constructor(base: BaseLayer, options: LoRAOptions = {}) {
    super(base, options)
    this.magnitude = noGrad(() => rowNorms(asLinear(this.base).weight)) // (out)
    this.magnitude.requiresGrad = true
  }

  static override fromLinear(base: BaseLayer, options: LoRAOptions = {}): DoRALinear {
    return new DoRALinear(base, options)
  }

  /** V = W + s·B·A (out, in): the adapted weight, whose rows DoRA rescales to length m. */
  private adapted(W: Tensor): Tensor {
    return noGrad(() => add(W, super.deltaWeight()))
  }

  override forward(x: Tensor): Tensor {
    const { weight: W, bias } = asLinear(this.base) // W (out, in), frozen: dequantized or transposed for other bases
    // (..., out): x·Wᵀ + s·x·Aᵀ·Bᵀ (LoRA's adapter path); bias last
    const y = add(linear(x, W), this.update(x))
    // NOTE: the norm is a constant of the graph, as in PEFT and mlx-lm. DoRA's section 4.3 treats ‖W + s·B·A‖ as
    // a
    // constant to cut training memory (its gradient would keep the whole (out, in) sum in the graph); the paper
    // finds the accuracy difference negligible. So m gets the exact gradient, A and B the one through y only.
    const out = mul(y, div(this.magnitude, rowNorms(this.adapted(W)))) // (..., out) ⊙ (out)
    return bias ? add(out, bias) : out
  }

  /** ΔW = W' − W, W' = m ⊙ V / ‖V‖_row with V = W + s·B·A: what merge() adds to the base. */
  override deltaWeight(): Tensor {
    const W = asLinear(this.base).weight
    const V = this.adapted(W) // (out, in)
    return noGrad(() => sub(mul(V, reshape(div(this.magnitude, rowNorms(V)), [this.outFeatures, 1])), W)) // (out, in)
  }
}
