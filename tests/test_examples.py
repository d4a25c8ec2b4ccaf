"""Every script in examples/ runs to its end, in the test run's Spark session.

The examples are what a new user runs first; they are run here in-process
(no JVM start per script), with the HMM seed recipe at a smaller size.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.py"))
#: Smaller than the scripts' defaults, where they take sizes.
ARGS = {"hmm_seed_recipe.py": ["--sequences", "3000", "--n-iter", "5"]}
#: Scripts that take a --workdir (else they write to a fresh temp directory).
TAKES_WORKDIR = {"hmm_seed_recipe.py", "hmm_next_steps.py"}


def test_every_example_is_listed():
    assert {p.name for p in EXAMPLES} >= {
        "grouped_seed_recipe.py",
        "hmm_next_steps.py",
        "hmm_seed_recipe.py",
        "inference_seed_recipe.py",
        "tuning_grid_search.py",
        "tuning_timeseries_cv.py",
    }


#: The longest (12-16 s each): `make test-all` runs them, `make test` the others.
SLOW_EXAMPLES = {"grouped_seed_recipe.py", "tuning_timeseries_cv.py", "hmm_next_steps.py"}


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=pytest.mark.slow) if p.name in SLOW_EXAMPLES else p for p in EXAMPLES],
    ids=lambda p: p.stem,
)
def test_example_runs(spark, path, monkeypatch, tmp_path, capsys):
    args = list(ARGS.get(path.name, []))
    if path.name in TAKES_WORKDIR:
        args += ["--workdir", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", [str(path), *args])
    # Some scripts end with spark.stop(): the session is this test run's.
    monkeypatch.setattr(type(spark), "stop", lambda self: None)
    runpy.run_path(str(path), run_name="__main__")
    assert capsys.readouterr().out.strip(), f"{path.name} printed nothing"


#: Run an example with --help, then say whether Spark (pyspark) was imported.
HELP_PROBE = """
import runpy, sys
sys.argv = [sys.argv[1], "--help"]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = "no exit"
print("EXIT", code, "PYSPARK", "pyspark" in sys.modules)
"""


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_help_answers_without_starting_spark(path):
    import subprocess

    run = subprocess.run(
        [sys.executable, "-c", HELP_PROBE, str(path)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage: "), run.stdout
    # The description is the docstring's first line (argparse may wrap it).
    first_line = path.read_text().split('"""')[1].splitlines()[0]
    assert " ".join(first_line.split()[:4]) in " ".join(run.stdout.split())
    assert run.stdout.strip().splitlines()[-1] == "EXIT 0 PYSPARK False"
