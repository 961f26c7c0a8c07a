from pathlib import Path

from passgate.core.errors import catalogue
from scripts.errors_doc import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def test_docs_list_every_code_as_the_catalogue_has_it() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), "run: .venv/bin/python scripts/errors_doc.py"


def test_codes_are_unique_and_say_what_to_do() -> None:
    codes = catalogue()
    assert len({c.number for c in codes}) == len(codes)
    assert len({c.name for c in codes}) == len(codes)
    for c in codes:
        assert 400 <= c.status < 600
        assert c.message.endswith(".") and c.action.endswith(".")
        assert "something went wrong" not in (c.message + c.action).lower()
