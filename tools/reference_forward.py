#!/usr/bin/python3
# Independent numpy (float64) forward pass of Llama/Mistral/Qwen2/Qwen3 decoder models read from a
# Hugging Face safetensors folder, written from the papers and config semantics: RMSNorm, RoPE in
# HF rotate-half layout (with llama3 inv_freq scaling), GQA causal attention, SwiGLU MLP, Qwen2 q/k/v
# biases, Qwen3 per-head q/k RMSNorm before RoPE, tied embeddings. Output: float32 logits [n, vocab].
import argparse
import glob
import json
import os
import struct
import sys

import numpy as np

_ST_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
              "F64": np.dtype("<f8")}


def read_safetensors(path):
    """name -> float64 array. Parses the header and data ourselves (F32, F16, BF16, F64)."""
    with open(path, "rb") as f:
        data = f.read()
    (hlen,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + hlen])
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = _ST_DTYPES.get(info["dtype"])
        if dt is None:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {info['dtype']}")
        b, e = info["data_offsets"]
        raw = np.frombuffer(data, dtype=dt, count=(e - b) // dt.itemsize, offset=base + b)
        if info["dtype"] == "BF16":
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        out[name] = raw.astype(np.float64).reshape(info["shape"])
    return out


def load_model(model_dir):
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    weights = {}
    for p in sorted(glob.glob(os.path.join(model_dir, "*.safetensors"))):
        weights.update(read_safetensors(p))
    return cfg, weights


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def inv_freq(cfg, head_dim):
    theta = cfg.get("rope_theta", 10000.0)
    f = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type"))
    if kind in (None, "default"):
        return f
    if kind != "llama3":
        raise ValueError(f"rope_scaling type {kind} not supported by the reference")
    factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    wavelen = 2 * np.pi / f
    # long wavelengths (low frequencies) are slowed by `factor`, short ones kept, the band between
    # interpolated smoothly in old_ctx/wavelen
    smooth = (old / wavelen - lo) / (hi - lo)
    mid = (1 - smooth) * f / factor + smooth * f
    return np.where(wavelen > old / lo, f / factor, np.where(wavelen < old / hi, f, mid))


def rope(x, positions, freqs):
    """x: [n, heads, head_dim] in rotate-half layout (pairs are (i, i + head_dim/2))."""
    ang = positions[:, None] * freqs[None, :]  # [n, hd/2]
    cos = np.cos(ang)[:, None, :]
    sin = np.sin(ang)[:, None, :]
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def silu(x):
    return x / (1 + np.exp(-x))


def forward(cfg, w, tokens):
    """tokens: list of ids -> logits float64 [n, vocab] for every position."""
    H = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    hd = cfg.get("head_dim") or H // nh
    eps = cfg.get("rms_norm_eps", 1e-6)
    tokens = np.asarray(tokens, dtype=np.int64)
    n = len(tokens)
    if n == 0:
        raise ValueError("no tokens")
    if tokens.min() < 0 or tokens.max() >= cfg["vocab_size"]:
        raise ValueError("token id out of range")
    emb = w["model.embed_tokens.weight"]
    x = emb[tokens]
    pos = np.arange(n, dtype=np.float64)
    freqs = inv_freq(cfg, hd)
    mask = np.triu(np.full((n, n), -np.inf), k=1)
    group = nh // nkv
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)

        def proj(name):
            y = h @ w[p + f"self_attn.{name}.weight"].T
            b = w.get(p + f"self_attn.{name}.bias")
            return y + b if b is not None else y

        q = proj("q_proj").reshape(n, nh, hd)
        k = proj("k_proj").reshape(n, nkv, hd)
        v = proj("v_proj").reshape(n, nkv, hd)
        if p + "self_attn.q_norm.weight" in w:  # Qwen3: per-head RMSNorm before RoPE
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps)
        q = rope(q, pos, freqs)
        k = rope(k, pos, freqs)
        att = np.empty((n, nh, hd))
        for head in range(nh):
            kv = head // group
            s = q[:, head, :] @ k[:, kv, :].T / np.sqrt(hd) + mask
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            s /= s.sum(axis=-1, keepdims=True)
            att[:, head, :] = s @ v[:, kv, :]
        x = x + att.reshape(n, nh * hd) @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        g = h @ w[p + "mlp.gate_proj.weight"].T
        u = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (silu(g) * u) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = emb if cfg.get("tie_word_embeddings", False) else w.get("lm_head.weight", emb)
    return x @ head.T


def greedy(cfg, w, tokens, n_new):
    """Appends n_new argmax tokens (full recompute per step; fine for a reference)."""
    seq = list(tokens)
    out = []
    for _ in range(n_new):
        nxt = int(np.argmax(forward(cfg, w, seq)[-1]))
        out.append(nxt)
        seq.append(nxt)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="numpy reference forward pass of an HF model folder")
    ap.add_argument("model_dir")
    ap.add_argument("--tokens", required=True, help="comma-separated token ids, e.g. 1,2,3")
    ap.add_argument("--out", help="write float32 logits [n_tokens, vocab] to this .npy file")
    ap.add_argument("--json", action="store_true", help="print logits as JSON (list of rows)")
    ap.add_argument("--greedy", type=int, default=0, help="generate N tokens greedily instead")
    args = ap.parse_args(argv)
    tokens = [int(t) for t in args.tokens.split(",") if t.strip()]
    cfg, w = load_model(args.model_dir)
    if args.greedy:
        print(json.dumps(greedy(cfg, w, tokens, args.greedy)))
        return
    logits = forward(cfg, w, tokens).astype(np.float32)
    if args.out:
        np.save(args.out, logits)
    if args.json or not args.out:
        json.dump([[float(v) for v in row] for row in logits], sys.stdout)
        sys.stdout.write("\n")


if __name__ == "__main__":
    main()
