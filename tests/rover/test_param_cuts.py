"""The parameter store under every sequence of two power cuts, on both rename behaviours
(a rename that replaces, as littlefs and POSIX; one that refuses an existing target, as
FAT), under CPython and under the MicroPython unix port with the Pico heap limit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from firmware_py.params import Params, write_atomic
from tests.rover.cutfs import CuttingFs, PowerCut, two_cut_outcomes
from tests.rover.test_units import TABLE


@pytest.mark.parametrize("replace", [True, False], ids=["rename-replaces", "rename-refuses"])
def test_every_two_cut_sequence_leaves_old_or_new(tmp_path: Path, replace: bool) -> None:
    cases, failures = two_cut_outcomes(str(tmp_path), TABLE, replace)
    assert failures == []
    assert cases > 100  # every step of both writes was really cut


def test_the_fallback_path_without_the_fix_would_lose_both(tmp_path: Path) -> None:
    """The case the fix is for: a cut between remove and rename leaves only `.new`; the next
    save must commit it before overwriting `.new`, so a cut mid-write keeps it."""
    root = str(tmp_path)
    # Find the budget that cuts right after the remove (old file gone, .new whole).
    for budget in range(1, 200):
        Params(TABLE, root).save()
        q = Params(TABLE, root, CuttingFs(budget, replace=False))
        q.v[1] = 100.0
        try:
            q.save()
        except PowerCut:
            if not (tmp_path / "params.json").exists() and (tmp_path / "params.json.new").exists():
                break
    else:
        pytest.fail("no cut left only params.json.new")
    assert json.loads((tmp_path / "params.json.new").read_text())["values"]["1"] == 100.0
    # A second save, cut in the middle of writing .new:
    r = Params(TABLE, root, CuttingFs(4, replace=False))
    r.v[1] = 60.0
    with pytest.raises(PowerCut):
        r.save()
    after = Params(TABLE, root)
    assert after.load() and after.v[1] == 100.0


def test_write_atomic_fsyncs_on_cpython(tmp_path: Path, monkeypatch: Any) -> None:
    import os

    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    write_atomic(str(tmp_path / "x.json"), "{}")
    assert len(synced) == 1 and (tmp_path / "x.json").read_text() == "{}"


def test_every_two_cut_sequence_under_micropython(run_mpy: Any, tmp_path: Path) -> None:
    table = repr(tuple(TABLE))
    out = run_mpy(
        "import json\n"
        "from tests.rover.cutfs import two_cut_outcomes\n"
        f"table = {table}\n"
        "res = {}\n"
        "for replace in (True, False):\n"
        f"    cases, fails = two_cut_outcomes({str(tmp_path)!r}, table, replace)\n"
        "    res[str(replace)] = [cases, len(fails), repr(fails[:3])]\n"
        "print(json.dumps(res))\n",
        timeout=300,
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    for replace, (cases, nfail, first) in res.items():
        assert nfail == 0, (replace, first)
        assert cases > 100, replace
