"""No views: the project is only its models and management commands."""

from __future__ import annotations

from typing import Any

urlpatterns: list[Any] = []
