"""The Docker image, built and run (opt-in: XT_DOCKER_TEST=1; root, a running Docker engine; ~15 min on 2 cores).

The build and run commands are README's own lines, run as written (the image tag aside; a local base and the
host's CA added where there is no registry or a TLS-intercepting proxy). They cover: the build without
buildx, the smoke run as another host user (report readable, folder removable), `docker stop` and Ctrl-C
ending the run at once and a rerun resuming exactly, the hint for an unwritable /results, the warning
without a mount, and the CUDA image refusing to run without a GPU. docker/test_image.sh starts an engine
and runs this file. Timings go to $XT_DOCKER_WORK/timings.json (docs/docker.md quotes them).
"""
from __future__ import annotations

import grp
import json
import os
import pty
import re
import select
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.docker import dockerignore
from tests.support.paths import ROOT

pytestmark = [
    pytest.mark.docker, pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("XT_DOCKER_TEST") != "1", reason="opt-in: XT_DOCKER_TEST=1 (root, Docker)"),
]

WORK = Path(os.environ.get("XT_DOCKER_WORK", ROOT / ".docker-build"))
IMAGE = os.environ.get("XT_IMAGE", "xtreme-transfer:test")
CUDA_IMAGE = os.environ.get("XT_CUDA_IMAGE", "xtreme-transfer:test-cuda")
OTHER_UID = int(os.environ.get("XT_DOCKER_TEST_UID", "4321"))   # a host user that is neither root nor 1000
LOCAL_BASE = "xtreme-transfer-base:bookworm"
DEFAULT_BASE = "python:3.11-slim-bookworm"
# The grid's own stop line (repro's SIGTERM/SIGINT handling); run_all.sh's line is checked either way.
GRID_STOP_LINE = re.compile(r"stopped at step \d+ of \S+; rerun the same command to resume")
GRID_HANDLES_SIGNALS = any("rerun the same command to resume" in p.read_text() for p in (ROOT / "repro").glob("*.py"))
TIMINGS: dict[str, float | str] = {}


def docker(*args, timeout: float = 900, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *map(str, args)], capture_output=True, text=True, timeout=timeout, **kw)


def readme_line(start: str) -> str:
    """The line of README's Docker block that starts with `start`, its comment cut off."""
    section = (ROOT / "README.md").read_text().split("\n## Docker\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    (line,) = [ln for ln in block.splitlines() if ln.startswith(start)]
    return line.split("  #")[0].rstrip()


def timed(name: str, started: float) -> float:
    TIMINGS[name] = round(time.monotonic() - started, 1)
    return TIMINGS[name]


@pytest.fixture(scope="module", autouse=True)
def timings():
    yield TIMINGS
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "timings.json").write_text(json.dumps(TIMINGS, indent=1) + "\n")
    print("\ntimings:", json.dumps(TIMINGS))


@pytest.fixture(scope="module")
def engine() -> str:
    r = docker("info", "--format", "{{.ServerVersion}}", timeout=60)
    if r.returncode != 0:
        pytest.fail("XT_DOCKER_TEST=1 needs a running Docker engine: start dockerd (as root), or run "
                    f"docker/test_image.sh, which does ({r.stderr.strip()[:200]})")
    if os.geteuid() != 0:
        pytest.fail("XT_DOCKER_TEST=1 runs as root: it runs commands as another host user (setpriv)")
    return r.stdout.strip()


@pytest.fixture(scope="module")
def build_args(engine) -> list[str]:
    """What this machine adds to README's build line: a base image where no registry answers, the proxy's CA."""
    args = []
    base = os.environ.get("XT_BASE_IMAGE")
    if not base and docker("image", "inspect", DEFAULT_BASE).returncode != 0:
        started = time.monotonic()
        r = subprocess.run([str(ROOT / "docker" / "make_base_image.sh"), LOCAL_BASE], capture_output=True,
                           text=True, timeout=3600)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        timed("base_image_s", started)
        base = LOCAL_BASE
    if base:
        args += ["--build-arg", f"BASE_IMAGE={base}"]
    ca = os.environ.get("XT_CA_FILE")
    pems = [Path(ca)] if ca else sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
    if pems:
        args += ["--build-arg", "BUILD_CA_CERT=" + "".join(p.read_text() for p in pems)]
    return args   # GIT_COMMIT: README's build line passes it (the image then records the commit)


def build(readme_start: str, tag: str, build_args: list[str], log: str, env: dict | None = None,
          docker_cli: str = "docker") -> float:
    """README's build line as written, but for the tag, `build_args` before its `.` and `env` (DOCKER_BUILDKIT)."""
    line = readme_line(readme_start)
    assert line.startswith("docker build -t xtreme-transfer") and line.endswith(" ."), line
    name = line.split()[3]
    cmd = line.replace(f"-t {name} ", f"-t {tag} ", 1)[:-2] + " " + shlex.join(build_args) + " ."
    cmd = docker_cli + cmd[len("docker"):]
    started = time.monotonic()
    plain = {k: v for k, v in os.environ.items() if k != "DOCKER_BUILDKIT"}
    r = subprocess.run(["bash", "-c", cmd], cwd=ROOT, capture_output=True, text=True, timeout=3600,
                       env=plain | (env or {}))
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / log).write_text(r.stdout + r.stderr)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    return time.monotonic() - started


@pytest.fixture(scope="module")
def image(build_args) -> str:
    buildx = docker("buildx", "version").returncode == 0
    TIMINGS["builder"] = "buildkit (buildx)" if buildx else "legacy (no buildx)"
    TIMINGS["build_s"] = round(build("docker build -t xtreme-transfer --build-arg GIT_COMMIT", IMAGE, build_args, "build.log"), 1)
    TIMINGS["image_mb"] = int(docker("image", "inspect", "-f", "{{.Size}}", IMAGE).stdout) // 10**6
    return IMAGE


def results_numbers(results: Path) -> dict:
    """What an exact resume must reproduce: every cell's scores and training steps, every line of every
    train_log.jsonl (step losses, grad norms, learning rates, dev evaluations)."""
    out = {}
    for path in sorted(results.glob("smoke/cells/*/results.json")):
        r = json.loads(path.read_text())
        phases = {k: {f: v.get(f) for f in ("steps", "best_step", "best_dev")} for k, v in r["training"].items() if v}
        out[r["cell_id"]] = {"scores": r["scores"], "per_language": r["per_language"], "training": phases}
    for log in sorted(results.glob("smoke/**/train_log.jsonl")):
        out[str(log.relative_to(results))] = [json.loads(ln) for ln in log.read_text().splitlines() if ln.strip()]
    return out


def as_user(uid: int, command: str, cwd: Path, timeout: float = 1800) -> subprocess.CompletedProcess:
    """`command` in bash as host uid:gid `uid`, in the docker group (the socket), HOME in cwd."""
    groups = str(grp.getgrnam("docker").gr_gid)
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), "LANG": "C.UTF-8"}
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", f"--groups={groups}", "bash", "-c",
                           command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def host_dir() -> Path:
    """A folder every host user can reach (pytest's tmp_path is under a 0700 folder of root's)."""
    d = Path(tempfile.mkdtemp(prefix="xt-docker-test-", dir="/tmp"))
    d.chmod(0o755)
    return d


@pytest.fixture
def shared_tmp():
    d = host_dir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def modes(root: Path) -> set[tuple[str, int]]:
    kinds = set()
    for p in [root, *root.rglob("*")]:
        st = p.lstat()
        kinds.add(("dir" if p.is_dir() else "file", st.st_mode & 0o777))
    return kinds


@pytest.fixture(scope="module")
def reference_run(image) -> dict:
    """README's smoke run line, as written, by a host user that is neither root nor the image's uid 1000."""
    home = host_dir()
    os.chown(home, OTHER_UID, OTHER_UID)
    line = readme_line('docker run --rm --user "$(id -u):$(id -g)" -v "$PWD/results:/results"')
    assert line.split()[-1] == "xtreme-transfer"
    started = time.monotonic()
    r = as_user(OTHER_UID, "mkdir -p results && " + line[: -len("xtreme-transfer")] + image, home)
    seconds = timed("smoke_run_s", started)
    (WORK / "run.log").write_text(r.stdout + r.stderr)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    yield {"home": home, "run": r, "numbers": results_numbers(home / "results"), "seconds": seconds}
    shutil.rmtree(home, ignore_errors=True)


def test_the_image_holds_the_allow_list_and_the_tested_python(image):
    python, *listing = docker("run", "--rm", "--entrypoint", "sh", image, "-c",
                              "cd /app && python -c 'import platform; print(platform.python_version())' && "
                              "find . -type f ! -path './*.egg-info/*'").stdout.split()
    files = {f[2:] for f in listing}
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    expected = {f for f in tracked if dockerignore.includes(f, dockerignore.patterns(ROOT / ".dockerignore"))}
    assert files == expected
    assert python.startswith("3.11."), python      # as tests/ run on (3.11) and Debian bookworm's python3
    TIMINGS["image_python"] = python


def test_help(image):
    r = docker("run", "--rm", image, "--help", timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("The xtreme-transfer image runs ./run_all.sh")
    assert "Usage: ./run_all.sh" in r.stdout


def test_readme_run_line_as_another_host_user(reference_run):
    home, r = reference_run["home"], reference_run["run"]
    out = r.stdout + r.stderr
    assert f"entrypoint: results in {home}/results, as uid {OTHER_UID}, device cpu" in r.stdout
    assert r.stdout.strip().splitlines()[-1].endswith(f"; report: {home}/results/smoke/report/report.md")
    for noise in ("PyTorch was not found", "Traceback", "WARNING"):
        assert noise not in out, out[-3000:]
    assert len(reference_run["numbers"]) == 12 + 12 + 3    # cells, their target logs, intermediate logs
    results = home / "results"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    for cell in results.glob("smoke/cells/*/results.json"):   # README's build line passed the commit in
        assert json.loads(cell.read_text())["environment"]["commit"] == head, cell
    assert {p.stat().st_uid for p in results.rglob("*")} == {OTHER_UID}
    assert modes(results) <= {("dir", 0o755), ("file", 0o644)}
    read = as_user(OTHER_UID, "head -1 results/smoke/report/report.md && rm -rf results && ls -A", home)
    assert read.returncode == 0 and read.stdout.startswith("# xtreme-transfer report"), read.stderr
    assert not results.exists()


def _run_detached(image: str, results: Path, name: str) -> None:
    docker("rm", "-f", name)
    r = docker("run", "-d", "--name", name, "--network", "none", "-v", f"{results}:/results",
               "-e", f"XT_RESULTS_HOST={results}", image)
    assert r.returncode == 0, r.stderr


def _wait_mid_grid(results: Path, finished_before: int, timeout: float = 900) -> None:
    """Until one more cell has finished than before, then a few seconds into the next one."""
    deadline = time.monotonic() + timeout
    while len(list(results.glob("smoke/cells/*/results.json"))) <= finished_before:
        assert time.monotonic() < deadline, "no cell finished in time"
        time.sleep(1)
    time.sleep(6)


def _stopped(name: str, stop, what: str) -> tuple[int, str, float]:
    started = time.monotonic()
    stop()
    rc = int(docker("wait", name, timeout=120).stdout.strip())
    seconds = timed(what, started)
    r = docker("logs", name)
    logs = r.stdout + r.stderr
    docker("rm", "-f", name)
    return rc, logs, seconds


def _check_stop_output(logs: str, sig: str) -> None:
    assert f"run_all.sh: stopped by SIG{sig} during the grid; no report written." in logs, logs[-3000:]
    assert "Terminated" not in logs
    if GRID_HANDLES_SIGNALS:
        assert GRID_STOP_LINE.search(logs), logs[-3000:]
        assert "Traceback" not in logs


def _ctrl_c_in_a_terminal(image: str, results: Path, finished_before: int) -> tuple[int, str, float]:
    """`docker run -it` in a pseudo-terminal; Ctrl-C is the byte the terminal turns into SIGINT."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("docker", ["docker", "run", "-it", "--rm", "--network", "none", "-v", f"{results}:/results",
                             image])
    out, mid, sent = b"", None, None
    deadline = time.monotonic() + 900
    while True:
        ready, _, _ = select.select([fd], [], [], 1)
        try:
            chunk = os.read(fd, 65536) if ready else None     # read all along: a full terminal blocks docker
        except OSError:                                       # EIO: the other side has closed
            break
        if chunk == b"":
            break
        out += chunk or b""
        now = time.monotonic()
        if sent is None:
            if mid is None and len(list(results.glob("smoke/cells/*/results.json"))) > finished_before:
                mid = now + 6                                 # a few seconds into the next cell
            if mid is not None and now >= mid:
                os.write(fd, b"\x03")
                sent = now
            assert now < deadline, "no cell finished in time"
        else:
            assert now - sent < 120, "no exit after Ctrl-C"
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace"), timed("ctrl_c_s", sent)


def test_stop_and_ctrl_c_end_the_run_at_once_and_a_rerun_resumes_exactly(image, reference_run, shared_tmp):
    """As uid 1000 (no --user) into a folder it may write: docker stop, docker kill -s INT, Ctrl-C under -it,
    each mid-cell; then the same command finishes the grid with the reference run's numbers, bit for bit."""
    results = shared_tmp / "results"
    results.mkdir()
    results.chmod(0o777)
    name = "xt-test-stop"

    _run_detached(image, results, name)
    _wait_mid_grid(results, 0)
    rc, logs, seconds = _stopped(name, lambda: docker("stop", name), "docker_stop_s")
    assert rc == 143 and seconds <= 5, (rc, seconds, logs[-2000:])
    _check_stop_output(logs, "TERM")
    assert not (results / "smoke" / "report").exists()

    done = len(list(results.glob("smoke/cells/*/results.json")))
    _run_detached(image, results, name)
    _wait_mid_grid(results, done)
    rc, logs, seconds = _stopped(name, lambda: docker("kill", "--signal=INT", name), "docker_kill_int_s")
    assert rc == 130 and seconds <= 5, (rc, seconds, logs[-2000:])
    _check_stop_output(logs, "INT")

    done = len(list(results.glob("smoke/cells/*/results.json")))
    rc, out, seconds = _ctrl_c_in_a_terminal(image, results, done)
    assert rc == 130 and seconds <= 5, (rc, seconds, out[-2000:])
    _check_stop_output(out, "INT")
    assert not (results / "smoke" / "report").exists()

    started = time.monotonic()
    r = docker("run", "--rm", "--network", "none", "-v", f"{results}:/results", image, timeout=1800)
    timed("resumed_run_s", started)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert "already finished" in r.stdout
    assert results_numbers(results) == reference_run["numbers"]
    # Written by uid 1000 under umask 022: another host user reads everything (deleting needs that uid).
    assert modes(results) - {("dir", 0o777)} <= {("dir", 0o755), ("file", 0o644)}
    read = as_user(OTHER_UID, "head -1 results/smoke/report/report.md", shared_tmp)
    assert read.returncode == 0 and read.stdout.startswith("# xtreme-transfer report"), read.stderr


def test_an_unwritable_results_folder_gets_one_line_naming_the_uid_and_the_fix(image, tmp_path):
    results = tmp_path / "results"
    results.mkdir(mode=0o755)          # root's, as `docker run -v` makes a missing folder
    started = time.monotonic()
    r = docker("run", "--rm", "-v", f"{results}:/results", "-e", f"XT_RESULTS_HOST={results}", image)
    assert timed("unwritable_s", started) < 30
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"entrypoint: error: /results ({results}) is not writable by the container's uid 1000 (gid 1000): it "
        'belongs to uid 0 with mode 0755. Run the container as yourself with --user "$(id -u):$(id -g)", or let '
        "uid 1000 write there (chmod a+rwx on the host folder)")
    assert list(results.iterdir()) == []


def test_a_run_without_a_mount_warns_at_the_start_and_at_the_end(image):
    tiny = ["grid.models=[bert-tiny]", "grid.intermediate_tasks=[none]", "grid.target_tasks=[synth_sentiment]",
            "target.epochs=1"]
    r = docker("run", "--rm", "--network", "none", image, "smoke", *tiny)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    err = r.stderr.strip().splitlines()
    assert err[0].startswith("entrypoint: WARNING: /results is not a mounted folder: the results stay inside "
                             "this container and are lost when it is removed; mount a host folder")
    assert err[-1] == "run_all.sh: " + err[0][len("entrypoint: "):]
    assert r.stdout.strip().splitlines()[-1].endswith(
        "report: /results/smoke/report/report.md (/results: inside the container)")


@pytest.fixture(scope="module")
def cuda_image(build_args) -> str:
    if os.environ.get("XT_DOCKER_TEST_CUDA", "1") == "0":
        pytest.skip("XT_DOCKER_TEST_CUDA=0")
    TIMINGS["cuda_build_s"] = round(build("docker build -t xtreme-transfer:cuda --build-arg JAX_EXTRA=cuda",
                                          CUDA_IMAGE, build_args, "build-cuda.log"), 1)
    TIMINGS["cuda_image_mb"] = int(docker("image", "inspect", "-f", "{{.Size}}", CUDA_IMAGE).stdout) // 10**6
    return CUDA_IMAGE


def test_the_cuda_image_without_a_gpu_stops_at_once_in_one_line(cuda_image, tmp_path):
    if shutil.which("nvidia-smi") and subprocess.run(["nvidia-smi"], capture_output=True).returncode == 0:
        pytest.skip("this machine has a GPU")
    results = tmp_path / "results"
    results.mkdir()
    results.chmod(0o777)
    started = time.monotonic()
    r = docker("run", "--rm", "-v", f"{results}:/results", cuda_image, timeout=300)
    timed("cuda_refusal_s", started)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.strip() == ("run_all.sh: --device gpu, but JAX finds no GPU here (only: cpu); run the "
                                "container with --gpus all (NVIDIA Container Toolkit), or pass --device cpu.")
    assert r.stdout.strip() == f"entrypoint: results in {results}, as uid 1000, device gpu"
    assert not (results / "smoke").exists()
    # --device cpu runs it on the CPU, without the plugin's complaints.
    r = docker("run", "--rm", "--network", "none", "-v", f"{results}:/results", cuda_image, "--device", "cpu",
               "smoke", "grid.models=[bert-tiny]", "grid.intermediate_tasks=[none]",
               "grid.target_tasks=[synth_sentiment]", "target.epochs=1", timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert "Traceback" not in r.stderr and "cuda" not in r.stderr.lower(), r.stderr[-3000:]


def test_the_same_build_line_with_buildkit(build_args):
    """README's build line under BuildKit too: buildx if the client has it, else Docker 20.10's built-in one."""
    if docker("buildx", "version").returncode == 0:
        cli, env = "docker", {"DOCKER_BUILDKIT": "1"}
    elif shutil.which("/usr/bin/docker") and docker("version").returncode == 0 and subprocess.run(
            ["/usr/bin/docker", "version", "-f", "{{.Client.Version}}"], capture_output=True,
            text=True).stdout.startswith("20."):
        cli, env = "/usr/bin/docker", {"DOCKER_BUILDKIT": "1"}
    else:
        pytest.skip("no BuildKit client here (no buildx, no Docker 20.10 client)")
    tag = IMAGE + "-buildkit"
    TIMINGS["buildkit_build_s"] = round(build("docker build -t xtreme-transfer --build-arg GIT_COMMIT", tag, build_args,
                                              "build-buildkit.log", env=env, docker_cli=cli), 1)
    assert "DEPRECATED: The legacy builder" not in (WORK / "build-buildkit.log").read_text()
    r = docker("run", "--rm", tag, "--help", timeout=120)
    assert r.returncode == 0 and "Usage: ./run_all.sh" in r.stdout
