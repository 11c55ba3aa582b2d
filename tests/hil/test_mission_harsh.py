"""`farside mission --relay harsh`: the default sortie through the harsh relay passes, with every
command resolved by its final report on the ground (lost ones retrieved from the rover's packet
store). Seeds 1..20, about 2 s each in virtual time (tests/bench/bench_store.py --missions N
runs them as a benchmark too)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hil.cli import main

pytestmark = [pytest.mark.hil, pytest.mark.slow, pytest.mark.farside_targets("virtual")]


def mission_passes(seed: int, out: Path) -> dict[str, object]:
    """Run the harsh sortie for a seed; its summary, asserted whole."""
    assert main(["mission", "--relay", "harsh", "--seed", str(seed), "--out", str(out), "--no-plots", "--json"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["ok"], s["error"]
    c = s["commands"]
    # every command sent ended with its final report on the ground: completed, or a failure
    # the scenario provokes (the rock's HAZARD), never a report lost on the downlink
    assert c["verified"] + c["failed"] == c["sent"], c
    assert all(f["reason"] == "HAZARD" for f in c["failures"]), c["failures"]
    assert s["faults_met"] == s["faults_survived_reported"] == len(s["faults"])
    return s


@pytest.mark.parametrize("seed", range(1, 21))
def test_harsh_sortie_passes_with_every_report_on_the_ground(seed: int, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    mission_passes(seed, tmp_path / "report")
    capsys.readouterr()
