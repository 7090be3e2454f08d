"""Layers (:mod:`graphkit.nn.conv`) and models (:mod:`graphkit.nn.models`)."""

from graphkit.nn import conv, models
from graphkit.nn.conv import *  # noqa: F401,F403
from graphkit.nn.models import *  # noqa: F401,F403

__all__: list[str] = [*conv.__all__, *models.__all__]
