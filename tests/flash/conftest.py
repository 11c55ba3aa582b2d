"""Fixtures for the flash tests: virtual boards, and a copy of the firmware to edit."""

from tests.board.fixtures import runtime_dir, src, vboard  # noqa: F401
