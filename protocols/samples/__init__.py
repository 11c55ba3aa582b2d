"""Sample captures for `farside decode`, made by make_samples.py with the protocols builders."""
