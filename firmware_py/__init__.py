"""farside rover flight software (MicroPython; also runs on CPython with the sim HAL)."""
