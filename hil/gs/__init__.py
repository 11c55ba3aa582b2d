"""The ground station: link session, commanding, archive, replay, export, plot, watch, procedures."""
