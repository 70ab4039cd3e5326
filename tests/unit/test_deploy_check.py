"""`python -m genai_apm.deploy --check`: one check over every generated infra file."""

from __future__ import annotations

from pathlib import Path

from genai_apm.deploy import __main__ as deploy


def test_the_checkout_is_up_to_date():
    assert deploy.main(["--check"]) == 0


def test_a_stale_file_of_any_generator_fails_the_check(monkeypatch, capsys):
    for generator in deploy.GENERATORS:
        monkeypatch.setattr(generator, "stale", lambda root=None: [Path("infra/x.yaml")])
        assert deploy.main(["--check"]) == 1
        assert "out of date: infra/x.yaml" in capsys.readouterr().err
        monkeypatch.undo()
    assert deploy.main(["--check"]) == 0
