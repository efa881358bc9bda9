"""A chat's whole answer as the Responses API's `response` object."""

from __future__ import annotations

from typing import Any

from quartermaster.gateway.responses_answer import Head, from_chat_completion, response_id
from quartermaster.gateway.responses_wire import read_request

HEAD = Head("resp_1", 1_700_000_000, "m")
REQUEST = read_request({"model": "m", "input": "Hi", "max_output_tokens": 50})
USAGE = {
    "prompt_tokens": 20,
    "completion_tokens": 6,
    "total_tokens": 26,
    "prompt_tokens_details": {"cached_tokens": 8, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 5},
    "tokens_charged": 41,
}


def completion(message: dict[str, Any], finish_reason: str = "stop") -> dict[str, Any]:
    choice = {"index": 0, "message": {"role": "assistant", **message}}
    return {"choices": [choice | {"finish_reason": finish_reason}], "usage": USAGE}


def test_text_is_one_message_item_and_usage_takes_the_responses_names() -> None:
    response = from_chat_completion(completion({"content": "Hello"}), REQUEST, HEAD)
    [message] = response["output"]
    assert message["id"].startswith("msg_")
    assert message | {"id": "msg"} == {
        "type": "message",
        "id": "msg",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Hello", "annotations": []}],
    }
    assert response["usage"] == {
        "input_tokens": 20,
        "input_tokens_details": {"cached_tokens": 8},
        "output_tokens": 6,
        "output_tokens_details": {"reasoning_tokens": 5},
        "total_tokens": 26,
        "tokens_charged": 41,
    }
    assert (response["id"], response["object"], response["status"]) == (
        "resp_1",
        "response",
        "completed",
    )
    assert (response["created_at"], response["model"]) == (1_700_000_000, "m")
    assert (response["max_output_tokens"], response["store"]) == (50, False)
    assert "output_text" not in response  # the SDKs' convenience, not the API's


def test_tool_calls_are_function_call_items() -> None:
    calls = [
        {"id": "call_a", "type": "function", "function": {"name": "now", "arguments": "{}"}},
        {"id": "call_b", "type": "function", "function": {"name": "now", "arguments": "{}"}},
    ]
    answer = completion({"content": None, "tool_calls": calls}, "tool_calls")
    output = from_chat_completion(answer, REQUEST, HEAD)["output"]
    assert [(item["type"], item["call_id"], item["status"]) for item in output] == [
        ("function_call", "call_a", "completed"),
        ("function_call", "call_b", "completed"),
    ]
    assert all(item["id"].startswith("fc_") for item in output)


def test_an_answer_cut_at_the_output_limit_is_incomplete() -> None:
    response = from_chat_completion(completion({"content": "It is"}, "length"), REQUEST, HEAD)
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["output"][0]["status"] == "incomplete"


def test_a_refusal_is_a_refusal_part() -> None:
    answer = completion({"content": None, "refusal": "I can't help with that."})
    [message] = from_chat_completion(answer, REQUEST, HEAD)["output"]
    assert message["content"] == [{"type": "refusal", "refusal": "I can't help with that."}]


def test_the_response_id_is_the_calls_request_id() -> None:
    assert response_id("resp-0123abcd") == "resp_0123abcd"
