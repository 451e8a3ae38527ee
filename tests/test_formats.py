"""Converters between the messages, Alpaca and ShareGPT formats."""

import pytest

from course_lib.formats import FormatError, detect_format, from_messages, to_messages

ONE_TURN = {"id": "x1", "messages": [{"role": "system", "content": "Be brief."},
                                     {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}
MULTI_TURN = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                           {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}


@pytest.mark.parametrize("fmt", ["alpaca", "sharegpt", "messages"])
def test_round_trip_through_each_format(fmt):
    converted = from_messages(ONE_TURN, fmt)
    assert detect_format(converted) == fmt
    assert to_messages(converted) == ONE_TURN


def test_sharegpt_round_trip_keeps_multi_turn_conversations():
    assert to_messages(from_messages(MULTI_TURN, "sharegpt"), "sharegpt") == MULTI_TURN


def test_alpaca_fields_map_as_documented():
    row = {"instruction": "Classify this ticket.", "input": "My phone is broken.", "output": "{}"}
    messages = to_messages(row)["messages"]
    assert messages == [{"role": "user", "content": "Classify this ticket.\n\nMy phone is broken."},
                        {"role": "assistant", "content": "{}"}]
    assert to_messages({"instruction": "Hi", "input": "", "output": "Yo"})["messages"][0]["content"] == "Hi"


def test_alpaca_cannot_hold_a_multi_turn_conversation():
    with pytest.raises(FormatError, match="one exchange"):
        from_messages(MULTI_TURN, "alpaca")


@pytest.mark.parametrize(("row", "fmt", "message"), [
    ({"conversations": [{"from": "robot", "value": "x"}]}, "sharegpt", "'from' is 'robot'"),
    ({"instruction": 3, "output": "x"}, "alpaca", "field 'instruction' must be a string"),
    ({"text": "x"}, "auto", "none of the fields"),
    ({"messages": []}, "csv", "unknown format 'csv'"),
])
def test_bad_rows_name_the_field(row, fmt, message):
    with pytest.raises(FormatError, match=message):
        to_messages(row, fmt)
