// Adapter files in the browser: the bytes Tenny's byte-level functions write for each layout, and, for files
// dropped on the page, which layout they are (read from adapter_config.json) and the loader that validates them.
// The loaders are the ones Node's path functions use, so a bad file gets the same one-line error.
import { nn } from 'tenny'
import { LAYOUT_NAMES, type Layout } from './messages'

const CONFIG = 'adapter_config.json'

/** The trained adapter as files, in one of the three layouts. */
export function adapterFilesOf(model: nn.GPT, layout: Layout): Record<string, Uint8Array> {
  if (layout === 'peft') return nn.peftFiles(model, { baseModel: 'tenny-tiny-gpt' })
  if (layout === 'mlx') return nn.mlxFiles(model)
  return nn.adapterFiles(model)
}

/** Load dropped files into `model` by the layout their adapter_config.json names; returns what was loaded, in words. */
export function loadAdapterFilesInto(model: nn.GPT, files: Record<string, Uint8Array>): string {
  const names = Object.keys(files).join(', ')
  const layout = layoutOf(files)
  if (layout === 'peft') nn.importPEFTFiles(model, files)
  else if (layout === 'mlx') nn.importMLXFiles(model, files)
  else nn.loadAdapterFiles(model, files) // also the loader whose error names what is missing when there is no config
  return `${LAYOUT_NAMES[layout]} (${names})`
}

/** Which layout's config this is: Tenny writes format 'tenny-lora', PEFT peft_type, mlx-lm lora_parameters. */
function layoutOf(files: Record<string, Uint8Array>): Layout {
  const bytes = files[CONFIG]
  if (!bytes) return 'tenny'
  let config: unknown
  try {
    config = JSON.parse(new TextDecoder().decode(bytes))
  } catch {
    return 'tenny' // loadAdapterFiles names the JSON error
  }
  if (typeof config !== 'object' || config === null) return 'tenny'
  if ('peft_type' in config) return 'peft'
  if ('lora_parameters' in config || 'fine_tune_type' in config) return 'mlx'
  return 'tenny'
}
