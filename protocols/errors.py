"""The wire format's exception family: what was expected, what was seen, and where."""


class ProtocolError(ValueError):
    """Bytes that do not follow the layout (bad length, bad CRC, bad field value)."""


class DictionaryError(ProtocolError):
    """The command/telemetry/event dictionary is invalid, or a name is not in it."""


class AuthError(ProtocolError):
    """A TC frame failed authentication; `reason` is the dictionary's auth_reason code (1..5)."""

    def __init__(self, reason: int, message: str, spi: int = 0, seq: int = 0) -> None:
        super().__init__(message)
        self.reason = reason
        self.spi = spi
        self.seq = seq
