// Hugging Face model folders by path, for Node: the checks and the building are pretrained.ts's; here the weights
// files are opened and each tensor is read from disk when its layer asks for it, so a shard's bytes are never held
// whole beside the float32 model they become.
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs'
import { join } from 'node:path'
import { readFileCapped } from '../../src/formats/files-node.js'
import { fail } from '../../src/errors.js'
import {
  loadPretrainedWith,
  MAX_JSON_BYTES,
  type Pretrained,
  type PretrainedOptions,
  type Shard,
} from './pretrained.js'

/** An open weights file read in pieces with pread; `close` gives its descriptor back. */
function openShard(op: string, path: string, name: string): Shard & { close(): void } {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch {
    return fail(op, `${path} does not exist or cannot be read`)
  }
  const stat = fstatSync(fd)
  if (!stat.isFile()) {
    closeSync(fd)
    fail(op, `${path} is not a regular file`)
  }
  let scratch = new Uint8Array(0) // one buffer for every tensor decoded from a copy: fresh memory is slow to touch
  return {
    name,
    size: stat.size,
    read(begin, end, into) {
      if (!into) {
        if (scratch.length < end - begin) scratch = new Uint8Array(end - begin)
        into = scratch.subarray(0, end - begin)
      }
      for (let at = 0; at < end - begin;) {
        const got = readSync(fd, into, at, end - begin - at, begin + at)
        if (got === 0) fail(op, `${path} shrank while being read`)
        at += got
      }
      return into
    },
    close: () => closeSync(fd),
  }
}

/**
 * Load a Hugging Face model folder (config.json, model.safetensors or shards with model.safetensors.index.json,
 * tokenizer.json) → { model, tokenizer, config }, the model in eval mode. Every tensor is checked against the config
 * before anything is read; `maxBytes` caps each weights file and the float32 model (default 8 GiB).
 */
export function loadPretrained(dir: string, options: PretrainedOptions = {}): Pretrained {
  const op = 'loadPretrained'
  if (!existsSync(join(dir, 'config.json'))) fail(op, `${dir} has no config.json (is it a Hugging Face model folder?)`)
  const hasWeights = ['model.safetensors', 'model.safetensors.index.json'].some((f) => existsSync(join(dir, f)))
  if (!hasWeights) {
    const bin = existsSync(join(dir, 'pytorch_model.bin')) ? ': only pytorch_model.bin, which Tenny cannot read' : ''
    fail(op, `${dir} has no model.safetensors or model.safetensors.index.json${bin}`)
  }
  const opened: (Shard & { close(): void })[] = []
  try {
    return loadPretrainedWith(
      op,
      {
        source: dir,
        file(name) {
          const path = join(dir, name)
          return existsSync(path) ? readFileCapped(op, path, { maxBytes: MAX_JSON_BYTES }) : undefined
        },
        shard(name) {
          const shard = openShard(op, join(dir, name), name)
          opened.push(shard)
          return shard
        },
      },
      options,
    )
  } finally {
    for (const shard of opened) shard.close()
  }
}
