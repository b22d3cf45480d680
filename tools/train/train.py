#!/usr/bin/python3
# Reproducibly makes runnel's embedded default model: King James Bible text (Debian bible-kjv) ->
# SentencePiece BPE tokenizer with byte fallback -> small Llama trained with PyTorch on 1 CPU thread
# (fixed seeds, fixed step count) -> Hugging Face folder (config, f32 safetensors, tokenizer files,
# model card). Run: tools/train/train.py --out models/default   (installs its apt packages first).
import argparse
import hashlib
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import spm_tokenizer as spt  # noqa: E402

MODEL_CFG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 192,
    "intermediate_size": 512, "num_hidden_layers": 4, "num_attention_heads": 6,
    "num_key_value_heads": 2, "head_dim": 32, "hidden_act": "silu", "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0, "rope_scaling": None, "max_position_embeddings": 512,
    "vocab_size": 1024, "tie_word_embeddings": True, "bos_token_id": 1, "eos_token_id": 2,
    "torch_dtype": "float32", "attention_bias": False, "mlp_bias": False,
    "initializer_range": 0.02, "pretraining_tp": 1, "use_cache": True, "attention_dropout": 0.0,
}


def ensure_packages():
    need = [p.strip() for p in open(os.path.join(HERE, "apt-packages.txt")) if
            p.strip() and not p.startswith("#")]
    missing = [p for p in need if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode]
    if missing:
        print("installing", missing, flush=True)
        subprocess.run(["apt-get", "install", "-y", *missing], check=True)


# ---------------------------------------------------------------------------------------------
# Corpus


def read_kjv():
    """[(title, [verse text...])] per chapter, from the `bible` program of bible-kjv."""
    out = subprocess.run(["bible", "-m", "8192", "-l100000", "Gen1:1-Rev22:21"], check=True,
                         capture_output=True, text=True).stdout
    chapters = []
    for line in out.split("\n"):
        m = re.match(r"^  (\d+) (.*)$", line)
        if m:
            chapters[-1][1].append(m.group(2).strip())
        elif line.strip():
            chapters.append((line.strip(), []))
    return chapters


def chat_docs(chapter_verses, rng, per_chapter):
    """Chat-formatted samples: the user gives the first words of a verse, the assistant goes on."""
    docs = []
    for _ in range(per_chapter):
        i = rng.randrange(len(chapter_verses))
        words = chapter_verses[i].split(" ")
        if len(words) < 4:
            continue
        k = rng.randrange(2, max(3, len(words) // 2))
        reply = [" ".join(words[k:])] + chapter_verses[i + 1:i + 1 + rng.randrange(0, 3)]
        docs.append("### User:\n" + " ".join(words[:k]) + "\n### Assistant:\n" +
                    "\n".join(reply))
    return docs


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="output folder (e.g. models/default)")
    ap.add_argument("--work", default="/tmp/runnel-train", help="scratch folder")
    ap.add_argument("--steps", type=int, default=720)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-minutes", type=float, default=34.0,
                    help="safety stop (the run is then shorter than --steps; reported)")
    ap.add_argument("--no-apt", action="store_true")
    args = ap.parse_args()
    if not args.no_apt:
        ensure_packages()
    import torch

    from llama_torch import LlamaForCausalLM
    import tinymodel as tm

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    t_start = time.time()

    chapters = read_kjv()
    verses = [v for _, vs in chapters for v in vs]
    corpus_txt = os.path.join(args.work, "kjv_verses.txt")
    with open(corpus_txt, "w", encoding="utf-8") as f:
        f.write("\n".join(verses) + "\n")
    corpus_sha = hashlib.sha256("\n".join(verses).encode()).hexdigest()
    print(f"corpus: {len(chapters)} chapters, {len(verses)} verses, sha256 {corpus_sha[:16]}",
          flush=True)

    sp_path = spt.train_spm(corpus_txt, os.path.join(args.work, "tokenizer"),
                            MODEL_CFG["vocab_size"])
    sp = spt.load_spm(sp_path)
    assert sp.get_piece_size() == MODEL_CFG["vocab_size"]
    tok_json = spt.tokenizer_json(sp)
    hf = spt.HFBPE(tok_json)

    val_idx = set(range(0, len(chapters), 40))
    train_docs, val_docs = [], []
    for ci, (_, vs) in enumerate(chapters):
        docs = ["\n".join(vs)] + chat_docs(vs, rng, 2)
        (val_docs if ci in val_idx else train_docs).extend(docs)
    # the tokenizer.json encoder must agree with SentencePiece on what the model is trained on
    sample = verses[::20] + [d for d in train_docs if d.startswith("###")][::20] + train_docs[:3]
    mismatches = sum(hf.encode(d) != sp.encode(d) for d in sample)
    print(f"tokenizer check: {mismatches} mismatches between tokenizer.json and SentencePiece",
          flush=True)
    if mismatches:
        raise SystemExit("tokenizer.json does not reproduce SentencePiece's encoding")

    def stream(docs):
        docs = list(docs)
        random.Random(args.seed + 1).shuffle(docs)
        ids = []
        for d in docs:
            ids += [1] + sp.encode(d) + [2]
        return torch.tensor(ids, dtype=torch.long)

    train_ids, val_ids = stream(train_docs), stream(val_docs)
    print(f"tokens: train {len(train_ids)}, val {len(val_ids)}", flush=True)
    bos_pos = (train_ids == 1).nonzero().flatten()

    g = torch.Generator().manual_seed(args.seed)
    L = args.seq

    def batch():
        starts = torch.randint(0, len(train_ids) - L - 1, (args.batch,), generator=g)
        aligned = torch.rand(args.batch, generator=g) < 0.25  # some windows start at a <s>
        pick = bos_pos[torch.randint(0, len(bos_pos), (args.batch,), generator=g)]
        starts = torch.where(aligned, pick.clamp(max=len(train_ids) - L - 1), starts)
        x = torch.stack([train_ids[s:s + L + 1] for s in starts.tolist()])
        return x[:, :-1], x[:, 1:]

    vg = torch.Generator().manual_seed(args.seed + 2)
    val_starts = torch.randint(0, len(val_ids) - L - 1, (64,), generator=vg).tolist()

    model = LlamaForCausalLM(MODEL_CFG)
    model.init_weights()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {n_params}", flush=True)
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    warmup = 100

    def lr_at(step):
        if step < warmup:
            return args.lr * (step + 1) / warmup
        t = (step - warmup) / max(1, args.steps - warmup)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))

    @torch.no_grad()
    def val_loss():
        model.eval()
        tot = 0.0
        for i in range(0, len(val_starts), 8):
            x = torch.stack([val_ids[s:s + L + 1] for s in val_starts[i:i + 8]])
            logits = model(x[:, :-1])
            tot += float(torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))) * x.shape[0]
        model.train()
        return tot / len(val_starts)

    log = []
    recent = []
    t_train = time.time()
    steps_done = 0
    for step in range(args.steps):
        for grp in opt.param_groups:
            grp["lr"] = lr_at(step)
        x, y = batch()
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        steps_done = step + 1
        recent = (recent + [float(loss)])[-50:]
        if step % 50 == 0 or step == args.steps - 1:
            el = time.time() - t_train
            entry = {"step": step, "loss": round(float(loss), 4), "lr": lr_at(step),
                     "seconds": round(el, 1)}
            if step % 400 == 0 or step == args.steps - 1:
                entry["val_loss"] = round(val_loss(), 4)
            log.append(entry)
            print(json.dumps(entry), flush=True)
        if (time.time() - t_start) / 60 > args.max_minutes:
            print(f"stopping early at step {steps_done}: --max-minutes reached", flush=True)
            break
    final_train = sum(recent) / len(recent)
    final_val = val_loss()
    minutes = (time.time() - t_start) / 60
    print(f"final: train loss (mean of last 50 steps) {final_train:.4f}, val loss {final_val:.4f},"
          f" {minutes:.1f} min", flush=True)

    # ---- export
    sd = model.state_dict()
    items = []
    for name, t in sd.items():
        dt, raw = tm.tensor_bytes_for_safetensors(t.detach().numpy(), "f32")
        items.append((name, dt, tuple(t.shape), raw))
    tm.write_safetensors(os.path.join(args.out, "model.safetensors"), items)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(MODEL_CFG, f, indent=2)
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": 2, "do_sample": True, "temperature": 0.7,
                   "top_p": 0.9, "max_length": MODEL_CFG["max_position_embeddings"]}, f, indent=2)
    spt.write_hf_files(sp, args.out, MODEL_CFG["max_position_embeddings"])
    shutil.copy(sp_path, os.path.join(args.out, "tokenizer.model"))
    summary = {
        "corpus": "King James Bible (Debian package bible-kjv-text), one verse per line",
        "corpus_sha256": corpus_sha, "chapters": len(chapters), "verses": len(verses),
        "train_tokens": len(train_ids), "val_tokens": len(val_ids), "parameters": n_params,
        "steps": steps_done, "batch": args.batch, "seq": L, "lr": args.lr, "seed": args.seed,
        "threads": args.threads, "final_train_loss": round(final_train, 4),
        "final_val_loss": round(final_val, 4), "minutes": round(minutes, 1),
        "torch": torch.__version__, "log": log,
    }
    with open(os.path.join(args.out, "training_log.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("wrote", args.out, flush=True)


if __name__ == "__main__":
    main()
