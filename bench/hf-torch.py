#!/usr/bin/python3
# PyTorch on the CPU as the Hugging Face rows' peer (bench/suite-hf.ts runs it when /usr/bin/python3 has torch):
#   /usr/bin/python3 bench/hf-torch.py <folder> [--threads=2] [--steps=2] [--tokens=256] [--new=32]
# The same random folder Tenny loads (config.json + model.safetensors), the same work: load, generation with a KV
# cache, LoRA r=8 training steps (q_proj and v_proj; c_attn on GPT-2) at batch 1 x 256 with AdamW, peak RSS; the
# same batch as bench/hf-child.ts (its benchTokens rule), so that the first losses agree (test/hf-bench.test.ts).
# transformers is not installed here, so the models are written out below, in plain torch, from the modeling files'
# math (RMSNorm, rotate_half rotary embeddings, grouped-query attention, SwiGLU; GPT-2's Conv1D and gelu_new).
# Prints one JSON line.
import json
import math
import os
import struct
import sys
import time

import torch

RANK, ALPHA = 8, 16


def bench_tokens(n, vocab, seed):
    """bench/hf-child.ts's benchTokens: (seed * 7919 + 104729 * i) mod vocab, as a (1, n) batch."""
    return torch.tensor([(seed * 7919 + 104729 * i) % vocab for i in range(n)]).view(1, n)


def peak_mb():
    """This process's peak RSS (VmHWM: ru_maxrss would carry the parent's across fork + exec)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024
    return float('nan')


def load(folder):
    """config.json and model.safetensors → (config, {name: float32 tensor}); BF16 / F16 widened as Tenny does."""
    with open(os.path.join(folder, 'config.json')) as f:
        c = json.load(f)
    with open(os.path.join(folder, 'model.safetensors'), 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        header.pop('__metadata__', None)
        data = bytearray(f.read())
    W = {}
    for k, h in header.items():
        a, b = h['data_offsets']
        if h['dtype'] == 'BF16':
            t = torch.frombuffer(data, dtype=torch.int16, offset=a, count=(b - a) // 2).view(torch.bfloat16).float()
        elif h['dtype'] == 'F16':
            t = torch.frombuffer(data, dtype=torch.float16, offset=a, count=(b - a) // 2).float()
        else:
            t = torch.frombuffer(data, dtype=torch.float32, offset=a, count=(b - a) // 4)  # a view: no copy
        W[k.removeprefix('transformer.') if c['model_type'] == 'gpt2' else k] = t.reshape(h['shape'])
    return c, W


def attend(q, k, v, start):
    """q (B, H, T, D) at positions start…, k and v (B, H, S, D) → (B, T, H·D), causal."""
    B, H, Tq, D = q.shape
    scores = q @ k.transpose(2, 3) / math.sqrt(D)
    if Tq > 1:
        mask = torch.ones(Tq, k.shape[2], dtype=torch.bool).triu(diagonal=start + 1)
        scores = scores.masked_fill(mask, float('-inf'))
    return (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, Tq, H * D)


class Llama:
    def __init__(self, c, W):
        self.c, self.W = c, W
        self.H, self.KV = c['num_attention_heads'], c['num_key_value_heads']
        self.D = c.get('head_dim') or c['hidden_size'] // self.H
        self.inv = 1.0 / (c['rope_theta'] ** (torch.arange(0, self.D, 2).float() / self.D))
        self.lora = {}

    def targets(self):
        return [f'model.layers.{i}.self_attn.{p}_proj' for i in range(self.c['num_hidden_layers']) for p in 'qv']

    def linear(self, x, name):
        y = x @ self.W[name + '.weight'].T
        if name + '.bias' in self.W:  # Qwen2's q, k and v
            y = y + self.W[name + '.bias']
        if name in self.lora:
            A, B = self.lora[name]
            y = y + (ALPHA / RANK) * (x @ A.T @ B.T)
        return y

    def norm(self, x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.c['rms_norm_eps']))

    def forward(self, idx, cache=None):
        B, Tn = idx.shape
        start = cache[0][0].shape[2] if cache and cache[0] else 0
        ang = torch.arange(start, start + Tn).float()[:, None] * self.inv[None, :]
        cos, sin = torch.cat((ang, ang), -1).cos(), torch.cat((ang, ang), -1).sin()
        rot = lambda t: t * cos + torch.cat((-t[..., self.D // 2:], t[..., :self.D // 2]), -1) * sin
        x = self.W['model.embed_tokens.weight'][idx]
        for i in range(self.c['num_hidden_layers']):
            p = f'model.layers.{i}.'
            h = self.norm(x, self.W[p + 'input_layernorm.weight'])
            q = rot(self.linear(h, p + 'self_attn.q_proj').view(B, Tn, self.H, self.D).transpose(1, 2))
            k = rot(self.linear(h, p + 'self_attn.k_proj').view(B, Tn, self.KV, self.D).transpose(1, 2))
            v = self.linear(h, p + 'self_attn.v_proj').view(B, Tn, self.KV, self.D).transpose(1, 2)
            if cache is not None:
                if cache[i]:
                    k, v = torch.cat((cache[i][0], k), 2), torch.cat((cache[i][1], v), 2)
                cache[i] = (k, v)
            rep = self.H // self.KV
            k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
            x = x + self.linear(attend(q, k, v, start), p + 'self_attn.o_proj')
            h = self.norm(x, self.W[p + 'post_attention_layernorm.weight'])
            act = torch.nn.functional.silu(self.linear(h, p + 'mlp.gate_proj')) * self.linear(h, p + 'mlp.up_proj')
            x = x + self.linear(act, p + 'mlp.down_proj')
        x = self.norm(x, self.W['model.norm.weight'])
        head = self.W['model.embed_tokens.weight'] if self.c.get('tie_word_embeddings') else self.W['lm_head.weight']
        return x @ head.T


class GPT2(Llama):
    """In training, embd_pdrop and resid_pdrop dropout as Tenny's GPT-2 applies them (it leaves attn_pdrop out)."""

    def __init__(self, c, W):
        self.c, self.W, self.lora = c, W, {}
        self.H = c['n_head']
        self.training = False

    def drop(self, x, p):
        return torch.nn.functional.dropout(x, self.c.get(p, 0.1), self.training)

    def targets(self):
        return [f'h.{i}.attn.c_attn' for i in range(self.c['n_layer'])]

    def conv(self, x, name):
        y = x @ self.W[name + '.weight'] + self.W[name + '.bias']
        if name in self.lora:
            A, B = self.lora[name]
            y = y + (ALPHA / RANK) * (x @ A.T @ B.T)
        return y

    def ln(self, x, p):
        C, eps = self.c['n_embd'], self.c.get('layer_norm_epsilon', 1e-5)
        return torch.nn.functional.layer_norm(x, (C,), self.W[p + '.weight'], self.W[p + '.bias'], eps)

    def forward(self, idx, cache=None):
        B, Tn = idx.shape
        C, H = self.c['n_embd'], self.H
        start = cache[0][0].shape[2] if cache and cache[0] else 0
        x = self.drop(self.W['wte.weight'][idx] + self.W['wpe.weight'][start:start + Tn], 'embd_pdrop')
        for i in range(self.c['n_layer']):
            p = f'h.{i}.'
            q, k, v = (t.view(B, Tn, H, C // H).transpose(1, 2)
                       for t in self.conv(self.ln(x, p + 'ln_1'), p + 'attn.c_attn').split(C, dim=2))
            if cache is not None:
                if cache[i]:
                    k, v = torch.cat((cache[i][0], k), 2), torch.cat((cache[i][1], v), 2)
                cache[i] = (k, v)
            x = x + self.drop(self.conv(attend(q, k, v, start), p + 'attn.c_proj'), 'resid_pdrop')
            h = torch.nn.functional.gelu(self.conv(self.ln(x, p + 'ln_2'), p + 'mlp.c_fc'), approximate='tanh')
            x = x + self.drop(self.conv(h, p + 'mlp.c_proj'), 'resid_pdrop')
        head = self.W['wte.weight'] if self.c.get('tie_word_embeddings', True) else self.W['lm_head.weight']
        return self.ln(x, 'ln_f') @ head.T


def main():
    folder = sys.argv[1]
    arg = lambda name, default: next((a.split('=', 1)[1] for a in sys.argv if a.startswith(f'--{name}=')), default)
    threads, steps = int(arg('threads', 2)), int(arg('steps', 2))
    T, new = int(arg('tokens', 256)), int(arg('new', 32))
    prompt = min(16, T)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    c, W = load(folder)
    load_ms = (time.perf_counter() - t0) * 1000
    model = GPT2(c, W) if c['model_type'] == 'gpt2' else Llama(c, W)
    V = c['vocab_size']
    idx, targets = bench_tokens(T, V, 1), bench_tokens(T, V, 2)

    with torch.no_grad():  # greedy generation with a KV cache: a 16-token prompt, then 32 tokens (--new)
        n_layers = c.get('n_layer') or c['num_hidden_layers']
        cache = [None] * n_layers
        t0 = time.perf_counter()
        nxt = model.forward(idx[:, :prompt], cache)[:, -1].argmax(-1, keepdim=True)
        t1 = time.perf_counter()
        for _ in range(new - 1):
            nxt = model.forward(nxt, cache)[:, -1].argmax(-1, keepdim=True)
        decode = (new - 1) / (time.perf_counter() - t1)
        prefill_ms = (t1 - t0) * 1000

    for name in model.targets():
        w = W[name + '.weight']
        fan_in, fan_out = (w.shape[0], w.shape[1]) if c['model_type'] == 'gpt2' else (w.shape[1], w.shape[0])
        bound = 1 / math.sqrt(fan_in)
        A = torch.empty(RANK, fan_in).uniform_(-bound, bound).requires_grad_()
        model.lora[name] = (A, torch.zeros(fan_out, RANK, requires_grad=True))
    model.training = True  # dropout where the config has it, as Tenny's model.train()
    opt = torch.optim.AdamW([t for pair in model.lora.values() for t in pair], lr=1e-4)
    times, cpu, losses = [], [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model.forward(idx).view(-1, V), targets.view(-1))
        loss.backward()
        opt.step()
        losses.append(loss.item())
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    print(json.dumps({'loadMs': load_ms, 'prefillMs': prefill_ms, 'decodeTokS': decode, 'stepMs': times[-1],
                      'stepMsAll': times, 'stepCpuMs': cpu[-1], 'peakMB': peak_mb(), 'threads': threads,
                      'firstLoss': losses[0], 'trainable': sum(t.numel() for pair in model.lora.values() for t in pair),
                      'torch': torch.__version__, 'trained': f'LoRA r={RANK} on {len(model.lora)} layers'}))


if __name__ == '__main__':
    main()
