"""What the Responses API's request may carry through the gateway, and how a refusal names the
caller's own field."""

from __future__ import annotations

from typing import Any

import pytest

from quartermaster.domain.errors import InvalidInput
from quartermaster.gateway.responses_wire import read_request

IMAGE = {"type": "input_image", "image_url": "https://example.org/cat.png", "detail": "low"}


def refusal(**fields: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as refused:
        read_request({"model": "m", "input": "Hi", **fields})
    return refused.value


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id", "unsupported_parameter"),
        ({"conversation": "conv_1"}, "conversation", "unsupported_parameter"),
        ({"store": True}, "store", "unsupported_value"),
        ({"background": True}, "background", "unsupported_value"),
    ],
)
def test_server_side_state_is_refused_with_what_to_send_instead(
    fields: dict[str, Any], param: str, code: str
) -> None:
    refused = refusal(**fields)
    assert (refused.param, refused.code) == (param, code)
    assert "send the whole conversation in `input`" in refused.message
    assert "leave `store` out or false" in refused.message


@pytest.mark.parametrize("kind", ["web_search", "file_search", "computer_use_preview", "mcp"])
def test_hosted_tools_are_refused_by_their_place(kind: str) -> None:
    function = {"type": "function", "name": "now", "parameters": {"type": "object"}}
    refused = refusal(tools=[function, {"type": kind, "server_label": "x"}])
    assert (refused.param, refused.code) == ("tools[1].type", "unsupported_value")
    assert refused.message.startswith(f"tools[1].type: {kind} tools run on OpenAI's servers")


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].file_id",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0].file_id",
        ),
        ({"input": [{"type": "reasoning", "summary": []}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_video"}]}]},
            "input[0].content[0].type",
        ),
        ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice.type"),
        ({"include": ["reasoning.encrypted_content", "file_search_call.results"]}, "include[1]"),
        ({"truncation": "auto"}, "truncation"),
        ({"reasoning": {"effort": "low", "summary": "detailed"}}, "reasoning.summary"),
        ({"top_logprobs": 3}, "top_logprobs"),
        (
            {"input": [{"role": "user", "content": "Hi", "cache_breakpoint": True}]},
            "input[0].cache_breakpoint",
        ),
    ],
)
def test_what_cannot_be_translated_is_refused_by_its_path(
    fields: dict[str, Any], param: str
) -> None:
    refused = refusal(**fields)
    assert refused.param == param
    assert refused.message.startswith(f"{param}: ")


def test_a_field_no_chat_has_is_refused_not_dropped() -> None:
    refused = refusal(max_tool_calls=2)
    assert (refused.param, refused.code) == ("max_tool_calls", "unsupported_parameter")
    assert "leave it out" in refused.message


def test_malformed_fields_name_the_place_in_the_list() -> None:
    item = {"type": "function_call", "call_id": "c", "name": "now"}
    refused = refusal(input=[{"role": "user", "content": "Hi"}, item])
    assert (refused.param, refused.code) == ("input[1].arguments", "invalid_value")


def test_what_asks_nothing_is_accepted() -> None:
    """What Codex and the SDKs send when storage is off: nulls, `store: false`, no truncation,
    reasoning's encrypted content (there is none), a summary the model may leave out."""
    request = read_request(
        {
            "model": "m",
            "input": [
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "Hi"}],
                },
                {"role": "user", "content": [IMAGE]},
            ],
            "store": False,
            "previous_response_id": None,
            "truncation": "disabled",
            "include": ["reasoning.encrypted_content"],
            "reasoning": {"effort": "low", "summary": "auto"},
            "stream_options": {"include_obfuscation": False},
            "metadata": {"team": "blue"},
        }
    )
    assert request.store is False
    assert request.metadata == {"team": "blue"}


def test_an_answer_sent_back_as_input_is_accepted() -> None:
    """A client may append a response's output items to its next input, ids and all."""
    said = {
        "type": "message",
        "id": "msg_1",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}],
    }
    call = {
        "type": "function_call",
        "id": "fc_1",
        "status": "completed",
        "call_id": "call_1",
        "name": "now",
        "arguments": "{}",
    }
    request = read_request({"model": "m", "input": [said, call]})
    assert len(request.input) == 2
