#!/usr/bin/python3
# Python-side greedy continuation of a prompt with the default model (or any folder train.py made):
# tokenizes with tokenizer.json's rules (cross-checked against tokenizer.model when sentencepiece is
# installed), decodes argmax tokens with the PyTorch training code, optionally cross-checks with the
# independent numpy reference. Prints JSON: prompt ids, generated ids (up to and including </s>), text.
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import reference_forward as ref  # noqa: E402
import spm_tokenizer as spt  # noqa: E402

DEFAULT_MODEL = os.path.join(os.path.dirname(os.path.dirname(HERE)), "models", "default")


def decode(tok, ids):
    """tokenizer.json decoding: specials skipped, ▁ -> space, <0xNN> bytes fused, one leading
    space stripped."""
    inv = {i: t for t, i in tok["model"]["vocab"].items()}
    specials = {t["id"] for t in tok["added_tokens"]}
    out = bytearray()
    for i in ids:
        if i in specials:
            continue
        t = inv[i]
        if len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
            out.append(int(t[3:5], 16))
        else:
            out += t.replace("\u2581", " ").encode("utf-8")
    text = out.decode("utf-8", errors="replace")
    return text[1:] if text.startswith(" ") else text


def render(prompt, chat):
    return f"### User:\n{prompt}\n### Assistant:\n" if chat else prompt


def run(model_dir, prompt, chat, n, use_numpy=False):
    with open(os.path.join(model_dir, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    cfg, weights = ref.load_model(model_dir)
    text = render(prompt, chat)
    ids = [cfg["bos_token_id"]] + spt.HFBPE(tok).encode(text)
    sp_model = os.path.join(model_dir, "tokenizer.model")
    try:
        import sentencepiece  # noqa: F401
        have_sp = os.path.exists(sp_model)
    except ImportError:
        have_sp = False
    if have_sp and [cfg["bos_token_id"]] + spt.load_spm(sp_model).encode(text) != ids:
        raise SystemExit("tokenizer.json and tokenizer.model disagree on the prompt")
    eos = cfg["eos_token_id"]
    if use_numpy:
        out = []
        seq = list(ids)
        for _ in range(n):
            t = int(ref.forward(cfg, weights, seq)[-1].argmax())
            out.append(t)
            seq.append(t)
            if t == eos:
                break
    else:
        import torch

        from llama_torch import LlamaForCausalLM

        torch.set_num_threads(1)
        model = LlamaForCausalLM(cfg)
        model.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in weights.items()})
        model.eval()
        out = model.greedy(ids, n, eos=eos)
    return {"prompt": prompt, "chat": chat, "rendered": text, "prompt_ids": ids, "ids": out,
            "stopped_at_eos": bool(out and out[-1] == eos), "text": decode(tok, out)}


def main():
    ap = argparse.ArgumentParser(description="greedy continuation with the Python training code")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--prompt", default="In the beginning")
    ap.add_argument("--chat", action="store_true",
                    help="wrap the prompt in the chat template (### User: / ### Assistant:)")
    ap.add_argument("-n", "--num-predict", type=int, default=32)
    ap.add_argument("--numpy", action="store_true",
                    help="decode with tools/reference_forward.py instead of PyTorch")
    ap.add_argument("--both", action="store_true", help="run both and fail if they differ")
    args = ap.parse_args()
    res = run(args.model, args.prompt, args.chat, args.num_predict, args.numpy)
    if args.both:
        other = run(args.model, args.prompt, args.chat, args.num_predict, not args.numpy)
        if other["ids"] != res["ids"]:
            raise SystemExit(f"torch and numpy greedy differ: {res['ids']} vs {other['ids']}")
        res["numpy_agrees"] = True
    print("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}"
                             for k, v in res.items()) + "\n}")


if __name__ == "__main__":
    main()
