"""The providers' small text machines: SSE decoding, stop sequences, load-once, GELU."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
from bench.bert_numpy import gelu

from quartermaster.providers.once import Once
from quartermaster.providers.sse import DONE, SSEDecoder
from quartermaster.providers.stops import StopMatcher


def test_sse_collects_data_fields_until_an_empty_line() -> None:
    decoder = SSEDecoder()
    lines = [": keep-alive", "event: x", 'data: {"a":', "data:1}", "", "data: [DONE]"]
    events = [decoder.feed(line) for line in lines]
    assert events == [None, None, None, None, '{"a":\n1}', None]
    assert decoder.flush() == DONE
    assert decoder.flush() is None


@pytest.mark.parametrize(
    ("pieces", "stops", "released", "stopped"),
    [
        (["Hel", "lo wor", "ld"], ["\n"], "Hello world", False),
        (["one, tw", "o, thr", "ee"], ["three"], "one, two, ", True),
        (["ab", "c"], ["abd"], "abc", False),  # held "ab" turned out not to be the stop
        (["x", "EN", "D y"], ["END"], "x", True),
        (["a", "b"], [], "ab", False),
    ],
)
def test_stop_sequences(pieces: list[str], stops: list[str], released: str, stopped: bool) -> None:
    matcher, text, hit = StopMatcher(stops), "", False
    for piece in pieces:
        out, hit = matcher.push(piece)
        text += out
        if hit:
            break
    text += "" if hit else matcher.flush()
    assert (text, hit) == (released, stopped)


def test_text_that_may_start_a_stop_sequence_is_held_back() -> None:
    matcher = StopMatcher(["</end>"])
    assert matcher.push("answer</e") == ("answer", False)
    assert matcher.flush() == "</e"


def test_once_builds_a_single_time_under_concurrent_first_calls() -> None:
    builds: list[int] = []

    def build() -> object:
        time.sleep(0.05)
        builds.append(1)
        return object()

    once: Once[object] = Once(build)
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(once.get())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
    assert all(result is results[0] for result in results)
    assert once.loaded


def test_gelu_matches_the_exact_erf_form() -> None:
    x = np.linspace(-8, 8, 4001, dtype=np.float32)
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    assert np.abs(gelu(x.copy()) - exact).max() < 1e-6
