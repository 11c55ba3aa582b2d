"""Whole-loop harness, HIL test API and mission scenarios.

- `loop.WholeLoop`: ground + Queqiao relay model + CPython rover (sim HAL) on one
  virtual-time event loop, deterministic for a seed.
- `realtime.PortTarget`: the same ground and relay model on a real-time loop, with the
  rover on a serial port (a Pico, or the MicroPython virtual board).
- `ground.LoopGround`: the ground station's pieces (GroundState, FOP-1, SDLS, archive)
  driven by the loop's clock.
- `api.RoverApi` / `RelayControl` / `PlantControl`: the F Prime style front door used by
  the pytest plugin (hil/pytest_plugin.py) and by `farside mission`.
- `scenarios`, `report`: mission scenarios and the report folder of `farside mission`.
"""
