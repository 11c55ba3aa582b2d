"""The pytest plugin itself: options, seed campaigns, per-test archives, failure reports."""

from __future__ import annotations

import pytest

from hil.errors import FarsideError
from hil.mission.seeds import parse_seeds

pytest_plugins = ["pytester"]


def test_seed_option_takes_a_number_or_an_inclusive_range() -> None:
    assert parse_seeds(None) == [1]
    assert parse_seeds("7") == [7]
    assert parse_seeds("3..6") == [3, 4, 5, 6]
    for bad in ("x", "5..2", "-1", "1..99999999"):
        with pytest.raises(FarsideError):
            parse_seeds(bad)


def test_failed_test_report_shows_telemetry_events_link_and_archive(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_inner="""
        def test_expects_the_wrong_mode(rover):
            rover.send_and_assert_command("PING", timeout=60)
            rover.await_mode("DRIVE", timeout=20)

        def test_each_seed_is_a_run(rover, farside_seed, farside_campaign):
            rover.send_and_assert_command("PING", timeout=60)
            farside_campaign.record(seed=farside_seed, outcome="ok")
        """
    )
    result = pytester.runpytest_inprocess("--farside-seed", "4..5", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    assert "farside: rover at failure" in out
    assert "telemetry mode: expected == DRIVE within 20 s, latest is 'STANDBY'" in out
    assert "last telemetry: mode=STANDBY" in out
    assert "event log" in out and "BOOT: boot 1" in out
    assert '"tc_frames_sent"' in out and '"profile": "queqiao"' in out
    assert "farside gs replay" in out
    # the campaign table: one row per seed
    assert "farside fault campaign" in out
    assert "2 runs: 2 ok" in out
    assert "test_each_seed_is_a_run[seed4]" in out or "2 passed" in out


def test_targets_mark_skips_with_a_reason_and_bad_options_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_inner="""
        import pytest

        @pytest.mark.farside_targets("mpy")
        def test_only_on_the_virtual_board(rover):
            pass
        """
    )
    result = pytester.runpytest_inprocess("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    assert "runs on farside targets mpy, not virtual" in result.stdout.str()
    bad = pytester.runpytest_inprocess("--farside-target", "usb", "-p", "no:cacheprovider")
    assert bad.ret != 0
    assert "expected virtual, mpy, pico-emu or serial:PORT" in bad.stderr.str() + bad.stdout.str()


def test_plugin_does_nothing_for_tests_that_do_not_use_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    lines = [ln for ln in result.stdout.lines if not ln.startswith("plugins:")]
    assert not any("farside" in ln for ln in lines)
