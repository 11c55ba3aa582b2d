"""farside and Yamcs: the dictionary as an XTCE mission database (mdb.py), a Yamcs
configuration facing `farside relay` (config.py), and Yamcs run as its own process.

Yamcs is AGPL: it runs as a separate Java process and is never imported."""
