# Firmware version, reported in the BOOT event as (major << 16) | (minor << 8) | patch.
from firmware_py.compat import const

MAJOR = const(0)
MINOR = const(1)
PATCH = const(0)
VERSION = const((MAJOR << 16) | (MINOR << 8) | PATCH)
