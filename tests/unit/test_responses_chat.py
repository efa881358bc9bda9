"""A Responses API request as the chat body the gateway meters, and the chat's refusals named
back in the caller's terms."""

from __future__ import annotations

from typing import Any

from quartermaster.domain.errors import InvalidInput
from quartermaster.gateway.responses_chat import ChatBody, to_chat_body
from quartermaster.gateway.responses_wire import read_request

NOW = {"type": "function", "name": "now", "parameters": {"type": "object"}, "strict": True}
CHAT_NOW = {
    "type": "function",
    "function": {"name": "now", "parameters": {"type": "object"}, "strict": True},
}


def chat(**fields: Any) -> ChatBody:
    return to_chat_body(read_request({"model": "m", **fields}))


def call(call_id: str, city: str) -> dict[str, str]:
    arguments = f'{{"city":"{city}"}}'
    return {"type": "function_call", "call_id": call_id, "name": "now", "arguments": arguments}


def chat_call(call_id: str, city: str) -> dict[str, Any]:
    function = {"name": "now", "arguments": f'{{"city":"{city}"}}'}
    return {"id": call_id, "type": "function", "function": function}


def test_a_string_input_is_the_user_message_after_the_instructions() -> None:
    body = chat(input="Say hello", instructions="Be brief.", max_output_tokens=20).body
    assert body == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"},
        ],
        "max_completion_tokens": 20,
    }


def test_function_calls_and_their_outputs_become_a_chat_tool_round_trip() -> None:
    """Calls in a row are one assistant turn — with its text when the model wrote some."""
    body = chat(
        input=[
            {"role": "user", "content": "Time in Paris and Tokyo?"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
            call("call_a", "Paris"),
            call("call_b", "Tokyo"),
            {"type": "function_call_output", "call_id": "call_a", "output": "18:00"},
            {
                "type": "function_call_output",
                "call_id": "call_b",
                "output": [{"type": "input_text", "text": "01:00"}],
            },
            call("call_c", "Lima"),
        ],
        tools=[NOW],
    ).body
    assert body["messages"] == [
        {"role": "user", "content": "Time in Paris and Tokyo?"},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Checking."}],
            "tool_calls": [chat_call("call_a", "Paris"), chat_call("call_b", "Tokyo")],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "18:00"},
        {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "01:00"}]},
        {"role": "assistant", "content": None, "tool_calls": [chat_call("call_c", "Lima")]},
    ]
    assert body["tools"] == [CHAT_NOW]


def test_images_files_and_audio_become_chat_parts() -> None:
    content = [
        {"type": "input_text", "text": "What are these?"},
        {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "high"},
        {"type": "input_file", "file_data": "data:application/pdf;base64,AA", "filename": "a.pdf"},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
    ]
    body = chat(input=[{"role": "user", "content": content}]).body
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What are these?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"}},
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,AA", "filename": "a.pdf"},
        },
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
    ]


def test_settings_take_the_chats_names() -> None:
    schema = {"type": "object", "properties": {"colour": {"type": "string"}}}
    body = chat(
        input="Hi",
        tools=[NOW],
        tool_choice={"type": "function", "name": "now"},
        parallel_tool_calls=False,
        temperature=0.5,
        top_p=0.9,
        text={"format": {"type": "json_schema", "name": "c", "schema": schema, "strict": True}},
        reasoning={"effort": "low", "summary": "auto"},
        user="u-1",
        prompt_cache_key="k",
        metadata={"team": "blue"},
        store=False,
    ).body
    assert body == {
        "model": "m",
        "messages": [{"role": "user", "content": "Hi"}],
        "tools": [CHAT_NOW],
        "tool_choice": {"type": "function", "function": {"name": "now"}},
        "parallel_tool_calls": False,
        "temperature": 0.5,
        "top_p": 0.9,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "c", "schema": schema, "strict": True},
        },
        "reasoning_effort": "low",
        "user": "u-1",
        "prompt_cache_key": "k",
    }


def test_allowed_tools_become_the_chats() -> None:
    choice = {
        "type": "allowed_tools",
        "mode": "required",
        "tools": [{"type": "function", "name": "now"}],
    }
    body = chat(input="Hi", tools=[NOW], tool_choice=choice).body
    assert body["tool_choice"] == {
        "type": "allowed_tools",
        "allowed_tools": {
            "mode": "required",
            "tools": [{"type": "function", "function": {"name": "now"}}],
        },
    }


def test_without_tools_a_tool_choice_is_not_sent() -> None:
    """A chat refuses tool settings without tools; here they ask nothing."""
    body = chat(input="Hi", tool_choice="auto", parallel_tool_calls=True).body
    assert body == {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}


def test_the_chats_refusals_name_the_callers_fields() -> None:
    translated = chat(
        instructions="Be brief.",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "See"},
                    {"type": "input_image", "image_url": "u"},
                ],
            },
            call("call_a", "Paris"),
            {"type": "function_call_output", "call_id": "call_a", "output": "18:00"},
        ],
        text={"format": {"type": "json_object"}},
    )
    renamed = {
        "messages[1].content[1]": "input[0].content[1]",
        "messages.1.content.1.image_url": "input[0].content[1]",
        "messages[2].tool_calls": "input[1]",
        "messages[3].role": "input[2]",
        "messages[3].content[0]": "input[2].output[0]",
        "messages[0]": "instructions",
        "messages": "input",
        "max_tokens": "max_output_tokens",
        "response_format.json_schema.schema": "text.format",
        "reasoning_effort": "reasoning.effort",
        "tools": "tools",
        "model": "model",
    }
    for chat_param, param in renamed.items():
        refusal = InvalidInput(f"m does not take this ({chat_param})", param=chat_param)
        assert translated.renamed(refusal).param == param
        assert translated.renamed(refusal).message == f"m does not take this ({param})"
