"""The curation command on files as public data sets are released, and on bad inputs: JSON arrays, field
mappings, mixed formats, encodings, strict JSON, output paths, exit codes, options checked before any work."""

import json

import pytest

from course_lib.curation import validate_file
from course_lib.curation.__main__ import main

ALPACA = [{"instruction": "Add 2 and 3.", "input": "", "response": "2 + 3 = 5"},
          {"instruction": "What is 450,000-2000?", "input": "", "response": "450,000-2000 = 448,000"},
          {"instruction": "Write to me at maria.lopez42@example.com about the refund.", "input": "",
           "response": "Done."}]
MESSAGES = {"messages": [{"role": "user", "content": "Hi there, how are you?"},
                         {"role": "assistant", "content": "Fine."}]}


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_json_array_with_a_field_mapping_is_cleaned(tmp_path, capsys):
    src = tmp_path / "data.json"
    src.write_text(json.dumps(ALPACA, indent=2), encoding="utf-8")
    code, _, err = run(capsys, "clean", src, tmp_path / "out.jsonl")
    assert code == 2 and "'response'" in err and "--map response=output" in err, ("the fields found and the fix "
                                                                                   "are named")
    code, out, _ = run(capsys, "clean", src, tmp_path / "out.jsonl", "--map", "response=output")
    assert code == 0 and json.loads(out)["kept"] == 3
    assert validate_file(src, mapping={"response": "output"}).lines == 3, "an array's rows are its elements"
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows[1]["messages"][1]["content"] == "450,000-2000 = 448,000", "arithmetic is not redacted"
    changes = [json.loads(line) for line in (tmp_path / "out.changes.jsonl").read_text(encoding="utf-8").splitlines()]
    assert changes == [{"line": 12, "field": "messages[0].content", "role": "user", "kind": "EMAIL", "start": 15,
                        "end": 40}]


def test_no_redact_leaves_every_row_as_it_was(tmp_path, capsys):
    src = tmp_path / "data.json"
    src.write_text(json.dumps(ALPACA), encoding="utf-8")
    code, _, _ = run(capsys, "clean", src, tmp_path / "out.jsonl", "--map", "response=output", "--no-redact")
    assert code == 0 and "maria.lopez42@example.com" in (tmp_path / "out.jsonl").read_text(encoding="utf-8")
    assert (tmp_path / "out.changes.jsonl").read_text() == ""


def test_a_mixed_file_keeps_the_rows_of_every_format(tmp_path):
    src = tmp_path / "mixed.jsonl"
    alpaca = {"instruction": "Name a colour of the sky.", "input": "", "output": "Blue."}
    sharegpt = {"conversations": [{"from": "human", "value": "Say yes."}, {"from": "gpt", "value": "Yes."}]}
    src.write_text("\n".join(json.dumps(r) for r in [MESSAGES] * 5 + [alpaca, sharegpt]) + "\n", encoding="utf-8")
    result = validate_file(src)
    assert len(result.records) == 7 and result.problems == []


def test_bom_bad_bytes_nan_and_deep_nesting_are_reported_per_line(tmp_path):
    src = tmp_path / "odd.jsonl"
    lines = [b"\xef\xbb\xbf" + json.dumps(MESSAGES).encode(),
             json.dumps(MESSAGES).replace("Fine.", "Fin\u00e9.").encode("latin-1"),
             b'{"messages": [], "score": NaN}', b"[" * 50_000, json.dumps(MESSAGES).encode()]
    src.write_bytes(b"\n".join(lines) + b"\n")
    result = validate_file(src)
    assert [r.line for r in result.records] == [1, 5], "the byte-order mark does not cost row 1"
    assert [(p.line, p.code) for p in result.problems] == [(2, "invalid_encoding"), (3, "invalid_json"),
                                                           (4, "invalid_json")]
    assert "not UTF-8" in result.problems[0].detail and "\\xe9" in result.problems[0].text, "nothing replaced by U+FFFD"
    assert "NaN" in result.problems[1].detail and "nested too deeply" in result.problems[2].detail


def test_a_huge_row_is_refused_unread(tmp_path):
    big = {"messages": [{"role": "user", "content": "x " * 2_000_000}, {"role": "assistant", "content": "ok"}]}
    src = tmp_path / "big.jsonl"
    src.write_text(json.dumps(MESSAGES) + "\n" + json.dumps(big) + "\n", encoding="utf-8")
    result = validate_file(src)
    assert [(p.line, p.code) for p in result.problems] == [(2, "row_too_large")]
    assert "over the limit of 1,000,000" in result.problems[0].detail


def test_an_output_that_is_the_input_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    src = tmp_path / "data.jsonl"
    src.write_text(json.dumps(MESSAGES) + "\n", encoding="utf-8")
    before = src.read_bytes()
    monkeypatch.chdir(tmp_path)
    for out in ("data.jsonl", "./sub/../data.jsonl", tmp_path / "data.jsonl"):
        if "sub" in str(out):
            (tmp_path / "sub").mkdir(exist_ok=True)
        code, _, err = run(capsys, "clean", "data.jsonl", out)
        assert code == 2 and "is the input" in err
    assert src.read_bytes() == before


@pytest.mark.parametrize(("out", "message"), [(".", "is a folder"), ("data.jsonl/x.jsonl", "is a file, not a folder")])
def test_bad_output_paths_are_refused_before_any_work(tmp_path, capsys, monkeypatch, out, message):
    src = tmp_path / "data.jsonl"
    src.write_text(json.dumps(MESSAGES) + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("course_lib.curation.__main__.curate", lambda *a, **k: pytest.fail("work started"))
    code, _, err = run(capsys, "clean", "data.jsonl", out)
    assert code == 2 and message in err and "Traceback" not in err


def test_a_failed_write_leaves_the_old_output_intact(tmp_path, capsys, monkeypatch):
    src = tmp_path / "data.jsonl"
    src.write_text(json.dumps(MESSAGES) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    out.write_text("the old output\n", encoding="utf-8")

    def boom(row, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("course_lib.curation.output.dumps", boom)
    code, _, err = run(capsys, "clean", src, out)
    assert code == 2 and "No space left" in err
    assert out.read_text(encoding="utf-8") == "the old output\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize(("options", "message"), [
    (["--near-threshold", "1.5"], "above 0 and at most 1"),
    (["--near-threshold", "0"], "above 0 and at most 1"),
    (["--max-chars", "0"], "--max-chars must be"),
    (["--max-tokens", "100"], "--max-tokens needs --tokenizer"),
    (["--tokenizer", "./no_such_tokenizer"], "no such folder"),
    (["--map", "response"], "write OLD=NEW"),
])
def test_options_are_checked_before_any_work(tmp_path, capsys, options, message):
    src = tmp_path / "data.jsonl"
    src.write_text(json.dumps(MESSAGES) + "\n", encoding="utf-8")
    code, _, err = run(capsys, "clean", src, tmp_path / "out.jsonl", *options)
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out.jsonl").exists()


def test_nothing_kept_is_an_error_unless_allowed(tmp_path, capsys):
    src = tmp_path / "data.jsonl"
    src.write_text(json.dumps(MESSAGES) + "\n", encoding="utf-8")
    code, _, err = run(capsys, "clean", src, tmp_path / "out.jsonl", "--task", "tickets")
    assert code == 1 and "no row of" in err and "off_task" in err and not (tmp_path / "out.jsonl").exists()
    code, _, _ = run(capsys, "clean", src, tmp_path / "out.jsonl", "--task", "tickets", "--allow-empty")
    assert code == 0 and (tmp_path / "out.jsonl").read_text() == ""
    code, _, err = run(capsys, "clean", src, tmp_path / "out2.jsonl", "--format", "alpaca")
    assert code == 2 and "no row can be read as alpaca" in err


def test_generic_cleaning_keeps_one_row_of_a_cluster_with_different_answers(tmp_path, capsys):
    prompts = ["Give me a name for a black cat.", "Give me a name for a black cat!",
               "Give me a name for a black cat please."]
    rows = [{"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": a}]}
            for p, a in zip(prompts, ["Shadow.", "Midnight.", "Onyx."], strict=True)]
    src = tmp_path / "cats.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    code, out, _ = run(capsys, "clean", src, tmp_path / "out.jsonl")
    assert code == 0 and json.loads(out)["kept"] == 1 and json.loads(out)["removed"]["label_conflict"] == 0
    assert "Shadow." in (tmp_path / "out.jsonl").read_text(), "the earliest row is kept"
    code, out, _ = run(capsys, "clean", src, tmp_path / "out.jsonl", "--drop-conflicts", "--allow-empty")
    assert json.loads(out)["removed"]["label_conflict"] == 3


def test_help_says_where_label_conflicts_come_from(capsys):
    with pytest.raises(SystemExit):
        main(["clean", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--drop-conflicts" in text and "the earliest row of each cluster is kept" in text


def test_half_a_surrogate_pair_and_an_infinite_number_are_reported_not_crashed_on(tmp_path, capsys):
    src = tmp_path / "odd.jsonl"
    src.write_text('{"messages": [{"role": "user", "content": "hi \\ud800"}, {"role": "assistant", "content": "ok"}]}\n'
                   '{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}], '
                   '"n": 1e400}\n'
                   '{"messages": [{"role": "user", "content": "smile \\ud83d\\ude00"}, '
                   '{"role": "assistant", "content": "ok"}]}\n',
                   encoding="utf-8")
    result = validate_file(src)
    assert [(p.line, p.code) for p in result.problems] == [(1, "invalid_encoding"), (2, "invalid_json")]
    assert result.records[0].messages[0]["content"] == "smile \U0001F600", "a whole surrogate pair is one character"
    code, _, err = run(capsys, "clean", src, tmp_path / "out.jsonl")
    assert code == 0 and "Traceback" not in err
