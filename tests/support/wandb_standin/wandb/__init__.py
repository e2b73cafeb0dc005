"""A stand-in for the `wandb` package (tests only: put tests/support/wandb_standin on PYTHONPATH): records every
init, log and finish call as a JSON line in $XT_WANDB_STANDIN_LOG, with the keyword arguments the real
wandb.init and Run.log accept, so a test can check what a run would have sent."""
import json
import os

_INIT_KEYS = {"project", "entity", "mode", "tags", "name", "group", "job_type", "config", "dir", "resume", "id",
              "notes", "reinit"}


def _record(entry: dict) -> None:
    with open(os.environ["XT_WANDB_STANDIN_LOG"], "a") as f:
        f.write(json.dumps(entry, default=str) + "\n")


class Run:
    def __init__(self, kwargs: dict):
        self.id = kwargs.get("id")
        self.finished = False

    def log(self, data: dict, step: int | None = None, commit: bool | None = None) -> None:
        assert not self.finished, "log after finish"
        _record({"call": "log", "id": self.id, "data": data, "step": step})

    def finish(self, exit_code: int | None = None) -> None:
        self.finished = True
        _record({"call": "finish", "id": self.id})


def init(**kwargs) -> Run:
    unknown = set(kwargs) - _INIT_KEYS
    assert not unknown, f"wandb.init got arguments the stand-in does not know: {unknown}"
    _record({"call": "init", **kwargs})
    return Run(kwargs)
