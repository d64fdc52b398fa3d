"""Documentation coverage of the dbt models: every model and every built column described.

Reads what `dbt docs generate` writes to the target directory: `manifest.json` (the models and the
descriptions from their yml, `{{ doc() }}` blocks already rendered) and `catalog.json` (the
columns each built relation really has in the warehouse). A model of this project needs a
non-empty description; so does every column of its relation, whether the yml lists it or not. A
column the yml describes but the relation lacks is not counted here (dbt's own contracts and
tests are the place for that).

    python -m orchestration.defs.dbt.docs_coverage [--target-dir dbt_project/target]

prints one line per gap and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE = "agent_mitra"
DEFAULT_TARGET_DIR = Path(__file__).resolve().parents[3] / "dbt_project" / "target"


@dataclass(frozen=True, order=True)
class Undocumented:
    """A model without a description (`column` None), or a column of it without one."""

    model: str
    column: str | None = None

    def __str__(self) -> str:
        return (
            f"model {self.model}" if self.column is None else f"column {self.model}.{self.column}"
        )


def _described(entry: dict[str, Any] | None) -> bool:
    return bool(entry and (entry.get("description") or "").strip())


def undocumented(
    manifest: dict[str, Any], catalog: dict[str, Any], package: str = PACKAGE
) -> list[Undocumented]:
    """The models of `package` lacking a description, and the columns of their built relations
    (per the catalog) lacking one in the manifest; sorted by model, the model before its
    columns. Column names compare case-insensitively, as PostgreSQL folds unquoted names."""
    missing: list[Undocumented] = []
    catalog_nodes = catalog.get("nodes", {})
    for unique_id, node in manifest.get("nodes", {}).items():
        if node.get("resource_type") != "model" or node.get("package_name") != package:
            continue
        name = node["name"]
        if not _described(node):
            missing.append(Undocumented(name))
        documented = {
            column_name.lower()
            for column_name, column in node.get("columns", {}).items()
            if _described(column)
        }
        built = catalog_nodes.get(unique_id, {}).get("columns", {})
        missing.extend(
            Undocumented(name, column["name"])
            for column in built.values()
            if column["name"].lower() not in documented
        )
    return sorted(missing, key=lambda gap: (gap.model, gap.column is not None, gap.column or ""))


def undocumented_in(target_dir: Path) -> list[Undocumented]:
    """`undocumented` on the manifest and catalog that `dbt docs generate` left in `target_dir`."""
    files = {name: target_dir / f"{name}.json" for name in ("manifest", "catalog")}
    absent = [str(path) for path in files.values() if not path.is_file()]
    if absent:
        raise FileNotFoundError(
            f"no {' or '.join(absent)}: run `mitra dbt docs generate` (with --target-path) first"
        )
    manifest, catalog = (json.loads(path.read_text()) for path in files.values())
    return undocumented(manifest, catalog)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m orchestration.defs.dbt.docs_coverage",
        description="List the dbt models and columns without a description; exit 1 if any.",
    )
    parser.add_argument(
        "--target-dir",
        type=Path,
        default=DEFAULT_TARGET_DIR,
        help="where `dbt docs generate` wrote manifest.json and catalog.json "
        "(default: dbt_project/target)",
    )
    args = parser.parse_args(argv)
    try:
        gaps = undocumented_in(args.target_dir)
    except FileNotFoundError as exc:
        print(f"docs_coverage: error: {exc}", file=sys.stderr)
        return 2
    for gap in gaps:
        print(f"undocumented {gap}")
    print(f"{len(gaps)} undocumented models and columns")
    return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main())
