"""Progress bars: drawn on a terminal only, with the count, share and rate of the work."""

from __future__ import annotations

import io

from genai_apm import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_nothing_is_written_when_stderr_is_not_a_terminal():
    piped = io.StringIO()
    assert list(progress.track(range(1000), "generated", 1000, stream=piped)) == list(range(1000))
    with progress.elapsed("backfill", stream=piped):
        pass
    assert piped.getvalue() == ""


def test_a_terminal_gets_one_redrawn_line_ending_with_the_final_count():
    tty = Terminal()
    items = list(progress.track(range(250), "replayed", 250, stream=tty))
    assert items == list(range(250))
    out = tty.getvalue()
    assert out.endswith("\n") and out.count("\n") == 1  # one line, redrawn with \r
    final = out.rstrip("\n").split("\r")[-1]
    assert final.startswith("replayed [" + "#" * progress.WIDTH + "] 100% 250/250 ")


def test_only_counted_items_advance_the_bar():
    tty = Terminal()
    items = ["call", "span", "call", "span", "span"]
    list(progress.track(items, "generated", 2, counts=lambda i: i == "call", stream=tty))
    assert "100% 2/2" in tty.getvalue().split("\r")[-1]


def test_render_with_and_without_a_total():
    half = progress.render("generated", 500, 1000, 2.0)
    assert "[" + "#" * (progress.WIDTH // 2) + "." * (progress.WIDTH // 2) + "]" in half
    assert " 50% 500/1,000 250/s, 2s left" in half
    assert progress.render("replayed", 12_345, None, 61.0) == "replayed 12,345 202/s, 1m01s"


def test_elapsed_on_a_terminal_says_when_it_is_done():
    tty = Terminal()
    with progress.elapsed("latency backfill", stream=tty):
        pass
    assert tty.getvalue().endswith("\rlatency backfill done in 0s\n")
