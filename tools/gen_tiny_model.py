#!/usr/bin/python3
# Makes tiny random-weight models (Llama, Mistral, Qwen2, Qwen3) as a Hugging Face safetensors
# folder or a GGUF file laid out as llama.cpp's convert_hf_to_gguf.py writes it. Every tensor's
# float32 values come from a PRNG seeded by (seed, HF tensor name), so the same model in any
# format/dtype describes the same function (Llama Q/K rows are permuted for GGUF, as llama.cpp does).
import argparse
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tinymodel as tm  # noqa: E402

ARCHS = {
    # HF architecture -> (HF model_type, GGUF arch, permute Q/K, q/k/v bias, q/k norm)
    "LlamaForCausalLM": ("llama", "llama", True, False, False),
    "MistralForCausalLM": ("mistral", "llama", True, False, False),
    "Qwen2ForCausalLM": ("qwen2", "qwen2", False, True, False),
    "Qwen3ForCausalLM": ("qwen3", "qwen3", False, False, True),
}

# Text the tiny tokenizer's merges are learnt from (any English text would do).
_MERGE_TEXT = (
    "The quick brown fox jumps over the lazy dog. In the beginning there was the word, and the "
    "word was with the model. A tiny model is a model that is small; it has a few layers, a few "
    "heads and a small vocabulary. Hello world! Hello there, how are you today? I am fine, thank "
    "you. The cat sat on the mat and the dog sat on the log. 0123456789 is the list of digits. "
    "Tokens are made of bytes, and bytes are merged into pieces that appear often in the text. "
    "She sells sea shells on the sea shore; the shells that she sells are sea shells for sure. "
    "This is a test of the tokenizer, the model, the format and the reader of the format. "
    "Once upon a time, in a land far away, there lived a king and a queen who loved their people."
)


# ---------------------------------------------------------------------------------------------
# Tokenizer: byte-level BPE (GPT-2 byte-to-unicode alphabet), ids 0..255 = bytes by value.


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def train_merges(text, n_merges):
    """Greedy BPE over words (a leading space stays with its word); ties broken by the pair."""
    b2u = bytes_to_unicode()
    words = {}
    for w in re.findall(r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+", text):
        key = tuple(b2u[b] for b in w.encode("utf-8"))
        words[key] = words.get(key, 0) + 1
    merges = []
    while len(merges) < n_merges:
        counts = {}
        for w, c in words.items():
            for pair in zip(w, w[1:]):
                counts[pair] = counts.get(pair, 0) + c
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        merges.append(best)
        merged = {}
        for w, c in words.items():
            out = []
            i = 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + c
        words = merged
    return merges


def build_tokenizer(vocab_size):
    """Returns dict: tokens (list by id), types (GGUF token types), merges ("a b"), bos, eos."""
    if vocab_size < 258:
        raise SystemExit("--vocab must be at least 258 (256 bytes + <s> + </s>)")
    b2u = bytes_to_unicode()
    tokens = [b2u[b] for b in range(256)]
    merges = train_merges(_MERGE_TEXT, vocab_size - 258)
    seen = set(tokens)
    merge_strs = []
    for a, b in merges:
        if a + b not in seen:
            tokens.append(a + b)
            seen.add(a + b)
        merge_strs.append(f"{a} {b}")
    types = [1] * len(tokens)
    k = 0
    while len(tokens) < vocab_size - 2:
        tokens.append(f"<unused{k}>")
        types.append(3)
        k += 1
    tokens += ["<s>", "</s>"]
    types += [3, 3]
    return {"tokens": tokens, "types": types, "merges": merge_strs, "bos": vocab_size - 2,
            "eos": vocab_size - 1}


def tokenizer_json(tok):
    special = [i for i, t in enumerate(tok["types"]) if t == 3]
    added = [{"id": i, "content": tok["tokens"][i], "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True} for i in special]
    vocab = {t: i for i, t in enumerate(tok["tokens"])}
    bos = tok["tokens"][tok["bos"]]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos, "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": bos, "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": bos, "type_id": 1}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {bos: {"id": bos, "ids": [tok["bos"]], "tokens": [bos]}}},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": tok["merges"]},
    }


CHAT_TEMPLATE = ("{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + "
                 "message['content'] + '\\n' }}{% endfor %}"
                 "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}")


def tokenizer_config_json(tok):
    added = {str(i): {"content": tok["tokens"][i], "lstrip": False, "normalized": False,
                      "rstrip": False, "single_word": False, "special": True}
             for i, t in enumerate(tok["types"]) if t == 3}
    return {"add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": added,
            "bos_token": "<s>", "eos_token": "</s>", "pad_token": None, "unk_token": None,
            "clean_up_tokenization_spaces": False, "model_max_length": 1 << 20,
            "tokenizer_class": "PreTrainedTokenizerFast", "chat_template": CHAT_TEMPLATE}


# ---------------------------------------------------------------------------------------------
# Model


def hparams(args):
    head_dim = args.head_dim or args.hidden // args.heads
    if head_dim % 2:
        raise SystemExit("head_dim must be even")
    if args.heads % args.kv_heads:
        raise SystemExit("--heads must be a multiple of --kv-heads")
    return head_dim


def build_tensors(args):
    """HF-named float32 tensors (already rounded to the storage dtype for f32/f16/bf16)."""
    _, _, _, qkv_bias, qk_norm = ARCHS[args.arch]
    hd = hparams(args)
    H, V, F = args.hidden, args.vocab, args.ffn
    nq, nkv = args.heads * hd, args.kv_heads * hd
    shapes = [("model.embed_tokens.weight", (V, H), "embed")]
    for i in range(args.layers):
        p = f"model.layers.{i}."
        shapes += [(p + "input_layernorm.weight", (H,), "norm"),
                   (p + "self_attn.q_proj.weight", (nq, H), "mat"),
                   (p + "self_attn.k_proj.weight", (nkv, H), "mat"),
                   (p + "self_attn.v_proj.weight", (nkv, H), "mat")]
        if qkv_bias:
            shapes += [(p + "self_attn.q_proj.bias", (nq,), "bias"),
                       (p + "self_attn.k_proj.bias", (nkv,), "bias"),
                       (p + "self_attn.v_proj.bias", (nkv,), "bias")]
        if qk_norm:
            shapes += [(p + "self_attn.q_norm.weight", (hd,), "norm"),
                       (p + "self_attn.k_norm.weight", (hd,), "norm")]
        shapes += [(p + "self_attn.o_proj.weight", (H, nq), "mat"),
                   (p + "post_attention_layernorm.weight", (H,), "norm"),
                   (p + "mlp.gate_proj.weight", (F, H), "mat"),
                   (p + "mlp.up_proj.weight", (F, H), "mat"),
                   (p + "mlp.down_proj.weight", (H, F), "mat")]
    shapes.append(("model.norm.weight", (H,), "norm"))
    if not args.tied:
        shapes.append(("lm_head.weight", (V, H), "mat"))
    out = {}
    for name, shape, kind in shapes:
        rng = tm.tensor_rng(args.seed, name)
        x = rng.standard_normal(shape, dtype=np.float32)
        if kind == "mat":
            x = x / np.float32(np.sqrt(shape[1]))
        elif kind == "embed":
            x = x * np.float32(0.5)
        elif kind == "norm":
            x = np.float32(1) + np.float32(0.1) * x
        elif kind == "bias":
            x = x * np.float32(0.1)
        out[name] = x.astype(np.float32)
    return out


def rope_scaling(args):
    if args.rope_scaling != "llama3":
        return None
    return {"factor": args.rope_factor, "low_freq_factor": args.rope_low_freq_factor,
            "high_freq_factor": args.rope_high_freq_factor,
            "original_max_position_embeddings": args.rope_orig_ctx, "rope_type": "llama3"}


def config_json(args, tok):
    model_type = ARCHS[args.arch][0]
    torch_dtype = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[args.dtype]
    cfg = {
        "architectures": [args.arch], "model_type": model_type, "hidden_size": args.hidden,
        "intermediate_size": args.ffn, "num_hidden_layers": args.layers,
        "num_attention_heads": args.heads, "num_key_value_heads": args.kv_heads,
        "head_dim": hparams(args), "hidden_act": "silu", "rms_norm_eps": args.rms_eps,
        "rope_theta": args.rope_theta, "rope_scaling": rope_scaling(args),
        "max_position_embeddings": args.ctx, "vocab_size": args.vocab,
        "tie_word_embeddings": args.tied, "bos_token_id": tok["bos"], "eos_token_id": tok["eos"],
        "torch_dtype": torch_dtype, "initializer_range": 0.02, "use_cache": True,
        "attention_dropout": 0.0,
    }
    if model_type in ("llama", "qwen3"):
        cfg["attention_bias"] = False
    if model_type == "llama":
        cfg["mlp_bias"] = False
        cfg["pretraining_tp"] = 1
    if model_type == "qwen2":
        cfg["attention_bias"] = True  # informative; Qwen2 always has q/k/v biases
    if model_type in ("mistral", "qwen2", "qwen3"):
        cfg["sliding_window"] = None
    if model_type in ("qwen2", "qwen3"):
        cfg["use_sliding_window"] = False
        cfg["max_window_layers"] = args.layers
    return cfg


def write_safetensors_folder(args, tensors, tok):
    os.makedirs(args.out, exist_ok=True)
    items = []
    for name, x in tensors.items():
        dt, raw = tm.tensor_bytes_for_safetensors(x, args.dtype)
        items.append((name, dt, x.shape, raw))
    tm.write_safetensors(os.path.join(args.out, "model.safetensors"), items)

    def dump(obj, fn):
        with open(os.path.join(args.out, fn), "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False)

    dump(config_json(args, tok), "config.json")
    dump(tokenizer_json(tok), "tokenizer.json")
    dump(tokenizer_config_json(tok), "tokenizer_config.json")
    dump({"bos_token_id": tok["bos"], "eos_token_id": tok["eos"], "do_sample": False},
         "generation_config.json")


GGUF_NAMES = [  # HF suffix -> GGUF name (N = layer)
    ("self_attn.q_proj.weight", "attn_q.weight"), ("self_attn.k_proj.weight", "attn_k.weight"),
    ("self_attn.v_proj.weight", "attn_v.weight"), ("self_attn.o_proj.weight", "attn_output.weight"),
    ("self_attn.q_proj.bias", "attn_q.bias"), ("self_attn.k_proj.bias", "attn_k.bias"),
    ("self_attn.v_proj.bias", "attn_v.bias"), ("self_attn.q_norm.weight", "attn_q_norm.weight"),
    ("self_attn.k_norm.weight", "attn_k_norm.weight"), ("mlp.gate_proj.weight", "ffn_gate.weight"),
    ("mlp.up_proj.weight", "ffn_up.weight"), ("mlp.down_proj.weight", "ffn_down.weight"),
    ("input_layernorm.weight", "attn_norm.weight"),
    ("post_attention_layernorm.weight", "ffn_norm.weight"),
]


def gguf_name(hf):
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    m = re.fullmatch(r"model\.layers\.(\d+)\.(.+)", hf)
    for suffix, g in GGUF_NAMES:
        if m and m.group(2) == suffix:
            return f"blk.{m.group(1)}.{g}"
    raise KeyError(hf)


def llama3_rope_factors(args, head_dim):
    """rope_freqs.weight: per-frequency divisors of theta, as llama.cpp's converter computes."""
    freqs = 1.0 / (args.rope_theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    lo_wl = args.rope_orig_ctx / args.rope_low_freq_factor
    hi_wl = args.rope_orig_ctx / args.rope_high_freq_factor
    out = []
    for f in freqs:
        wl = 2 * np.pi / f
        if wl < hi_wl:
            out.append(1.0)
        elif wl > lo_wl:
            out.append(args.rope_factor)
        else:
            s = (args.rope_orig_ctx / wl - args.rope_low_freq_factor) / (
                args.rope_high_freq_factor - args.rope_low_freq_factor)
            out.append(1.0 / ((1 - s) / args.rope_factor + s))
    return np.array(out, dtype=np.float32)


def gguf_tensor(x, dtype):
    """(ggml type, bytes) for one tensor; 1-D tensors stay f32, as llama.cpp writes them."""
    if x.ndim == 1:
        dtype = "f32"
    if dtype in ("q8_0", "q4_0") and x.shape[-1] % tm.QK:
        dtype = "f16"  # rows that are not whole blocks: llama.cpp falls back to f16
    if dtype == "q8_0":
        return tm.GGML_Q8_0, tm.quantize_q8_0(x)
    if dtype == "q4_0":
        return tm.GGML_Q4_0, tm.quantize_q4_0(x)
    if dtype == "f16":
        return tm.GGML_F16, np.ascontiguousarray(x.astype("<f2")).tobytes()
    if dtype == "bf16":
        return tm.GGML_BF16, tm.f32_to_bf16_bits(x).astype("<u2").tobytes()
    return tm.GGML_F32, np.ascontiguousarray(x, dtype="<f4").tobytes()


def write_gguf(args, tensors, tok):
    _, arch, permute, _, _ = ARCHS[args.arch]
    hd = hparams(args)
    w = tm.GGUFWriter()
    U32, F32, STR = tm.GGUF_UINT32, tm.GGUF_FLOAT32, tm.GGUF_STRING
    w.add("general.architecture", STR, arch)
    w.add("general.name", STR, f"tiny-{ARCHS[args.arch][0]}")
    w.add("general.file_type", U32, tm.FILE_TYPE[args.dtype])
    if args.dtype in ("q8_0", "q4_0"):
        w.add("general.quantization_version", U32, 2)
    w.add(f"{arch}.vocab_size", U32, args.vocab)
    w.add(f"{arch}.context_length", U32, args.ctx)
    w.add(f"{arch}.embedding_length", U32, args.hidden)
    w.add(f"{arch}.block_count", U32, args.layers)
    w.add(f"{arch}.feed_forward_length", U32, args.ffn)
    w.add(f"{arch}.attention.head_count", U32, args.heads)
    w.add(f"{arch}.attention.head_count_kv", U32, args.kv_heads)
    w.add(f"{arch}.rope.freq_base", F32, float(args.rope_theta))
    w.add(f"{arch}.attention.layer_norm_rms_epsilon", F32, float(args.rms_eps))
    w.add(f"{arch}.attention.key_length", U32, hd)
    w.add(f"{arch}.attention.value_length", U32, hd)
    w.add(f"{arch}.rope.dimension_count", U32, hd)
    w.add("tokenizer.ggml.model", STR, "gpt2")
    w.add("tokenizer.ggml.pre", STR, "gpt-2")
    w.add_array("tokenizer.ggml.tokens", STR, tok["tokens"])
    w.add_array("tokenizer.ggml.token_type", tm.GGUF_INT32, tok["types"])
    w.add_array("tokenizer.ggml.merges", STR, tok["merges"])
    w.add("tokenizer.ggml.bos_token_id", U32, tok["bos"])
    w.add("tokenizer.ggml.eos_token_id", U32, tok["eos"])
    w.add("tokenizer.ggml.add_bos_token", tm.GGUF_BOOL, True)
    w.add("tokenizer.ggml.add_eos_token", tm.GGUF_BOOL, False)
    w.add("tokenizer.chat_template", STR, CHAT_TEMPLATE)
    if args.rope_scaling == "llama3":
        w.add_tensor("rope_freqs.weight", (hd // 2,), tm.GGML_F32,
                     llama3_rope_factors(args, hd).astype("<f4").tobytes())
    for name, x in tensors.items():
        if permute and name.endswith("self_attn.q_proj.weight"):
            x = tm.permute_qk(x, args.heads)
        elif permute and name.endswith("self_attn.k_proj.weight"):
            x = tm.permute_qk(x, args.kv_heads)
        gt, raw = gguf_tensor(x, args.dtype)
        w.add_tensor(gguf_name(name), x.shape, gt, raw)
    out = args.out
    if os.path.dirname(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
    w.write(out)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__ or "make a tiny random model")
    p.add_argument("--arch", default="LlamaForCausalLM", choices=sorted(ARCHS))
    p.add_argument("--format", default="safetensors", choices=["safetensors", "gguf"])
    p.add_argument("--dtype", default="f32", choices=["f32", "f16", "bf16", "q8_0", "q4_0"])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--tied", dest="tied", action="store_true", default=False)
    g.add_argument("--untied", dest="tied", action="store_false")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--head-dim", type=int, default=0, help="default hidden/heads")
    p.add_argument("--ffn", type=int, default=128)
    p.add_argument("--vocab", type=int, default=320)
    p.add_argument("--ctx", type=int, default=256)
    p.add_argument("--rms-eps", type=float, default=1e-5)
    p.add_argument("--rope-theta", type=float, default=10000.0)
    p.add_argument("--rope-scaling", default="none", choices=["none", "llama3"])
    p.add_argument("--rope-factor", type=float, default=8.0)
    p.add_argument("--rope-low-freq-factor", type=float, default=1.0)
    p.add_argument("--rope-high-freq-factor", type=float, default=4.0)
    p.add_argument("--rope-orig-ctx", type=int, default=8192,
                   help="original_max_position_embeddings of llama3 scaling")
    p.add_argument("--fake-quant", default="none", choices=["none", "q8_0", "q4_0"],
                   help="safetensors only: store 2-D weights as the values they dequantize to "
                        "after GGML quantization (to compare a quantized GGUF exactly)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if args.format == "safetensors" and args.dtype in ("q8_0", "q4_0"):
        p.error("q8_0/q4_0 are GGUF-only; use --fake-quant for safetensors")
    if args.format == "gguf" and args.fake_quant != "none":
        p.error("--fake-quant is for safetensors output")
    return args


def fake_quantize(tensors, kind):
    out = {}
    for name, x in tensors.items():
        if x.ndim == 2 and x.shape[1] % tm.QK:
            x = tm.round_to_dtype(x, "f16")  # the GGUF's f16 fallback
        elif x.ndim == 2:
            if kind == "q8_0":
                x = tm.dequantize_q8_0(tm.quantize_q8_0(x), x.size).reshape(x.shape)
            else:
                x = tm.dequantize_q4_0(tm.quantize_q4_0(x), x.size).reshape(x.shape)
        out[name] = x
    return out


def main(argv=None):
    args = parse_args(argv)
    tok = build_tokenizer(args.vocab)
    tensors = build_tensors(args)
    if args.format == "safetensors":
        if args.fake_quant != "none":
            tensors = fake_quantize(tensors, args.fake_quant)
        write_safetensors_folder(args, tensors, tok)
    else:
        write_gguf(args, tensors, tok)


if __name__ == "__main__":
    main()
