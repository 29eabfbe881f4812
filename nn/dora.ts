// DoRA (Liu et al., 2024): split W into a magnitude per output row and a direction, and train the magnitude m
// plus a LoRA update of the direction: W' = m ⊙ (W + s·B·A) / ‖W + s·B·A‖_row. m starts at W's row norms, so a
// fresh layer computes what its base did. PEFT calls it use_dora (key lora_magnitude_vector), mlx-lm DoRALinear (m).
import { Tensor, noGrad } from '../src/tensor.js'
import { add, div, mul, sqrt, sub } from '../ops/elementwise.js'
import { sum } from '../ops/reduce.js'
import { linear, matmul } from '../ops/matmul.js'
import { reshape } from '../ops/movement.js'
import { dropout } from '../ops/nn.js'
import { typeName } from './module.js'
import { Linear } from './linear.js'
import { QuantizedLinear } from './quantized.js'
import { LoRALinear, type BaseLayer, type LoRAOptions } from './lora.js'

/** ‖V‖ of each row of V (out, in) → (out). */
function rowNorms(V: Tensor): Tensor {
  return sqrt(sum(mul(V, V), 1))
}

/** y = (m / ‖W + s·B·A‖_row) ⊙ (x·Wᵀ + s·x·Aᵀ·Bᵀ) + b.   x: (..., in)   W: (out, in)   m: (out)   y: (..., out) */
export class DoRALinear extends LoRALinear {
  magnitude: Tensor // (out): m, trained with A and B

  constructor(base: BaseLayer, options: LoRAOptions = {}) {
    if (!(base instanceof Linear || base instanceof QuantizedLinear)) {
      throw new Error(
        `DoRALinear: base must be a Linear or QuantizedLinear (DoRA rescales W's rows, so it goes first on a layer), got ${typeName(base)}`,
      )
    }
    super(base, options)
    this.magnitude = noGrad(() => rowNorms(this.baseLinear().weight)) // (out)
    this.magnitude.requiresGrad = true
  }

  static override fromLinear(base: BaseLayer, options: LoRAOptions = {}): DoRALinear {
    return new DoRALinear(base, options)
  }

  override forward(x: Tensor): Tensor {
    if (this.strength === 0) return this.base.forward(x)
    const { weight: W, bias } = this.baseLinear() // W (out, in), frozen; dequantized for a quantized base
    const y = linear(x, W) // (..., out): the base without its bias
    const h = linear(mul(linear(dropout(x, this.dropout, this.training), this.loraA), this.scale), this.loraB) // (..., out)
    // NOTE: the norm is a constant of the graph, as in PEFT and mlx-lm. DoRA's section 4.3 treats ‖W + s·B·A‖ as a
    // constant to cut training memory (its gradient would keep the whole (out, in) sum in the graph); the paper
    // finds the accuracy difference negligible. So m gets the exact gradient, A and B the one through h only.
    const norm = noGrad(() => rowNorms(add(W, mul(matmul(this.loraB, this.loraA), this.scale)))) // (out)
    let out = mul(add(y, h), div(this.magnitude, norm)) // (..., out) ⊙ (out)
    if (this.strength !== 1) out = add(mul(out, this.strength), mul(y, 1 - this.strength)) // y + t·(DoRA − y), mixing
    return bias ? add(out, bias) : out
  }

  /** ΔW = strength·(W' − W), W' = m ⊙ (W + s·B·A) / ‖W + s·B·A‖_row: what merge() adds to the base. */
  override deltaWeight(): Tensor {
    return noGrad(() => {
      const W = this.baseLinear().weight
      const V = add(W, mul(matmul(this.loraB, this.loraA), this.scale)) // (out, in)
      const merged = mul(V, reshape(div(this.magnitude, rowNorms(V)), [this.outFeatures, 1])) // (out, in): rows of length m
      return mul(sub(merged, W), this.strength)
    })
  }
}
