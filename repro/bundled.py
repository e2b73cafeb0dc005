"""The presets that ship with the package, addressed by name: `xtreme-transfer grid smoke`.

One copy of each preset: `configs/*.yaml` in a checkout. `repro/presets` is a link to that folder, so the
wheel's package data (pyproject.toml) carries the same files, and an installed package finds them under
`repro/presets/` with no checkout around it. A CONFIG argument is resolved in this order:

    an existing file or folder           used as it is (a folder means FOLDER/config.yaml)
    NAME, NAME.yaml or configs/NAME.yaml the shipped preset NAME, when no such path exists here
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

_CHECKOUT_CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def presets_dir() -> Path | None:
    """The folder of the shipped presets: the package data, else a checkout's configs/ (a clone made without
    symlinks turns repro/presets into a one-line text file)."""
    packaged = Path(str(resources.files("repro") / "presets"))
    for d in (packaged, _CHECKOUT_CONFIGS):
        if d.is_dir():
            return d
    return None


def names() -> list[str]:
    d = presets_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d else []


def resolve(arg: str | Path) -> Path:
    """The path CONFIG names: itself when it exists, else the shipped preset it names (see the module)."""
    path = Path(arg)
    if path.exists():
        return path
    parts = path.parts
    name = None
    if len(parts) == 1:
        name = path.stem if path.suffix in (".yaml", ".yml") else path.name
    elif len(parts) == 2 and parts[0] == "configs" and path.suffix == ".yaml":
        name = path.stem
    d = presets_dir()
    if name and d is not None and (d / f"{name}.yaml").is_file():
        return d / f"{name}.yaml"
    return path
