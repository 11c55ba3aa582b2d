from tests.board.fixtures import runtime_dir, src, vboard  # noqa: F401
