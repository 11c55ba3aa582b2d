"""The PC side's exception family: the CLI prints these as one line with an exit code."""


class FarsideError(Exception):
    """An error reported as `farside: error: <message>` with exit code `exit_code`."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
