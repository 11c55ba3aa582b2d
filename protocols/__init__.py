"""farside wire format, ground side: CCSDS packets and frames, stream framing,
authentication and the command/telemetry/event dictionary (construct + crcmod)."""
