"""The wire format's exception family: what was expected, what was seen, and where."""


class ProtocolError(ValueError):
    """Bytes that do not follow the layout (bad length, bad CRC, bad field value)."""


class DictionaryError(ProtocolError):
    """The command/telemetry/event dictionary is invalid, or a name is not in it."""
