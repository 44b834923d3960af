"""`creditline demo seed`: a first start trains and promotes a champion; later ones reuse it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from creditline.cli.main import app
from creditline.scoring.adapters.file_registry import FileModelRegistry
from creditline.scoring.ports import Role

runner = CliRunner()


@pytest.mark.slow
def test_a_first_start_seeds_a_champion_and_later_starts_reuse_it(tmp_path: Path) -> None:
    env = {"CREDITLINE_DATA_DIR": str(tmp_path)}

    first = runner.invoke(app, ["demo", "seed", "--customers", "1500"], env=env)
    champion = FileModelRegistry(tmp_path / "models").holder(Role.CHAMPION)
    second = runner.invoke(app, ["demo", "seed", "--customers", "1500"], env=env)

    assert first.exit_code == 0, first.output
    assert champion is not None
    assert f"trained and promoted {champion.version}" in first.output
    assert (champion.folder / "report.html").exists()
    assert second.exit_code == 0
    assert f"champion {champion.version} is in place" in second.output
    assert len(FileModelRegistry(tmp_path / "models").list()) == 1
