"""Folders and files a user names as outputs: written only where nothing of the user's can be lost.

An output folder of kind K (a report, a run, an export) is written only when it is absent, empty, or a folder
this package made as a K: such a folder carries the marker file `.xtreme-transfer-K`, which lists the files
the package wrote there. Anything else (a run given as a report's --out, a folder of the user's files, a
report given as a run's output_dir) is refused with one line (OutputDirError, exit 2) before anything is
written. Paths are compared after resolving symlinks.

    check_output_dir(path, kind, sources=())   the resolved folder, or OutputDirError; `sources`: the folders
                                               the command reads (the output may not be, hold or sit in one)
    new_temp_dir(out, kind)                    a marked temporary sibling to assemble the output in
    replace_dir(tmp, out, kind)                moves it into place in one rename; moves aside (then deletes)
                                               only a folder that carries the marker and holds only the files
                                               the marker lists
    recover(out, kind)                         undoes what a killed replace left (only folders it made)
    claim_run_dir(path)                        a run/grid/preflight output_dir: absent, empty, or a run
    check_json_output(path, kind)              a --json OUT file: absent or one this command wrote (before
                                               the work); write_json_output(path, data, kind) writes it

A new command that writes a folder the user names (e.g. an export) calls `check_output_dir` first, assembles
in `new_temp_dir`, and finishes with `replace_dir`.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from repro.errors import OutputDirError

PACKAGE = "xtreme-transfer"
# What a run folder holds at its top (repro.rundir, repro.study.shards, run_all.sh's default report).
RUN_PARTS = ("cells", "intermediate", ".locks", ".shards")
_RUN_EXTRA = ("report", "features")   # the default report; the feature cache (repro.study.feature_cache)
# Files another tool of the package adds to a finished output (run_all.sh marks an incomplete report).
COMPANIONS = {"report": ("INCOMPLETE",)}
# A report written before reports carried the marker: exactly what build_report writes (recognised by shape).
_LEGACY_REPORT = {"report.md", "claims.csv", "claims.json", "configs.json", "tables", "plots", "INCOMPLETE"}
_LEGACY_SUFFIXES = {"tables": (".csv", ".tex"), "plots": (".png", ".svg")}
_MAX_MARKER = 16 << 20     # bytes: a marker (a file list) or a --json file read back to check it is ours


def marker_name(kind: str) -> str:
    return f".{PACKAGE}-{kind}"


def _marker(folder: Path, kind: str) -> dict | None:
    """The marker of `folder` for `kind`, or None when it has none (a symlink or an unreadable one is none)."""
    path = folder / marker_name(kind)
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > _MAX_MARKER:
            return None
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("written_by") != PACKAGE or data.get("kind") != kind:
        return None
    return data


def _write_marker(folder: Path, kind: str, files: list[str]) -> None:
    path = folder / marker_name(kind)
    tmp = folder / f"{marker_name(kind)}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps({"written_by": PACKAGE, "kind": kind, "files": files}, indent=1) + "\n")
    os.replace(tmp, path)


def _entries(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def _files_under(folder: Path) -> list[str]:
    """Every file and folder under `folder`, relative, folders with a trailing '/'; the marker itself left out."""
    out = []
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        out += [f"{(rel / d).as_posix()}/" for d in dirs]
        out += [(rel / f).as_posix() for f in files if not (rel == Path(".") and f.startswith(marker_name("")))]
    return sorted(out)


def _foreign(folder: Path, kind: str) -> str | None:
    """The first thing in `folder` the package did not write as a `kind` (relative path), or None."""
    mark = _marker(folder, kind)
    if mark is None:
        return "(no marker)"
    listed = set(mark.get("files") or [])
    allowed = set(COMPANIONS.get(kind, ()))
    for rel in _files_under(folder):
        if rel not in listed and rel.rstrip("/") not in allowed:
            return rel
    return None


def _is_legacy_report(folder: Path) -> bool:
    """A report folder written before the marker: only the files build_report writes, with its claims.json."""
    try:
        names = set(_entries(folder))
        if not {"report.md", "claims.json", "configs.json", "tables"} <= names or not names <= _LEGACY_REPORT:
            return False
        for sub, suffixes in _LEGACY_SUFFIXES.items():
            if sub in names:
                if not (folder / sub).is_dir() or (folder / sub).is_symlink():
                    return False
                if any(not n.endswith(suffixes) or not (folder / sub / n).is_file() for n in os.listdir(folder / sub)):
                    return False
        claims = folder / "claims.json"
        if claims.is_symlink() or claims.stat().st_size > _MAX_MARKER:
            return False
        data = json.loads(claims.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"bootstrap", "findings"} <= set(data)


def is_run_dir(folder: Path) -> bool:
    """Whether `folder` is a run's output_dir: it carries the run marker, or (a run from before the marker) it
    holds a run's parts and nothing else at its top."""
    if _marker(folder, "run") is not None:
        return True
    try:
        names = _entries(folder)
    except OSError:
        return False
    fingerprint = False
    for n in names:
        # (.shards, a write probe and the run marker's temporary file: what concurrent shards see first)
        if (n in ("cells", "intermediate", ".locks", ".shards") or (n.startswith("repro") and n.endswith(".log"))
                or n.startswith((".write-probe-", marker_name("run")))
                or (n == "features" and _is_feature_cache(folder / n))):
            fingerprint = True
        elif not (n in RUN_PARTS or n in _RUN_EXTRA or (n.startswith("preflight") and n.endswith(".json"))
                  or n.startswith(".write-probe-") or (n.startswith(".") and (".tmp-" in n or ".old-" in n))
                  or _marker(folder / n, "report") is not None):
            return False
    return fingerprint


def _is_feature_cache(folder: Path) -> bool:
    """The feature cache repro.study.feature_cache writes (what `repro plan --from data` and preflight leave in
    a run's output_dir before any cell): its lock folder, its index folder and entries named by 32 hex digits."""
    import re

    try:
        names = _entries(folder) if folder.is_dir() else None
    except OSError:
        return False
    return bool(names) and all(n in (".locks", "index") or n.startswith(".") and ".tmp" in n
                               or re.fullmatch(r"[0-9a-f]{32}", n) for n in names)


def _resolved(path: str | Path) -> Path:
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def _inside_run_parts(out: Path, sources: tuple = ()) -> Path | None:
    """The run folder (or folder read) whose cells/, intermediate/, .locks or .shards `out` would sit in."""
    for parent in out.parents:
        rel = out.relative_to(parent)
        if rel.parts and rel.parts[0] in RUN_PARTS and (parent in sources or (parent.is_dir() and is_run_dir(parent))):
            return parent
    return None


def check_output_dir(path: str | Path, kind: str, sources: tuple = (), what: str | None = None) -> Path:
    """The resolved output folder, after refusing one that would lose anything (see the module docstring).

    `sources`: folders the command reads; the output may not be one, hold one, or sit in one's cells/,
    intermediate/, .locks or .shards (RUN/report is fine). `what` names the option in messages (default --out)."""
    what = what or "--out"
    given = Path(path)
    out = _resolved(given)
    shown = f"{given}" + (f" (-> {out})" if given.is_symlink() else "")
    sources = tuple(_resolved(s) for s in sources)
    for src in sources:
        if out == src:
            raise OutputDirError(f"{what} {shown} is the folder it reads ({src}); writing there would replace it: "
                                 f"name a new folder, e.g. {src / kind}")
        if out in src.parents:
            raise OutputDirError(f"{what} {shown} holds the folder it reads ({src}); name a new folder")
    run = _inside_run_parts(out, sources)
    if run is not None:
        raise OutputDirError(f"{what} {shown} is inside the run {run} ({out.relative_to(run).parts[0]}/); "
                             "name a folder outside the run's cells, intermediate, .locks and .shards")
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"{what} {shown} is a file, not a folder")
    if out.is_dir():
        _check_replaceable(out, kind, shown, what)
    return out


def _check_replaceable(out: Path, kind: str, shown: str, what: str) -> None:
    try:
        names = _entries(out)
    except OSError as e:
        raise OutputDirError(f"{what} {shown} cannot be read ({e.strerror or e})") from e
    if not names or (kind == "report" and _is_legacy_report(out)):
        return
    if is_run_dir(out) and kind != "run":
        raise OutputDirError(f"{what} {shown} holds a run; a {kind} is written only into an absent or empty folder "
                             f"or a previous {kind} (e.g. {out / kind})")
    bad = _foreign(out, kind)
    if bad == "(no marker)":
        raise OutputDirError(f"{what} {shown} is not empty and is not a {kind} written by {PACKAGE} (it holds "
                             f"{names[0]!r}{f' and {len(names) - 1} more' if len(names) > 1 else ''}); nothing was "
                             f"written: name an absent or empty folder")
    if bad is not None:
        raise OutputDirError(f"{what} {shown} is a previous {kind}, but {bad!r} in it was not written by {PACKAGE}; "
                             f"move it out (the {kind} is replaced as a whole) or name another folder")


def new_temp_dir(out: Path, kind: str) -> Path:
    """A marked temporary sibling of `out` to assemble the output in (readable by others, as the results are)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    try:
        tmp.chmod(0o755)   # mkdtemp makes 0700
        _write_marker(tmp, kind, [])
    except BaseException:   # a full disk: nothing of ours is left behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def replace_dir(tmp: Path, out: Path, kind: str) -> None:
    """Moves the finished `tmp` to `out` in one rename. An existing `out` is checked again first (it may have
    changed since check_output_dir): empty, it is replaced by the rename itself; a previous `kind` is moved
    aside and deleted after; anything else is refused and `tmp` is left for the caller to remove."""
    _write_marker(tmp, kind, _files_under(tmp))
    old = None
    if out.is_dir() and not out.is_symlink() and _entries(out):
        _check_replaceable(out, kind, str(out), "output")
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, old / out.name)
    try:
        os.rename(tmp, out)   # over an empty folder it replaces it; over a non-empty one it fails (ENOTEMPTY)
    except OSError as e:
        if old is not None:
            os.rename(old / out.name, out)
            os.rmdir(old)
        if out.exists():
            raise OutputDirError(f"output {out} changed while the {kind} was written; nothing was replaced") from e
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(out: Path, kind: str) -> None:
    """What a replace killed mid-way (SIGKILL, power loss) left beside `out`: its unfinished temporary folder is
    removed, and a previous output moved aside but not yet replaced is put back. Only folders of this package's
    naming that are empty or carry the marker are touched."""
    if not out.parent.is_dir():
        return
    for tmp in out.parent.glob(f".{out.name}.tmp-*"):
        pid = tmp.name.removeprefix(f".{out.name}.tmp-").partition("-")[0]
        if tmp.is_symlink() or not tmp.is_dir() or (pid.isdigit() and _pid_alive(int(pid))):
            continue
        if not _entries(tmp):
            tmp.rmdir()
        elif _marker(tmp, kind) is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    for old in out.parent.glob(f".{out.name}.old-*"):
        if old.is_symlink() or not old.is_dir():
            continue
        names = _entries(old)
        if names == [out.name] and (old / out.name).is_dir() and _marker(old / out.name, kind) is not None:
            if not out.exists():
                os.rename(old / out.name, out)
            else:
                shutil.rmtree(old / out.name, ignore_errors=True)
            names = _entries(old)
        if not names:
            old.rmdir()


def claim_run_dir(path: str | Path) -> Path:
    """A run's output_dir (run, grid, preflight): absent, empty, or a run of this package (a resume); checked
    writable and marked as a run. Returns it as given (resolved only for the checks)."""
    given = Path(path)
    out = _resolved(given)
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"output_dir {given} is a file, not a folder")
    run = _inside_run_parts(out)
    if run is not None:
        raise OutputDirError(f"output_dir {given} is inside the run {run} ({out.relative_to(run).parts[0]}/); "
                             "name a folder outside it")
    if out.is_dir():
        try:
            names = _entries(out)
        except OSError as e:
            raise OutputDirError(f"output_dir {given} cannot be read ({e.strerror or e})") from e
        if names and not is_run_dir(out):
            foreign = [n for n in names if n not in RUN_PARTS + _RUN_EXTRA and not n.startswith(("repro", "preflight"))]
            raise OutputDirError(f"output_dir {given} holds files that are not a run of {PACKAGE} "
                                 f"({(foreign or names)[0]!r}{f' and {len(names) - 1} more' if len(names) > 1 else ''});"
                                 " name an absent or empty folder, or a previous run's output_dir to resume it")
    from repro.rundir import check_writable
    check_writable(given)
    if _marker(out, "run") is None:
        try:
            _write_marker(out, "run", [])
        except OSError as e:
            raise OutputDirError(f"output_dir {given} is not writable ({e.strerror or e})") from e
    return given


def check_json_output(path: str | Path, kind: str) -> Path:
    """The resolved --json OUT of command `kind`, if it may be written: absent, or a file this command wrote
    (its "written_by" says so). A folder or any other file is refused; call it before the work, not after."""
    given = Path(path)
    out = _resolved(given)
    if out.is_dir():
        raise OutputDirError(f"--json {given} is a folder; name a file")
    if out.exists():
        try:
            old = json.loads(out.read_text()) if out.stat().st_size <= _MAX_MARKER else None
        except (OSError, ValueError):
            old = None
        if not isinstance(old, dict) or old.get("written_by") != f"{PACKAGE} {kind}":
            raise OutputDirError(f"--json {given} exists and was not written by `{kind}`; name a new file "
                                 "(nothing was written)")
    return out


def write_json_output(path: str | Path, data: dict, kind: str) -> Path:
    """Writes `data` as JSON to `path` (a --json OUT of command `kind`) atomically, after check_json_output;
    the file carries "written_by" so that the next run of the command may replace it."""
    out = check_json_output(path, kind)
    text = json.dumps({"written_by": f"{PACKAGE} {kind}", **data}, indent=1, default=str) + "\n"
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputDirError(f"cannot write --json {path}: {e.strerror or e}") from e
    return out
