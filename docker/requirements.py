"""Prints the project's run-time requirements (pyproject [project].dependencies, plus one optional extra),
one per line, so the image can install them in a layer that only changes when pyproject.toml does.

    python3 docker/requirements.py pyproject.toml [EXTRA]
"""
import sys
import tomllib

project = tomllib.load(open(sys.argv[1], "rb"))["project"]
extra = sys.argv[2] if len(sys.argv) > 2 else ""
lines = list(project["dependencies"])
if extra:
    optional = project.get("optional-dependencies", {})
    if extra not in optional:
        sys.exit(f"requirements.py: pyproject.toml has no extra {extra!r} (has: {', '.join(optional)})")
    lines += optional[extra]
print("\n".join(lines))
