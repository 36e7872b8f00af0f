"""A phone's W3C DeviceOrientation reading as a direction around the object it photographs.

The angles (degrees) rotate the device frame (x right, y up the screen, z out of the screen) into
the earth frame (x east, y north, z up) as R = Rz(alpha) Rx(beta) Ry(gamma). The back camera looks
along the device's -z; the phone is taken to stand on the far side of the object from where its
camera looks (the object in the middle of the picture). docs/protocol.md, "Photo orientation".
"""

from __future__ import annotations

import math

Vector = tuple[float, float, float]


def camera_direction(alpha: float, beta: float, gamma: float) -> Vector:
    """Unit vector the back camera looks along, in the earth frame (east, north, up)."""
    a, b, g = math.radians(alpha), math.radians(beta), math.radians(gamma)
    east = -math.cos(a) * math.sin(g) - math.sin(a) * math.sin(b) * math.cos(g)
    north = -math.sin(a) * math.sin(g) + math.cos(a) * math.sin(b) * math.cos(g)
    up = -math.cos(b) * math.cos(g)
    return east, north, up


def direction_to_phone(alpha: float, beta: float, gamma: float) -> Vector:
    """Unit vector from the object to the phone, in the earth frame (east, north, up)."""
    east, north, up = camera_direction(alpha, beta, gamma)
    return -east, -north, -up


def view_azimuth_elevation(alpha: float, beta: float, gamma: float) -> tuple[float, float]:
    """Where the phone is around the object: azimuth in degrees clockwise from the alpha
    reference (north where the browser knows it), elevation in degrees above the object."""
    east, north, up = direction_to_phone(alpha, beta, gamma)
    azimuth = math.degrees(math.atan2(east, north)) % 360.0
    return azimuth, math.degrees(math.asin(max(-1.0, min(1.0, up))))
