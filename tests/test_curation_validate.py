"""Validation: every problem gets its line number and code; a bad row never stops the read."""

import json

import pytest

from course_lib.curation import CODES, CurationError, validate_file

GOOD = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
BAD_LINES = {
    "invalid_json": '{"messages": [',
    "not_object": json.dumps([1, 2]),
    "missing_messages": json.dumps({"text": "hi"}),
    "missing_role": json.dumps({"messages": [{"content": "Hi"}, {"role": "assistant", "content": "x"}]}),
    "unknown_role": json.dumps({"messages": [{"role": "agent", "content": "Hi"},
                                             {"role": "assistant", "content": "x"}]}),
    "non_string_content": json.dumps({"messages": [{"role": "user", "content": 5},
                                                   {"role": "assistant", "content": "x"}]}),
    "empty_content": json.dumps({"messages": [{"role": "user", "content": "Hi"},
                                              {"role": "assistant", "content": " "}]}),
    "no_assistant_turn": json.dumps({"messages": [{"role": "user", "content": "Hi"}]}),
    "last_turn_not_assistant": json.dumps({"messages": [{"role": "assistant", "content": "Hi"},
                                                        {"role": "user", "content": "x"}]}),
    "blank_line": "",
    "unknown_format": json.dumps({"text": "hi", "reply": "x"}),
    "map_conflict": json.dumps({"response": "a", "output": "b", "instruction": "c"}),
}
MAPPED = {"map_conflict": {"response": "output"}}


def write(tmp_path, lines):
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("code", list(BAD_LINES))
def test_each_problem_is_reported_with_its_line_and_code(tmp_path, code):
    path = write(tmp_path, [json.dumps(GOOD), BAD_LINES[code], json.dumps(GOOD)])
    result = validate_file(path, fmt="auto" if code in ("unknown_format", "map_conflict") else "messages",
                           mapping=MAPPED.get(code))
    assert [(p.line, p.code) for p in result.problems] == [(2, code)]
    assert [r.line for r in result.records] == [1, 3]
    assert result.problems[0].text == BAD_LINES[code], "the bad line is kept in the report, not lost"


def test_every_code_is_documented():
    assert set(BAD_LINES) | {"too_long", "invalid_encoding", "row_too_large"} == set(CODES)


def test_one_bad_line_among_ten_thousand(tmp_path):
    lines = [json.dumps(GOOD)] * 10_000
    lines[6_123] = '{"messages": [{"role": "user", "content": "cut off'
    result = validate_file(write(tmp_path, lines))
    assert [(p.line, p.code) for p in result.problems] == [(6_124, "invalid_json")]
    assert len(result.records) == 9_999 and result.lines == 10_000


def test_rows_over_the_token_limit_are_counted_with_the_chat_template(tmp_path):
    class CharTokenizer:  # one token per character of the rendered conversation
        def apply_chat_template(self, messages, tokenize=False):
            return "".join(f"<{m['role']}>{m['content']}</>" for m in messages)

        def __call__(self, texts, add_special_tokens=False, **kwargs):
            return {"input_ids": [list(t) for t in texts]}

    long_row = {"messages": [{"role": "user", "content": "x" * 50}, {"role": "assistant", "content": "y"}]}
    result = validate_file(write(tmp_path, [json.dumps(GOOD), json.dumps(long_row)]), tokenizer=CharTokenizer(),
                           max_tokens=40)
    assert [(p.line, p.code) for p in result.problems] == [(2, "too_long")]
    assert "74 tokens, over the limit of 40" in result.problems[0].detail


def test_missing_and_empty_files_are_clear_errors(tmp_path):
    with pytest.raises(CurationError, match="does not exist"):
        validate_file(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(CurationError, match="is empty"):
        validate_file(tmp_path / "empty.jsonl")


def test_alpaca_and_sharegpt_files_are_read_too(tmp_path):
    alpaca = write(tmp_path, [json.dumps({"instruction": "Hi", "input": "", "output": "Hello"})])
    assert validate_file(alpaca).records[0].messages[-1] == {"role": "assistant", "content": "Hello"}
    sharegpt = tmp_path / "s.jsonl"
    sharegpt.write_text(json.dumps({"conversations": [{"from": "human", "value": "Hi"},
                                                      {"from": "gpt", "value": "Yo"}]}))
    assert validate_file(sharegpt).records[0].answer == "Yo"
