"""The repository's LICENSE and CITATION.cff: present, consistent with pyproject.toml, naming the paper."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from c2s_denoise import __version__

ROOT = Path(__file__).resolve().parents[1]
PAPER = "Score-based Self-supervised MRI Denoising"
AUTHORS = [("Tu", "Jiachen"), ("Shi", "Yaokun"), ("Lam", "Fan")]


def test_license_is_the_bsd_3_clause_text_pyproject_names() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License")
    assert "Copyright (c)" in text and "c2s-denoise developers" in text
    assert "Neither the name of the copyright holder nor the names of its" in text  # the third clause
    assert re.search(r'license\s*=\s*\{\s*text\s*=\s*"BSD-3-Clause"', (ROOT / "pyproject.toml").read_text())


def test_citation_names_the_paper_without_a_yaml_parser() -> None:
    """A plain-text check that runs everywhere (PyYAML is not a dependency)."""
    text = (ROOT / "CITATION.cff").read_text()
    assert re.search(r"^cff-version: 1\.2\.0$", text, re.M)
    assert re.search(r"^preferred-citation:$", text, re.M)
    assert PAPER in text and "2025" in text
    assert all(family in text and given in text for family, given in AUTHORS)


def test_citation_parses_as_yaml_and_cites_the_paper() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed: the plain-text check above still runs")
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    assert {"message", "title", "authors"} <= set(citation)
    assert citation["type"] == "software" and citation["license"] == "BSD-3-Clause"
    assert citation["authors"] == [{"name": "c2s-denoise developers"}]
    assert str(citation["version"]) == __version__
    paper = citation["preferred-citation"]
    assert paper["type"] == "conference-paper" and paper["title"] == PAPER and paper["year"] == 2025
    assert [(a["family-names"], a["given-names"]) for a in paper["authors"]] == AUTHORS
    assert "ICLR" in paper["conference"]["name"]
