"""The environment block of results.json names the commit even where there is no .git (a Docker image)."""
import subprocess

from repro import environment


def test_commit_falls_back_to_build_time_value(monkeypatch):
    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    monkeypatch.setenv("XT_GIT_COMMIT", "0123abc")
    assert environment.environment()["commit"] == "0123abc"
    monkeypatch.delenv("XT_GIT_COMMIT")
    assert environment.environment()["commit"] is None


def test_commit_from_git_checkout():
    env = environment.environment()
    assert env["commit"] and len(env["commit"].split("-")[0]) == 40
    assert env["jax"] and env["flax"] and env["device"] == "cpu"


CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse4_2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512_bf16 amx_bf16 amx_tile hypervisor

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse4_2
"""


def test_cpu_model_and_vector_flags_from_cpuinfo():
    c = environment.cpu(CPUINFO)
    assert c["model"] == "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"
    assert c["vector_flags"] == ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                                 "avx512_bf16", "amx_bf16", "amx_tile"]
    assert "hypervisor" in c["flags"] and "avx512_vnni" not in c["flags"]   # the first processor's entry
    assert environment.cpu("")["flags"] == []


def test_every_library_that_shapes_a_number_is_recorded():
    env = environment.environment()
    libs = env["libraries"]
    for name in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "transformers", "tokenizers", "datasets",
                 "numpy"):
        assert libs[name], name   # installed in the test venv: a version string
    assert libs["jax"] == env["jax"]
    assert env["cpu"]["model"] and env["cpu"]["logical_cores"] >= 1
    assert env["gpu"] is None   # JAX_PLATFORMS=cpu


def test_gpu_fields_are_none_without_cuda(monkeypatch):
    def no_smi(*a, **k):
        raise FileNotFoundError("nvidia-smi")
    monkeypatch.setattr(subprocess, "run", no_smi)
    g = environment.gpu()
    assert g["driver"] is None and g["cuda_runtime"] is None and g["cudnn"] is None
    assert isinstance(g["libraries"], dict)


def test_environment_round_trips_through_the_results_schema_and_old_files_still_read():
    import dataclasses
    from repro import typed
    from repro.results import Environment
    env = environment.environment()
    back = typed.build(Environment, env, ValueError)
    assert back.libraries["numpy"] == env["libraries"]["numpy"] and back.cpu["model"] == env["cpu"]["model"]
    old = {k: env[k] for k in ("device", "jax", "flax", "python", "commit")}   # a results.json of before
    read = typed.build(Environment, old, ValueError)
    assert read.libraries == {} and read.cpu is None and read.gpu is None
    assert {f.name for f in dataclasses.fields(Environment)} >= {"libraries", "cpu", "gpu"}


def test_csv_cells_hold_json_not_python_repr():
    import csv
    import io
    import json
    from repro.tables import csv_text
    rows = [{"cell": "a", "libraries": {"jax": "0.10.2", "x": None}, "flags": ["avx", "avx2"], "n": float("nan")},
            {"cell": "b", "nested": {"d": {"v": float("nan")}}}]
    got = list(csv.DictReader(io.StringIO(csv_text(rows))))
    assert json.loads(got[0]["libraries"]) == {"jax": "0.10.2", "x": None}
    assert json.loads(got[0]["flags"]) == ["avx", "avx2"] and got[0]["n"] == ""
    assert json.loads(got[1]["nested"]) == {"d": {"v": None}}


def test_report_environment_names_the_cpu_and_each_library_version_once():
    from repro.report.markdown import environment_details
    base = {"cpu": "AMD EPYC 7B13", "cpu_vector_flags": "avx avx2 fma", "cpu_logical_cores": 2, "gpu": None}
    rows = [dict(base, libraries={"jax": "0.10.2", "optax": "0.2.8"}),
            dict(base, libraries={"jax": "0.10.2", "optax": "0.2.9"}),
            dict(base, cpu="Intel(R) Xeon(R) CPU @ 2.20GHz", libraries={"jax": "0.10.2", "optax": "0.2.8"})]
    text = environment_details(rows)
    assert "| AMD EPYC 7B13 | avx avx2 fma | 2 | — | 2 |" in text
    assert "| Intel(R) Xeon(R) CPU @ 2.20GHz | avx avx2 fma | 2 | — | 1 |" in text
    assert "| jax | 0.10.2 (3) |" in text and "| optax | 0.2.8 (2), 0.2.9 (1) |" in text
    old = environment_details([{"cpu": None, "libraries": {}}])   # results written before issue 34
    assert "not recorded" in old
