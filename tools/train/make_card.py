#!/usr/bin/python3
# Finishes a folder made by train.py: greedy samples (PyTorch, cross-checked with the numpy
# reference) stored in greedy_check.json for runnel's tests, the model card README.md and LICENSE.
# Run: tools/train/make_card.py models/default
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import check_greedy  # noqa: E402

PROMPTS = [("In the beginning", False, 48), ("And the LORD said unto Moses", False, 48),
           ("Blessed are the", False, 32), ("In the beginning", True, 48)]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else check_greedy.DEFAULT_MODEL
    with open(os.path.join(out, "training_log.json")) as f:
        log = json.load(f)
    with open(os.path.join(out, "config.json")) as f:
        cfg = json.load(f)
    samples = []
    for prompt, chat, n in PROMPTS:
        res = check_greedy.run(out, prompt, chat, n)
        alt = check_greedy.run(out, prompt, chat, n, use_numpy=True)
        if alt["ids"] != res["ids"]:
            raise SystemExit(f"numpy reference disagrees with torch on {prompt!r}")
        samples.append({k: res[k] for k in ("prompt", "chat", "prompt_ids", "ids", "text",
                                            "stopped_at_eos")})
    with open(os.path.join(out, "greedy_check.json"), "w") as f:
        json.dump({"note": "greedy (argmax) continuations from tools/train/check_greedy.py; "
                           "prompt_ids include <s>; ids end with </s> (2) when generation stopped "
                           "there", "samples": samples}, f, indent=1)
    with open(os.path.join(out, "model.safetensors"), "rb") as f:
        weights_sha = hashlib.sha256(f.read()).hexdigest()
    size = sum(os.path.getsize(os.path.join(out, x)) for x in os.listdir(out))
    sample_txt = "\n\n".join(
        f"{'chat, ' if s['chat'] else ''}prompt `{s['prompt']}` →\n\n```\n{s['text']}\n```"
        for s in samples)
    card = f"""# runnel default model

A tiny Llama-architecture language model that ships inside runnel, so `runnel run` shows text being
generated on a machine with nothing downloaded. It imitates the King James Bible: words, verse
punctuation, names. It knows nothing and follows no instructions; it is a demonstration and a test
fixture, not an assistant.

| | |
| --- | --- |
| architecture | `LlamaForCausalLM`: {cfg['num_hidden_layers']} layers, hidden {cfg['hidden_size']}, {cfg['num_attention_heads']} heads × {cfg['head_dim']} (GQA, {cfg['num_key_value_heads']} KV heads), SwiGLU {cfg['intermediate_size']}, RMSNorm, RoPE θ={cfg['rope_theta']:g}, tied embeddings |
| parameters | {log['parameters']:,} (float32 safetensors) |
| context | {cfg['max_position_embeddings']} tokens (trained on windows of {log['seq']}) |
| tokenizer | SentencePiece BPE, {cfg['vocab_size']} pieces, byte fallback, `<unk>`=0 `<s>`=1 `</s>`=2 (`tokenizer.model`; `tokenizer.json` is the same tokenizer in Hugging Face form, checked to encode identically) |
| corpus | {log['corpus']}: {log['chapters']} chapters, {log['verses']:,} verses (sha256 of the verse text `{log['corpus_sha256'][:16]}…`); every 40th chapter held out for validation; plus 2 chat-formatted samples per chapter (user: the first words of a verse, assistant: the rest) |
| training | {log['steps']} steps × {log['batch']} windows × {log['seq']} tokens (≈{log['steps'] * log['batch'] * log['seq'] / 1e6:.1f} M tokens, ≈{log['steps'] * log['batch'] * log['seq'] / log['train_tokens']:.1f} epochs), AdamW lr {log['lr']} (warm-up 100, cosine to 10 %), weight decay 0.1, clip 1.0, seed {log['seed']}, {log['threads']} CPU thread, PyTorch {log['torch']}, {log['minutes']} min |
| final loss | train {log['final_train_loss']} (mean of the last 50 steps), validation {log['final_val_loss']} (nats/token) |
| files | {size / 1e6:.1f} MB in all; `model.safetensors` sha256 `{weights_sha}` |

Chat template (`tokenizer_config.json`): `### User:\\n…\\n### Assistant:\\n`; the model saw that format in
training and answers by continuing the verse.

## Greedy samples

Produced by `tools/train/check_greedy.py` (PyTorch; the numpy reference `tools/reference_forward.py`
gives the same tokens); stored with their token ids in `greedy_check.json`.

{sample_txt}

## Reproduce

```
tools/train/train.py --out models/default     # installs tools/train/apt-packages.txt if missing
tools/train/make_card.py models/default
```

Everything is seeded and runs on one thread, so a run on the same Debian 12 packages gives the same
steps; the losses should match those above to within ±0.05 (different BLAS builds or CPUs change
float rounding); on the machine that made it, a second run from scratch gave the same losses at
every logged step and a byte-identical `model.safetensors`. `train.py` stops early (and says so) if a run passes `--max-minutes` (34).
`training_log.json` holds the loss curve.

## License

See `LICENSE`: the corpus is in the public domain; the weights and tokenizer are released under the
license of the runnel project.
"""
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(card)
    with open(os.path.join(out, "LICENSE"), "w") as f:
        f.write("""runnel default model: license note

Training corpus: the King James Version of the Bible (1611), as packaged by Debian in
bible-kjv-text. The text's copyright has expired; it is in the public domain (the Debian package's
copyright file: "The copyright for the King James Version text of the Bible is expired").

The model weights (model.safetensors), the tokenizer (tokenizer.model, tokenizer.json) and the
configuration files in this folder were produced by runnel's own scripts (tools/train/) and are
distributed under the same license as the runnel project itself.
""")
    print(card)


if __name__ == "__main__":
    main()
