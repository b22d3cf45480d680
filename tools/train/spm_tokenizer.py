# The default model's tokenizer: a SentencePiece BPE model with byte fallback (trained with Debian's
# python3-sentencepiece), its conversion to a Hugging Face tokenizer.json of the same structure as
# Mistral's/Llama-2's (Prepend+Replace normalizer, BPE vocab + merges, byte_fallback), and a small
# pure-Python encoder of that tokenizer.json used to check that both encode text identically.
import json
import os

SPECIALS = ["<unk>", "<s>", "</s>"]  # ids 0, 1, 2; then <0x00>..<0xFF> at 3..258


def train_spm(corpus_path, prefix, vocab_size):
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        input=corpus_path, model_prefix=prefix, vocab_size=vocab_size, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, normalization_rule_name="identity",
        remove_extra_whitespaces=False, add_dummy_prefix=True, split_digits=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, input_sentence_size=0,
        shuffle_input_sentence=False, max_sentence_length=8192, minloglevel=2)
    return prefix + ".model"


def load_spm(path):
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=path)


def hf_vocab_and_merges(sp):
    """vocab: piece -> id; merges ranked by the id of the merged piece (= SentencePiece score
    order), several splits of one piece ordered by (left id, right id), as HF's converter does."""
    n = sp.get_piece_size()
    vocab = {sp.id_to_piece(i): i for i in range(n)}
    merges = []
    for i in range(n):
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i):
            continue
        piece = sp.id_to_piece(i)
        local = []
        for k in range(1, len(piece)):
            left, right = piece[:k], piece[k:]
            if left in vocab and right in vocab:
                local.append((vocab[left], vocab[right], left, right))
        local.sort()
        merges += [f"{l} {r}" for _, _, l, r in local]
    return vocab, merges


def tokenizer_json(sp):
    vocab, merges = hf_vocab_and_merges(sp)
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, t in enumerate(SPECIALS)]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": True, "vocab": vocab, "merges": merges},
    }


CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\\n' }}"
    "{% elif message['role'] == 'user' %}{{ '### User:\\n' + message['content'] + '\\n' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ '### Assistant:\\n' + message['content'] + eos_token + '\\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '### Assistant:\\n' }}{% endif %}")


def tokenizer_config_json(model_max_length):
    added = {str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                      "single_word": False, "special": True} for i, t in enumerate(SPECIALS)}
    return {"add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": added,
            "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None,
            "clean_up_tokenization_spaces": False, "legacy": True,
            "model_max_length": model_max_length, "spaces_between_special_tokens": False,
            "tokenizer_class": "LlamaTokenizer", "chat_template": CHAT_TEMPLATE}


def write_hf_files(sp, out_dir, model_max_length):
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_json(sp), f, ensure_ascii=False, indent=1)
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_config_json(model_max_length), f, ensure_ascii=False, indent=2)


class HFBPE:
    """Encodes plain text (no special tokens in it) as the tokenizer.json above specifies."""

    def __init__(self, tok):
        m = tok["model"]
        self.vocab = m["vocab"]
        self.ranks = {tuple(s.split(" ")): r for r, s in enumerate(m["merges"])}

    def encode(self, text):
        s = "\u2581" + text.replace(" ", "\u2581")
        syms = list(s)
        while len(syms) > 1:
            best, at = None, -1
            for i in range(len(syms) - 1):
                r = self.ranks.get((syms[i], syms[i + 1]))
                if r is not None and (best is None or r < best):
                    best, at = r, i
            if best is None:
                break
            pair = (syms[at], syms[at + 1])
            out, i = [], 0
            while i < len(syms):  # merge every occurrence of the best pair, left to right
                if i + 1 < len(syms) and (syms[i], syms[i + 1]) == pair:
                    out.append(syms[i] + syms[i + 1])
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            syms = out
        ids = []
        for t in syms:
            if t in self.vocab:
                ids.append(self.vocab[t])
            else:
                ids += [self.vocab[f"<0x{b:02X}>"] for b in t.encode("utf-8")]
        return ids
