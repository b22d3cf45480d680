# Checks the committed default model folder (models/default): files and size, a tokenizer.json of
# the SentencePiece-BPE-with-byte-fallback structure runnel reads, prompts that encode to the stored
# ids, and the numpy reference reproducing the stored greedy continuation made with PyTorch.
import json
import os
import sys
import unittest

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
import reference_forward as ref  # noqa: E402
import spm_tokenizer as spt  # noqa: E402

MODEL = os.path.join(ROOT, "models", "default")


def load(name):
    with open(os.path.join(MODEL, name), encoding="utf-8") as f:
        return json.load(f)


@unittest.skipUnless(os.path.exists(os.path.join(MODEL, "greedy_check.json")),
                     "models/default not built")
class DefaultModelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cfg, cls.w = ref.load_model(MODEL)
        cls.tok = load("tokenizer.json")
        cls.check = load("greedy_check.json")

    def test_files_and_size(self):
        names = set(os.listdir(MODEL))
        for n in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                  "generation_config.json", "README.md", "LICENSE"):
            self.assertIn(n, names)
        size = sum(os.path.getsize(os.path.join(MODEL, n)) for n in names)
        self.assertLess(size, 8 * 1000 * 1000)
        self.assertEqual(self.cfg["architectures"], ["LlamaForCausalLM"])
        n_params = sum(v.size for v in self.w.values())
        self.assertTrue(1_000_000 <= n_params <= 4_000_000, n_params)

    def test_tokenizer_structure(self):
        m = self.tok["model"]
        self.assertEqual(m["type"], "BPE")
        self.assertTrue(m["byte_fallback"])
        self.assertEqual(len(m["vocab"]), self.cfg["vocab_size"])
        self.assertEqual(m["vocab"]["<0x00>"], 3)
        self.assertEqual(m["vocab"]["<0xFF>"], 258)
        self.assertEqual([t["content"] for t in self.tok["added_tokens"]],
                         ["<unk>", "<s>", "</s>"])
        self.assertEqual(self.tok["normalizer"]["normalizers"][0]["type"], "Prepend")
        tc = load("tokenizer_config.json")
        self.assertEqual((tc["bos_token"], tc["eos_token"]), ("<s>", "</s>"))
        self.assertIn("### Assistant:", tc["chat_template"])

    def test_prompts_encode_to_stored_ids(self):
        enc = spt.HFBPE(self.tok)
        for s in self.check["samples"]:
            text = f"### User:\n{s['prompt']}\n### Assistant:\n" if s["chat"] else s["prompt"]
            self.assertEqual([1] + enc.encode(text), s["prompt_ids"])

    def test_reference_reproduces_greedy(self):
        s = self.check["samples"][0]
        seq = list(s["prompt_ids"])
        n = min(16, len(s["ids"]))
        for expected in s["ids"][:n]:
            logits = ref.forward(self.cfg, self.w, seq)[-1]
            top2 = np.sort(logits)[-2:]
            self.assertEqual(int(np.argmax(logits)), expected)
            seq.append(expected)
        self.assertGreater(top2[1] - top2[0], 0)


if __name__ == "__main__":
    unittest.main()
