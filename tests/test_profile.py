"""The profile command: the per-block table of one model, through the one settings parser."""

from __future__ import annotations

import json


def test_profile_command(tiny_gpt2, tmp_path, capsys):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from lm_eval_emergence.data import COUNTRIES
    from lm_eval_emergence.profile import main

    vocab = {"[UNK]": 0, ",": 1, **{c: i + 2 for i, c in enumerate(COUNTRIES[:20])}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    model_dir = tmp_path / "tiny"
    tiny_gpt2.save_pretrained(model_dir)
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]").save_pretrained(model_dir)
    out = tmp_path / "profile.json"
    argv = ["--model", str(model_dir), "--n", "128", "--k", "3", "--estimator", "gaussian"]
    argv += ["-o", "shrinkage=ledoit-wolf"]  # a string value
    argv += ["-o", "reduce_dim=8"]  # a literal
    assert main([*argv, "--per-position", "--json", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "IE (mean over blocks)" in text and "'e1,e2,...,ek,'" in text
    record = json.loads(out.read_text())
    assert [row["layer"] for row in record["per_layer"]] == [0, 1, 2]
    assert record["seq_len"] == 6 and record["n"] == 128
    assert record["data"]["entities"] == list(COUNTRIES[:20])
    assert len(record["per_position"]) == 6
    assert record["estimator_options"]["reduce_dim"] == 8
    assert record["estimator_options"]["shrinkage"] == "ledoit-wolf"
    assert main(["--model", str(tmp_path / "missing"), "--quiet"]) == 2
    assert main([*argv, "--k", "30", "--quiet"]) == 2  # too few entities: an error, exit 2
    assert "are needed" in capsys.readouterr().err
    # settings go through the one parser: "none" is the full width, 0 is an error naming it
    assert main([*argv, "--projection-dim", "none", "--quiet"]) == 0
    assert "hidden dim                     32\n" in capsys.readouterr().out
    assert main([*argv, "--projection-dim", "0", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "projection_dim (ie_projection_dim) must be an integer >= 1 or 'none'" in err
