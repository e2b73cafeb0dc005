"""The run folder's own JSON files, tampered with or hostile (issue 32): results.json, a checkpoint's
checksums, train_log.jsonl. A nesting bomb, a 5000-digit number or an infinite step is one line naming the
file (results) or a reason (a damaged checkpoint, a skipped log line), never a RecursionError or OverflowError."""
from __future__ import annotations

import logging

import pytest

from repro import results
from repro.training import checkpoint, loop

BOMB = "[" * 100_000 + "]" * 100_000
DIGITS = '{"step": ' + "9" * 5000 + "}"


@pytest.mark.parametrize("text, why", [(BOMB, "maximum recursion depth"), (DIGITS, "Exceeds the limit")])
def test_a_hostile_results_json_is_one_line_naming_it(tmp_path, text, why):
    path = tmp_path / "results.json"
    path.write_text(text)
    with pytest.raises(results.ResultsError, match=rf"^{path}: malformed JSON \({why}") as e:
        results.read_json(path)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text, why", [(BOMB, "unreadable (maximum recursion depth"), ("[1, 2]", "is not an object"),
                                       ('{"f": 1}', "is not an object")])
def test_hostile_checksums_make_a_damaged_checkpoint(tmp_path, text, why):
    (tmp_path / checkpoint.CHECKSUMS).write_text(text)
    assert why in checkpoint.damage(tmp_path)


def test_hostile_train_log_lines_are_skipped_as_torn(tmp_path, caplog):
    path = tmp_path / "train_log.jsonl"
    path.write_text('{"step": 1}\n{"step": Infinity}\n' + BOMB + "\n" + DIGITS + '\n{"step": 2}\n')
    with caplog.at_level(logging.WARNING, logger="repro"):
        log = loop._TrainLog(path, resume_step=2, enabled=True)
    log.f.close()
    assert path.read_text() == '{"step": 1}\n{"step": 2}\n'
    assert sum("skipped a torn line" in r.getMessage() for r in caplog.records) == 3
