"""The sparklift command: --version, info, --help."""

from __future__ import annotations

import pytest

import sparklift
from sparklift.cli import build_parser, main


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"sparklift {sparklift.__version__}"


def test_info_reports_versions_and_master(capsys, monkeypatch):
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    monkeypatch.setenv("SPARKLIFT_MASTER", "local[3]")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for label in ("sparklift", "Python", "PySpark", "Java", "Connect"):
        assert label in out
    assert "local[3]" in out


def test_info_reports_connect(capsys, monkeypatch):
    monkeypatch.setenv("SPARK_REMOTE", "sc://example:15002")
    assert main(["info"]) == 0
    assert "sc://example:15002" in capsys.readouterr().out


def test_help_everywhere(capsys):
    parser = build_parser()
    subcommands = parser._subparsers._group_actions[0].choices  # argparse keeps them here
    for name in ["", *subcommands]:
        argv = [name, "--help"] if name else ["--help"]
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
        assert "usage: sparklift" in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: sparklift" in capsys.readouterr().out
