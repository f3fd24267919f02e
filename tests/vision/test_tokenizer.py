"""The torch-free tokenizers give exactly the ids open_clip's tokenizers give."""

from __future__ import annotations

import numpy as np
import pytest
from open_clip.tokenizer import SimpleTokenizer, default_bpe, get_clean_fn

from vision.tokenizer import ClipTokenizer, clean_text

TEXTS = [
    "gold hoop earring with red stone",
    "Café LAMP &amp; wooden chair — 50% off!!",
    "naïve façade, \uff26\uff35\uff2c\uff2c (fullwidth) text and emoji 😀👜",
    "don't   stop   believin'\n\ttabs and newlines",
    "",
    "1234567890 ¥€$ 3.5mm",
    "a <start_of_text> literal and <end_of_text> literal",
    "very " * 120 + "long",
    "漢字とひらがな、한국어",
    "Ã©tÃ© mojibake that ftfy repairs",
]


def test_clip_bpe_matches_open_clip():
    ours = ClipTokenizer(default_bpe())
    theirs = SimpleTokenizer()
    got = ours(TEXTS)
    assert got.dtype == np.int64 and got.shape == (len(TEXTS), 77)
    np.testing.assert_array_equal(got, theirs(TEXTS).numpy())


@pytest.mark.parametrize("mode", ["lower", "whitespace", "canonicalize"])
def test_cleaning_matches_open_clip(mode):
    theirs = get_clean_fn(mode)
    for text in [*TEXTS, "snake_case_name, with: punctuation!?", "  Tabs\tand\nNew   lines  "]:
        assert clean_text(text, mode) == theirs(text), text


def test_truncation_keeps_end_of_text_last():
    ours = ClipTokenizer(default_bpe(), context_length=16)
    ids = ours("word " * 40)[0]
    assert ids[0] == ours.sot_id and ids[-1] == ours.eot_id and (ids != 0).all()


def test_hf_tokenizer_pads_truncates_and_cleans(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    from vision.hf_tokenizer import HfTokenizer

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, "gold": 3, "hoop": 4, "earring": 5}
    tokenizer = tokenizers.Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = Whitespace()
    path = tmp_path / "tokenizer.json"
    tokenizer.save(str(path))

    canon = HfTokenizer(path, context_length=4, clean="canonicalize", pad_id=0)
    ids = canon(["Gold,  HOOP!", "gold hoop earring gold hoop"])
    np.testing.assert_array_equal(ids, [[3, 4, 0, 0], [3, 4, 5, 3]])
    plain = HfTokenizer(path, context_length=4, clean="whitespace", pad_id=0)
    assert plain(["Gold hoop"])[0].tolist() == [2, 4, 0, 0]  # case kept: "Gold" is unknown


def test_hf_tokenizer_export_matches_open_clip(tmp_path):
    """A SigLIP-style tokenizer (WordLevel + EOS template), saved by export, tokenises as open_clip does."""
    pytest.importorskip("transformers")
    from open_clip.tokenizer import HFTokenizer
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    from vision.export import _save_tokenizer
    from vision.hf_tokenizer import HfTokenizer

    words = ["gold", "hoop", "earring", "red", "stone", "mug", "snake", "case"]
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    backend = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = Whitespace()
    backend.post_processor = TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    source = tmp_path / "hf-source"
    PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", eos_token="</s>"
    ).save_pretrained(source)
    reference = HFTokenizer(str(source), context_length=6, clean="canonicalize")
    exported = tmp_path / "exported"
    exported.mkdir()
    info = _save_tokenizer(reference, exported)
    assert info["kind"] == "hf" and info["clean"] == "canonicalize" and info["context_length"] == 6
    ours = HfTokenizer(exported / info["file"], context_length=6, clean=info["clean"], pad_id=info["pad_id"])
    texts = ["Gold HOOP earring!", "red_stone mug", "", "gold gold gold gold gold gold gold gold", "unknown words"]
    np.testing.assert_array_equal(ours(texts), reference(texts).numpy())
