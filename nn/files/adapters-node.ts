// Adapter files by path, for Node: each function writes or reads the bytes that adapters.ts makes and checks.
// Writes are atomic (temp file, fsync, rename), so a crash leaves the old file or the new one; reads check a
// file's size against { maxBytes } before reading it.
import { fail } from '../../src/errors.js'
import { existsSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { writeFilesAtomic, readFileCapped } from '../../src/formats/files-node.js'
import type { LoadOptions } from '../../src/formats/safetensors.js'
import { Module } from '../module.js'
import { adapterFiles, loadAdapterFiles, type AdapterFiles } from './adapters.js'
import { peftFiles, importPEFTFiles, mlxFiles, importMLXFiles } from './interop.js'

const CONFIG = 'adapter_config.json'

function mlxFormat(op: string, file: string): 'safetensors' | 'npz' {
  if (file.endsWith('.safetensors')) return 'safetensors'
  if (file.endsWith('.npz')) return 'npz'
  fail(op, `${file}: expected a .safetensors or .npz file name`)
}

/**
 * Write adapter `name` to `file` (.safetensors, its config in its metadata: one atomic unit) and a copy of the
 * config to adapter_config.json beside it; returns the config.
 */
export function saveAdapters(file: string, model: Module, { name }: { name?: string } = {}): Record<string, unknown> {
  const files = adapterFiles(model, { name })
  writeFilesAtomic(
    [
      [file, files['adapters.safetensors']],
      [join(dirname(file), CONFIG), files[CONFIG]],
    ],
    'saveAdapters',
  )
  return JSON.parse(new TextDecoder().decode(files[CONFIG]))
}

/** Load what saveAdapters wrote (as adapter `name`, default the saved one), checked against its tensors and base. */
export function loadAdapters(
  model: Module,
  file: string,
  options: { name?: string } & LoadOptions = {},
): { name: string; paths: string[] } {
  const files: AdapterFiles = { 'adapters.safetensors': readFileCapped('loadAdapters', file, options) }
  const cfgPath = join(dirname(file), CONFIG) // read only for a file saved before its config moved into its metadata
  if (existsSync(cfgPath)) files[CONFIG] = readFileCapped('loadAdapters', cfgPath, options)
  return loadAdapterFiles(model, files, { ...options, source: file })
}

/** Write PEFT's adapter_model.safetensors and adapter_config.json into `dir`. */
export function exportPEFT(dir: string, model: Module, options: { name?: string; baseModel?: string } = {}): void {
  const files = peftFiles(model, options)
  writeFilesAtomic(
    Object.entries(files).map(([file, bytes]) => [join(dir, file), bytes]),
    'exportPEFT',
  )
}

/** Load a PEFT LoRA adapter directory into the model (as adapter `name`, default 'default'). */
export function importPEFT(
  model: Module,
  dir: string,
  options: { name?: string } & LoadOptions = {},
): { paths: string[] } {
  const weights = join(dir, 'adapter_model.safetensors')
  const files: AdapterFiles = {
    [CONFIG]: readFileCapped('importPEFT', join(dir, CONFIG), options),
    'adapter_model.safetensors': readFileCapped('importPEFT', weights, options),
  }
  return importPEFTFiles(model, files, { ...options, source: weights })
}

/** Write mlx-lm's layout to `file` (.safetensors or .npz) and its adapter_config.json beside it. */
export function exportMLX(file: string, model: Module, { name }: { name?: string } = {}): void {
  const format = mlxFormat('exportMLX', file)
  const files = mlxFiles(model, { name, format })
  writeFilesAtomic(
    [
      [file, files[`adapters.${format}`]],
      [join(dirname(file), CONFIG), files[CONFIG]],
    ],
    'exportMLX',
  )
}

/** Load MLX LoRA weights; the scale comes from adapter_config.json beside the file, or { scale } (lora.py used 2.0). */
export function importMLX(
  model: Module,
  file: string,
  options: { name?: string; scale?: number } & LoadOptions = {},
): { paths: string[] } {
  mlxFormat('importMLX', file)
  const files: AdapterFiles = { [basename(file)]: readFileCapped('importMLX', file, options) }
  const cfgPath = join(dirname(file), CONFIG)
  // optional: the original lora.py wrote none
  if (existsSync(cfgPath)) files[CONFIG] = readFileCapped('importMLX', cfgPath, options)
  return importMLXFiles(model, files, { ...options, source: file })
}
