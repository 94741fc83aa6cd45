"""`lanesight eval vision` runs the model engineer's evaluation on any split file."""

from __future__ import annotations

import json

from lanesight.common.cli import main as lanesight

from .conftest import GROCERY_DIR


def test_eval_vision_prints_accuracy_table_for_a_split(tmp_path, capsys) -> None:
    lines = (GROCERY_DIR / "val.txt").read_text().splitlines()[::15]
    split = tmp_path / "subset.txt"
    split.write_text("\n".join(lines) + "\n")

    assert lanesight(["eval", "vision", "--dataset", str(GROCERY_DIR), "--split", str(split)]) == 0
    out = capsys.readouterr().out
    assert f"{len(lines)} images" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    assert rows["all"][0] == str(len(lines))
    assert "produce" in rows and "images/s" in out

    assert (
        lanesight(
            ["eval", "vision", "--dataset", str(GROCERY_DIR), "--split", str(split), "--json"]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["count"] == len(lines)
    # A trained model, not chance (1/81): most of these held-out photos are right.
    assert result["all"]["fine_top5"] > 0.6
