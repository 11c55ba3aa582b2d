from tests.board.fixtures import runtime_dir, vboard  # noqa: F401
