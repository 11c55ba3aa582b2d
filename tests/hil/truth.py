"""The plant's truth as the oracle of a HIL check.

    start = truth.mark(plant)          # None on a target with no in-process plant
    ...drive...
    leg = truth.since(plant, start)    # None likewise: skip only the truth check
    if leg is not None:
        assert leg.travelled_m == pytest.approx(4.0, abs=0.1)

A leg is measured in the frame of its start: `along_m` ahead along the heading the rover
had there, `across_m` to its left, `turned_deg` counter-clockwise. `travelled_m` is the
path length the body really covered (a turn in place covers ~0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hil.mission.api import PlantControl, RoverApi


@dataclass(frozen=True)
class Pose:
    x_m: float
    y_m: float
    travelled_m: float
    heading_deg: float


@dataclass(frozen=True)
class Leg:
    travelled_m: float
    along_m: float
    across_m: float
    turned_deg: float


def observer(rover: RoverApi) -> PlantControl | None:
    """The plant of a test that injects no fault (so it does not ask for the `plant`
    fixture, which skips on real motors): None when the target has none in process."""
    return PlantControl(rover.h, rover) if rover.h.hal is not None else None


def mark(plant: PlantControl | None) -> Pose | None:
    """The plant's pose now, or None when the target has no in-process plant."""
    if plant is None:
        return None
    pose, heading = plant.true_pose, plant.true_heading_deg
    if pose is None or heading is None:
        return None
    return Pose(pose[0], pose[1], pose[2], heading)


def leg(start: Pose, end: Pose) -> Leg:
    dx, dy = end.x_m - start.x_m, end.y_m - start.y_m
    h = math.radians(start.heading_deg)
    turned = (end.heading_deg - start.heading_deg + 180.0) % 360.0 - 180.0
    return Leg(
        travelled_m=end.travelled_m - start.travelled_m,
        along_m=dx * math.cos(h) + dy * math.sin(h),
        across_m=-dx * math.sin(h) + dy * math.cos(h),
        turned_deg=turned,
    )


def since(plant: PlantControl | None, start: Pose | None) -> Leg | None:
    """What the plant truly did since `start` (None with no in-process plant)."""
    end = mark(plant)
    if start is None or end is None:
        return None
    return leg(start, end)
