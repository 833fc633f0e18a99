"""Hatchling build hook: put migrations/, sql/, rollback/ and alembic.ini into regular wheels.

The mapping lives in pyproject.toml under [tool.hatch.build.targets.wheel.hooks.custom]
force-include. Editable installs skip it on purpose: they read the work tree's live files.
"""

from __future__ import annotations

import os
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class DataFilesHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version != "standard":
            return
        mapping: dict[str, str] = self.config.get("force-include", {})
        for source, target in mapping.items():
            path = os.path.join(self.root, source)
            if not os.path.exists(path):
                # A wheel without its SQL would install and then fail at run time; fail here.
                raise FileNotFoundError(f"wheel data not found: {path}")
            build_data["force_include"][path] = target
