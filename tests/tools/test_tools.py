# Self-tests of tools/: the tiny-model generator (determinism, GGUF layout read back by an
# independent parser, GGML quantization layouts, Llama Q/K permutation) and the numpy reference
# forward pass (every arch; GGUF-layout weights with interleaved RoPE give the same logits).
import hashlib
import json
import os
import struct
import sys
import tempfile
import unittest

import numpy as np

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")
sys.path.insert(0, TOOLS)
import gen_tiny_model  # noqa: E402
import reference_forward as ref  # noqa: E402
import tinymodel  # noqa: E402

ARCHS = ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"]


# ---------------------------------------------------------------------------------------------
# An independent GGUF reader (written from the GGUF v3 spec, sharing nothing with the writer)


class GGUF:
    SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
               10: "<Q", 11: "<q", 12: "<d"}

    def __init__(self, path):
        with open(path, "rb") as f:
            self.buf = f.read()
        self.pos = 0
        assert self.take(4) == b"GGUF"
        self.version = self.unpack("<I")
        n_tensors = self.unpack("<Q")
        n_kv = self.unpack("<Q")
        self.kv = {}
        self.kv_types = {}
        for _ in range(n_kv):
            key = self.string()
            vt = self.unpack("<I")
            self.kv_types[key] = vt
            self.kv[key] = self.value(vt)
        self.infos = {}
        for _ in range(n_tensors):
            name = self.string()
            nd = self.unpack("<I")
            ne = [self.unpack("<Q") for _ in range(nd)]
            gt = self.unpack("<I")
            off = self.unpack("<Q")
            self.infos[name] = (ne, gt, off)
        self.alignment = self.kv.get("general.alignment", 32)
        self.data_start = (self.pos + self.alignment - 1) // self.alignment * self.alignment

    def take(self, n):
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt):
        (v,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return v

    def string(self):
        return self.take(self.unpack("<Q")).decode("utf-8")

    def value(self, vt):
        if vt == 8:
            return self.string()
        if vt == 9:
            et = self.unpack("<I")
            return [self.value(et) for _ in range(self.unpack("<Q"))]
        return self.unpack(self.SCALARS[vt])

    def tensor(self, name):
        """float32 array with numpy shape (reversed ne), dequantized."""
        ne, gt, off = self.infos[name]
        n = int(np.prod(ne))
        start = self.data_start + off
        if gt == 0:
            x = np.frombuffer(self.buf, "<f4", n, start)
        elif gt == 1:
            x = np.frombuffer(self.buf, "<f2", n, start).astype(np.float32)
        elif gt == 30:
            x = (np.frombuffer(self.buf, "<u2", n, start).astype(np.uint32) << 16).view(np.float32)
        elif gt == 8:  # Q8_0: 34-byte blocks
            x = np.empty(n, np.float32)
            for b in range(n // 32):
                o = start + 34 * b
                d = np.frombuffer(self.buf, "<f2", 1, o)[0]
                x[32 * b:32 * b + 32] = np.float32(d) * np.frombuffer(self.buf, "i1", 32, o + 2)
        elif gt == 2:  # Q4_0: 18-byte blocks
            x = np.empty(n, np.float32)
            for b in range(n // 32):
                o = start + 18 * b
                d = np.float32(np.frombuffer(self.buf, "<f2", 1, o)[0])
                qs = self.buf[o + 2:o + 18]
                for j in range(16):
                    x[32 * b + j] = d * ((qs[j] & 15) - 8)
                    x[32 * b + j + 16] = d * ((qs[j] >> 4) - 8)
        else:
            raise AssertionError(f"unexpected ggml type {gt}")
        return x.reshape(list(reversed(ne)))


def gen(out, *args):
    gen_tiny_model.main(["--out", out, *args])


def load_json(*parts):
    with open(os.path.join(*parts), encoding="utf-8") as f:
        return json.load(f)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def p(self, name):
        return os.path.join(self.d, name)


class GeneratorTest(Base):
    def test_deterministic_and_seed_dependent(self):
        for fmt, name in (("gguf", "m.gguf"), ("safetensors", "m")):
            gen(self.p("a_" + name), "--format", fmt, "--seed", "3")
            gen(self.p("b_" + name), "--format", fmt, "--seed", "3")
            gen(self.p("c_" + name), "--format", fmt, "--seed", "4")
        self.assertEqual(sha(self.p("a_m.gguf")), sha(self.p("b_m.gguf")))
        self.assertNotEqual(sha(self.p("a_m.gguf")), sha(self.p("c_m.gguf")))
        st = lambda x: sha(os.path.join(self.p(x), "model.safetensors"))
        self.assertEqual(st("a_m"), st("b_m"))
        self.assertNotEqual(st("a_m"), st("c_m"))

    def test_same_tensor_in_every_format(self):
        gen(self.p("st"), "--arch", "Qwen2ForCausalLM", "--dtype", "bf16")
        gen(self.p("g.gguf"), "--arch", "Qwen2ForCausalLM", "--format", "gguf", "--dtype", "f32")
        w = ref.read_safetensors(os.path.join(self.p("st"), "model.safetensors"))
        g = GGUF(self.p("g.gguf"))
        a = w["model.layers.1.mlp.up_proj.weight"]
        b = g.tensor("blk.1.ffn_up.weight").astype(np.float64)
        self.assertEqual(a.shape, b.shape)
        np.testing.assert_allclose(a, b, rtol=1 / 128)  # bf16 rounding of the same values
        self.assertFalse(np.array_equal(a, b))

    def test_config_fields(self):
        gen(self.p("q3"), "--arch", "Qwen3ForCausalLM", "--hidden", "64", "--heads", "4",
            "--head-dim", "32", "--tied", "--rope-scaling", "llama3")
        cfg = load_json(self.p("q3"), "config.json")
        self.assertEqual(cfg["architectures"], ["Qwen3ForCausalLM"])
        self.assertEqual(cfg["head_dim"], 32)
        self.assertTrue(cfg["tie_word_embeddings"])
        self.assertEqual(cfg["rope_scaling"]["rope_type"], "llama3")
        w = ref.read_safetensors(os.path.join(self.p("q3"), "model.safetensors"))
        self.assertEqual(w["model.layers.0.self_attn.q_proj.weight"].shape, (128, 64))
        self.assertEqual(w["model.layers.0.self_attn.q_norm.weight"].shape, (32,))
        self.assertNotIn("lm_head.weight", w)
        tok = load_json(self.p("q3"), "tokenizer.json")
        vocab = tok["model"]["vocab"]
        ids = set(vocab.values()) | {t["id"] for t in tok["added_tokens"]}
        self.assertEqual(ids, set(range(cfg["vocab_size"])))
        for m in tok["model"]["merges"]:
            a, b = m.split(" ")
            self.assertIn(a, vocab)
            self.assertIn(a + b, vocab)
        added = {t["content"]: t["id"] for t in tok["added_tokens"]}
        self.assertEqual(added["<s>"], cfg["bos_token_id"])
        self.assertEqual(added["</s>"], cfg["eos_token_id"])


class GGUFTest(Base):
    def test_layout_every_arch(self):
        for arch in ARCHS:
            with self.subTest(arch=arch):
                path = self.p(arch + ".gguf")
                gen(path, "--arch", arch, "--format", "gguf", "--layers", "2", "--untied")
                g = GGUF(path)
                self.assertEqual(g.version, 3)
                a = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "llama",
                     "Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3"}[arch]
                self.assertEqual(g.kv["general.architecture"], a)
                self.assertEqual(g.kv[f"{a}.block_count"], 2)
                self.assertEqual(g.kv[f"{a}.embedding_length"], 64)
                self.assertEqual(g.kv[f"{a}.attention.head_count_kv"], 2)
                self.assertEqual(g.kv[f"{a}.rope.dimension_count"], 16)
                self.assertEqual(g.kv_types[f"{a}.rope.freq_base"], 6)
                self.assertEqual(g.kv["tokenizer.ggml.model"], "gpt2")
                self.assertEqual(len(g.kv["tokenizer.ggml.tokens"]), 320)
                self.assertEqual(g.kv["tokenizer.ggml.bos_token_id"], 318)
                self.assertIn("output.weight", g.infos)
                self.assertEqual(g.infos["token_embd.weight"][0], [64, 320])
                self.assertEqual(g.infos["blk.1.attn_k.weight"][0], [64, 32])
                self.assertEqual("blk.0.attn_q.bias" in g.infos, a == "qwen2")
                self.assertEqual("blk.0.attn_q_norm.weight" in g.infos, a == "qwen3")
                for ne, gt, off in g.infos.values():
                    self.assertEqual(off % 32, 0)
                self.assertEqual(g.data_start % 32, 0)

    def test_tokenizer_matches_safetensors(self):
        gen(self.p("st"))
        gen(self.p("g.gguf"), "--format", "gguf")
        g = GGUF(self.p("g.gguf"))
        tok = load_json(self.p("st"), "tokenizer.json")
        tokens = g.kv["tokenizer.ggml.tokens"]
        for t, i in tok["model"]["vocab"].items():
            self.assertEqual(tokens[i], t)
        self.assertEqual(g.kv["tokenizer.ggml.merges"], tok["model"]["merges"])
        types = g.kv["tokenizer.ggml.token_type"]
        for t in tok["added_tokens"]:
            self.assertEqual(tokens[t["id"]], t["content"])
            self.assertEqual(types[t["id"]], 3)

    def test_quantized_close_and_norms_f32(self):
        gen(self.p("st"), "--untied")
        w = ref.read_safetensors(os.path.join(self.p("st"), "model.safetensors"))
        for dtype, gt, tol in (("q8_0", 8, 0.6 / 127), ("q4_0", 2, 1.05 / 8)):
            path = self.p(dtype + ".gguf")
            gen(path, "--format", "gguf", "--dtype", dtype, "--untied")
            g = GGUF(path)
            self.assertEqual(g.infos["blk.0.ffn_down.weight"][1], gt)
            self.assertEqual(g.infos["blk.0.attn_norm.weight"][1], 0)
            x = w["model.layers.0.mlp.down_proj.weight"]
            y = g.tensor("blk.0.ffn_down.weight")
            amax = np.abs(x.reshape(-1, 32)).max(axis=1, keepdims=True)
            err = np.abs(x.reshape(-1, 32) - y.reshape(-1, 32))
            # q8_0: half a step plus the f16 rounding of d; q4_0: one step (the +8 end clamps)
            self.assertTrue(np.all(err <= amax * tol + 1e-6), dtype)
            self.assertLess(err.mean(), (amax * tol).mean() / 2, dtype)

    def test_q8_0_block_bytes(self):
        x = np.arange(32, dtype=np.float32) - 16  # amax 16 -> d = 16/127
        raw = tinymodel.quantize_q8_0(x.reshape(1, 32))
        self.assertEqual(len(raw), 34)
        d = np.frombuffer(raw[:2], "<f2")[0]
        self.assertEqual(d, np.float16(16 / 127))
        q = np.frombuffer(raw[2:], "i1")
        self.assertEqual(q[0], -127)
        self.assertEqual(q[31], round(15 * 127 / 16))
        self.assertEqual(q[16], 0)

    def test_q4_0_block_bytes(self):
        x = np.zeros(32, np.float32)
        x[0], x[1], x[16], x[17] = -8.0, 4.0, 7.0, -1.0  # largest magnitude -8 -> d = 1
        raw = tinymodel.quantize_q4_0(x.reshape(1, 32))
        self.assertEqual(len(raw), 18)
        self.assertEqual(np.frombuffer(raw[:2], "<f2")[0], np.float16(1.0))
        qs = raw[2:]
        self.assertEqual(qs[0], 0 | (15 << 4))  # x0=-8 -> 0 (low), x16=7 -> 15 (high)
        self.assertEqual(qs[1], 12 | (7 << 4))  # x1=4 -> 12, x17=-1 -> 7
        self.assertEqual(qs[2], 8 | (8 << 4))
        y = np.zeros(32, np.float32)
        y[5] = 8.0  # positive max: d = -1, 8 -> trunc(-8 + 8.5) = 0, clamped small values -> 8
        raw = tinymodel.quantize_q4_0(y.reshape(1, 32))
        self.assertEqual(np.frombuffer(raw[:2], "<f2")[0], np.float16(-1.0))
        self.assertEqual(raw[2 + 5] & 15, 0)

    def test_llama3_rope_freqs_tensor(self):
        gen(self.p("l.gguf"), "--format", "gguf", "--rope-scaling", "llama3")
        g = GGUF(self.p("l.gguf"))
        f = g.tensor("rope_freqs.weight")
        self.assertEqual(f.shape, (8,))
        cfg = {"rope_theta": 10000.0, "rope_scaling": {
            "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}
        base = 1.0 / 10000.0 ** (np.arange(0, 16, 2) / 16)
        np.testing.assert_allclose(base / f, ref.inv_freq(cfg, 16), rtol=1e-6)
        self.assertEqual(f[0], 1.0)
        self.assertEqual(f[-1], 8.0)


class PermutationTest(Base):
    def test_round_trip(self):
        w = np.arange(6 * 16 * 5, dtype=np.float32).reshape(6 * 16, 5)
        p = tinymodel.permute_qk(w, 6)
        self.assertFalse(np.array_equal(p, w))
        np.testing.assert_array_equal(tinymodel.unpermute_qk(p, 6), w)
        # row 2j of a head is HF row j, row 2j+1 is HF row j + head_dim/2
        np.testing.assert_array_equal(p[2 * 3], w[3])
        np.testing.assert_array_equal(p[2 * 3 + 1], w[3 + 8])
        np.testing.assert_array_equal(p[16 + 2 * 7 + 1], w[16 + 7 + 8])

    def test_gguf_rows_unpermute_to_hf(self):
        gen(self.p("st"), "--arch", "LlamaForCausalLM", "--heads", "4", "--kv-heads", "2")
        gen(self.p("g.gguf"), "--arch", "LlamaForCausalLM", "--format", "gguf")
        w = ref.read_safetensors(os.path.join(self.p("st"), "model.safetensors"))
        g = GGUF(self.p("g.gguf"))
        q = g.tensor("blk.0.attn_q.weight")
        k = g.tensor("blk.0.attn_k.weight")
        np.testing.assert_array_equal(tinymodel.unpermute_qk(q, 4),
                                      w["model.layers.0.self_attn.q_proj.weight"])
        np.testing.assert_array_equal(tinymodel.unpermute_qk(k, 2),
                                      w["model.layers.0.self_attn.k_proj.weight"])
        self.assertFalse(np.array_equal(q, w["model.layers.0.self_attn.q_proj.weight"]))


def interleaved_rope(x, positions, freqs):
    """GGML 'normal' RoPE: pairs (2i, 2i+1) rotate by freq i."""
    ang = positions[:, None] * freqs[None, :]
    cos = np.cos(ang)[:, None, :]
    sin = np.sin(ang)[:, None, :]
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = b * cos + a * sin
    return out


GGUF_TO_HF = {v: k for k, v in gen_tiny_model.GGUF_NAMES}


def gguf_as_hf(g):
    """The GGUF's tensors under HF names, dequantized, rows left as stored (permuted for llama)."""
    w = {}
    for name in g.infos:
        if name == "token_embd.weight":
            hf = "model.embed_tokens.weight"
        elif name == "output_norm.weight":
            hf = "model.norm.weight"
        elif name == "output.weight":
            hf = "lm_head.weight"
        elif name == "rope_freqs.weight":
            continue
        else:
            _, i, rest = name.split(".", 2)
            hf = f"model.layers.{i}.{GGUF_TO_HF[rest]}"
        w[hf] = g.tensor(name).astype(np.float64)
    return w


class ReferenceForwardTest(Base):
    TOKENS = [318, 5, 77, 200, 31, 9]

    def test_every_arch_runs_and_is_causal(self):
        for arch in ARCHS:
            with self.subTest(arch=arch):
                d = self.p(arch)
                gen(d, "--arch", arch)
                cfg, w = ref.load_model(d)
                logits = ref.forward(cfg, w, self.TOKENS)
                self.assertEqual(logits.shape, (6, 320))
                self.assertTrue(np.all(np.isfinite(logits)))
                self.assertGreater(logits.std(), 0.1)
                np.testing.assert_allclose(ref.forward(cfg, w, self.TOKENS[:3]), logits[:3],
                                           rtol=1e-10, atol=1e-10)
                # the last position depends on earlier tokens
                other = ref.forward(cfg, w, [318, 6] + self.TOKENS[2:])
                self.assertFalse(np.allclose(other[-1], logits[-1]))

    def test_dtypes_agree(self):
        gen(self.p("f32"), "--arch", "Qwen3ForCausalLM")
        gen(self.p("f16"), "--arch", "Qwen3ForCausalLM", "--dtype", "f16")
        a = ref.forward(*ref.load_model(self.p("f32")), self.TOKENS)
        b = ref.forward(*ref.load_model(self.p("f16")), self.TOKENS)
        self.assertLess(np.abs(a - b).max(), 0.05)
        self.assertGreater(np.abs(a - b).max(), 0)

    def test_gguf_layout_gives_same_logits(self):
        """Llama GGUF (permuted rows + interleaved RoPE) == HF layout + rotate-half RoPE;
        Qwen GGUF (unpermuted, NeoX RoPE) likewise; with llama3 scaling for llama."""
        cases = [("LlamaForCausalLM", interleaved_rope, ["--rope-scaling", "llama3",
                                                         "--rope-orig-ctx", "64"]),
                 ("MistralForCausalLM", interleaved_rope, []),
                 ("Qwen2ForCausalLM", ref.rope, []),
                 ("Qwen3ForCausalLM", ref.rope, ["--head-dim", "32"])]
        for arch, rope_fn, extra in cases:
            with self.subTest(arch=arch):
                gen(self.p(arch), "--arch", arch, *extra)
                gen(self.p(arch + ".gguf"), "--arch", arch, "--format", "gguf", *extra)
                cfg, w = ref.load_model(self.p(arch))
                expected = ref.forward(cfg, w, self.TOKENS)
                gw = gguf_as_hf(GGUF(self.p(arch + ".gguf")))
                saved = ref.rope
                ref.rope = rope_fn
                try:
                    got = ref.forward(cfg, gw, self.TOKENS)
                finally:
                    ref.rope = saved
                np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)

    def test_fake_quant_matches_q8_0_gguf(self):
        gen(self.p("st"), "--fake-quant", "q8_0")
        gen(self.p("g.gguf"), "--format", "gguf", "--dtype", "q8_0")
        cfg, w = ref.load_model(self.p("st"))
        gw = gguf_as_hf(GGUF(self.p("g.gguf")))
        np.testing.assert_array_equal(gw["model.layers.0.mlp.gate_proj.weight"],
                                      w["model.layers.0.mlp.gate_proj.weight"])

    def test_tied_uses_embedding_and_greedy(self):
        gen(self.p("t"), "--tied")
        cfg, w = ref.load_model(self.p("t"))
        x = ref.forward(cfg, w, self.TOKENS)
        w2 = dict(w)
        w2["model.embed_tokens.weight"] = w["model.embed_tokens.weight"] * 2
        self.assertFalse(np.allclose(ref.forward(cfg, w2, self.TOKENS), x))
        out = ref.greedy(cfg, w, self.TOKENS, 3)
        self.assertEqual(out[0], int(np.argmax(x[-1])))
        self.assertEqual(len(out), 3)

    def test_cli_writes_npy(self):
        gen(self.p("m"))
        ref.main([self.p("m"), "--tokens", "1,2,3", "--out", self.p("l.npy")])
        a = np.load(self.p("l.npy"))
        self.assertEqual(a.dtype, np.float32)
        self.assertEqual(a.shape, (3, 320))


if __name__ == "__main__":
    unittest.main()
