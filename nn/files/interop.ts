// The adapter layouts other tools read, as bytes: PEFT's (Hugging Face) in peft.ts, mlx-lm's (and the original
// mlx-examples lora.py's .npz) in mlx.ts. Each writer gives configs those tools select exactly the adapted layers
// with; each reader checks all of it before the model changes.
export { peftFiles, importPEFTFiles } from './peft.js'
export { mlxFiles, importMLXFiles } from './mlx.js'
