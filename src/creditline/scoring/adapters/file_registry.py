"""A model registry kept as files: one folder per version and a roles file.

Layout: ``<root>/<version>/`` (a copy of the artefact folder) and ``<root>/roles.json``
(``{"champion": version, "challenger": version}``), written atomically (temporary file
then rename), so a reader never sees half a file. Registering the same version twice is
harmless (the version is a content hash); promoting a version to a role takes the role
from whichever version held it. One role per version: promoting the challenger to
champion frees the challenger role.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from creditline.scoring.ports import ModelEntry, Role
from creditline.shared.errors import FieldIssue, InvalidInputError, NotFoundError


class FileModelRegistry:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _roles(self) -> dict[str, str]:
        path = self.root / "roles.json"
        if not path.is_file():
            return {}
        roles: dict[str, str] = json.loads(path.read_text())
        return roles

    def _write_roles(self, roles: dict[str, str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".roles-")
        with os.fdopen(fd, "w") as handle:
            json.dump(roles, handle, indent=2, sort_keys=True)
        os.replace(tmp, self.root / "roles.json")

    def _entry(self, folder: Path, roles: dict[str, str]) -> ModelEntry:
        manifest = json.loads((folder / "manifest.json").read_text())
        metrics_path = folder / "metrics.json"
        auc = json.loads(metrics_path.read_text())["auc"] if metrics_path.is_file() else None
        version = manifest["version"]
        role = next((Role(r) for r, v in roles.items() if v == version), None)
        return ModelEntry(
            version,
            manifest["kind"],
            manifest.get("dataset", ""),
            manifest["created_at"],
            auc,
            folder,
            role,
        )

    def register(self, artefact: Path) -> ModelEntry:
        manifest_path = artefact / "manifest.json"
        if not manifest_path.is_file():
            raise InvalidInputError(
                FieldIssue("artefact", "not_an_artefact", f"{artefact} has no manifest.json")
            )
        version = json.loads(manifest_path.read_text())["version"]
        target = self.root / version
        if not target.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=self.root, prefix=".staging-"))
            shutil.copytree(artefact, staging, dirs_exist_ok=True)
            os.replace(staging, target)
        return self._entry(target, self._roles())

    def list(self) -> list[ModelEntry]:
        if not self.root.is_dir():
            return []
        roles = self._roles()
        entries = [
            self._entry(p, roles) for p in self.root.iterdir() if (p / "manifest.json").is_file()
        ]
        return sorted(entries, key=lambda e: (e.created_at, e.version))

    def get(self, version: str) -> ModelEntry:
        folder = self.root / version
        if not (folder / "manifest.json").is_file():
            raise NotFoundError(f"no model version {version!r} in {self.root}", field="version")
        return self._entry(folder, self._roles())

    def promote(self, version: str, role: Role) -> ModelEntry:
        self.get(version)
        roles = {r: v for r, v in self._roles().items() if v != version}
        roles[role.value] = version
        self._write_roles(roles)
        return self.get(version)

    def holder(self, role: Role) -> ModelEntry | None:
        version = self._roles().get(role.value)
        return self.get(version) if version else None
