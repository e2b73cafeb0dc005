"""Every reader of the xtreme download/ layout, given malformed or hostile files of our own: each failure
is one FileFormatError line naming the file, the line or entry where known, and what was expected (issue 32).
Nothing here is a Python exception the user has to decode (UnicodeDecodeError, KeyError, OverflowError,
RecursionError, the int-conversion limit)."""
from __future__ import annotations

import json
import re

import pytest

import data_prep as dp

SQUAD_OK = {"data": [{"paragraphs": [{"context": "Bonn is a city.", "qas": [
    {"id": "q1", "question": "What is Bonn?", "answers": [{"text": "a city", "answer_start": 8}]}]}]}]}


def _squad(**changes) -> bytes:
    data = json.loads(json.dumps(SQUAD_OK))
    qa = data["data"][0]["paragraphs"][0]["qas"][0]
    for key, value in changes.items():
        if key == "context":
            data["data"][0]["paragraphs"][0]["context"] = value
        elif key == "answer_start":
            qa["answers"][0]["answer_start"] = value
        elif key == "data":
            data["data"] = value
        else:
            qa[key] = value
    return json.dumps(data).encode()


def _lareqa(breaks, answers=None) -> bytes:
    return json.dumps({"data": [{"paragraphs": [{"context": "One. Two.", "sentence_breaks": breaks, "qas": [
        {"id": "x", "question": "q?", "answers": [{"answer_start": 0}] if answers is None else answers}]}]}]}).encode()


# (task, split, language, relative file, content, the message after "<file>[:line]: ")
CASES = {
    "tsv bad byte": ("xnli", "dev", "de", "xnli/dev-de.tsv", b"a\tb\tentailment\nc\td\t\xffneutral\n",
                     r":2: not UTF-8: byte 0xff at column 5$"),
    "conll bad byte": ("panx", "dev", "de", "panx/dev-de.tsv", b"Angela\tB-PER\n\nMerk\xc3l\tI-PER\n",
                       r":3: not UTF-8: byte 0xc3 at column 5$"),
    "squad bad byte": ("xquad", "test", "de", "xquad/xquad.de.json", b'{"data":\n[\n"\xfe"]}',
                       r":3: not UTF-8: byte 0xfe at column 2$"),
    "squad not json": ("xquad", "test", "de", "xquad/xquad.de.json", b'{"data": [\n  {"paragraphs": }]}',
                       r":2: not valid json \(Expecting value, column 18\)$"),
    "squad nesting bomb": ("xquad", "test", "de", "xquad/xquad.de.json", b"[" * 200_000 + b"]" * 200_000,
                           r": json nested too deeply to read$"),
    "squad 5000-digit start": ("xquad", "test", "de", "xquad/xquad.de.json",
                               _squad(answer_start=0).replace(b'"answer_start": 0', b'"answer_start": ' + b"9" * 5000),
                               r": unreadable json value \(Exceeds the limit"),
    "squad infinite start": ("xquad", "test", "de", "xquad/xquad.de.json",
                             _squad(answer_start=0).replace(b'"answer_start": 0', b'"answer_start": 1e400'),
                             r": article 0 paragraph 0 question 'q1': OverflowError: .*\(expected SQuAD v1\.1 json"),
    "squad text start": ("mlqa", "dev", "de", "mlqa/MLQA_V1/dev/dev-context-de-question-de.json",
                         _squad(answer_start="eight"), r": article 0 paragraph 0 question 'q1': ValueError: invalid literal"),
    "squad no answer_start": ("tydiqa", "dev", "fi", "tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.fi.dev.json",
                              _squad(answers=[{"text": "a city"}]), r": .*question 'q1': missing key 'answer_start'"),
    "squad strings for articles": ("xquad", "test", "de", "xquad/xquad.de.json", _squad(data=["oops"]),
                                   r": article 0: AttributeError: 'str' object has no attribute 'get'"),
    "squad numeric context": ("xquad", "test", "de", "xquad/xquad.de.json", _squad(context=7),
                              r": article 0 paragraph 0: TypeError: context is a int, not a string"),
    "squad dict question": ("xquad", "test", "de", "xquad/xquad.de.json", _squad(question={"a": 1}),
                            r": .*question 'q1': TypeError: question must be a string"),
    "jsonl list row": ("xcopa", "dev", "et", "xcopa/val-et.jsonl", b'[1, 2]\n',
                       r":1: expected a json object per line, got a list$"),
    "jsonl dict label": ("xcopa", "dev", "et", "xcopa/val-et.jsonl",
                         b'{"premise": "p", "question": "cause", "label": {"a": 1}, "choice1": "a", "choice2": "b"}\n',
                         r":1: 'label' is a dict, expected a "),
    "jsonl nesting bomb": ("xcopa", "dev", "et", "xcopa/val-et.jsonl", b"\n" + b"[" * 100_000 + b"\n",
                           r":2: json nested too deeply to read$"),
    "siqa list label": ("siqa", "dev", "en", "siqa/socialIQa_v1.4_dev.jsonl", b'{"correct": ["A"]}\n',
                        r":1: unknown label \['A'\] for task 'siqa'"),
    "tatoeba bad byte": ("tatoeba", "test", "de", "tatoeba/de-en.de", b"Hallo\n\xff\n", r":2: not UTF-8: byte 0xff"),
    "lareqa one-number break": ("lareqa", "test", "de", "lareqa/xquad-r/de.json", _lareqa([[0]]),
                                r": paragraph 1: ValueError: not enough values to unpack .*\(expected XQuAD-R json"),
    "lareqa no answers": ("lareqa", "test", "de", "lareqa/xquad-r/de.json", _lareqa([[0, 4]], answers=[]),
                          r": paragraph 1: IndexError: list index out of range"),
    "lareqa text break": ("lareqa", "test", "de", "lareqa/xquad-r/de.json", _lareqa([["0", 4]]),
                          r": paragraph 1: TypeError: sentence_breaks\[0\] is not a pair of integers"),
    "lareqa overlapping breaks": ("lareqa", "test", "de", "lareqa/xquad-r/de.json", _lareqa([[0, 4], [0, 9]]),
                                  r": paragraph 1: sentence_breaks\[1\] = \[0, 9\] is not a span after the previous one"),
    "lareqa break past the context": ("lareqa", "test", "de", "lareqa/xquad-r/de.json", _lareqa([[0, 10**9]]),
                                      r"sentence_breaks\[0\] = \[0, 1000000000\] is not a span .* 9-character context"),
    "mewslix mentions not a list": ("mewslix", "test", "de", "mewslix/wikinews_mentions/test-de.jsonl",
                                    b'{"context": {"text": "x"}, "mentions": 3}\n', r":1: 'mentions' is a int, expected a list"),
    "mewslix label file not json": ("mewslix", "test", "de", "mewslix/wikinews_labels/test-de.json", b"{oops",
                                    r":1: not valid json"),
}
TATOEBA_GOLD = {"5000 digits": "9" * 5000, "superscript digit": "\u00b2", "negative": "-1"}


def _write(root, files: dict[str, bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


@pytest.mark.parametrize("case", CASES)
def test_each_malformed_file_is_one_line_naming_it(tmp_path, case):
    task, split, language, rel, content, message = CASES[case]
    files = {rel: content}
    if task == "tatoeba":
        files["tatoeba/de-en.en"] = b"Hello\nWorld\n"
    if task == "mewslix":
        files["mewslix/candidate_set_entities.jsonl"] = b'{"entity_id": "Q1", "title": "t", "description": "d"}\n'
        files.setdefault("mewslix/wikinews_mentions/test-de.jsonl", b"")
    _write(tmp_path, files)
    with pytest.raises(dp.FileFormatError) as e:
        dp.load_examples(task, split, language, source="xtreme", data_dir=tmp_path)
    text = str(e.value)
    assert "\n" not in text and len(text) < 600, text
    assert text.startswith(str(tmp_path / rel)) and e.value.path == str(tmp_path / rel), text
    assert re.search(message, text[len(str(tmp_path / rel)):]), text


@pytest.mark.parametrize("gold", TATOEBA_GOLD.values(), ids=TATOEBA_GOLD)
def test_tatoeba_gold_indices_are_plain_small_numbers(tmp_path, gold):
    _write(tmp_path, {"tatoeba/de-en.de": b"Hallo\n", "tatoeba/de-en.en": b"Hello\n",
                      "tatoeba/test-de.tsv": gold.encode() + b"\n"})
    with pytest.raises(dp.FileFormatError, match=r"test-de\.tsv:1: expected a line index below 1, got '") as e:
        dp.load_examples("tatoeba", "test", "de", source="xtreme", data_dir=tmp_path)
    assert len(str(e.value)) < 200


def test_a_million_token_sentence_costs_memory_linear_in_the_file(tmp_path):
    """CoNLL with one sentence of 10^6 tokens: read as one example, no quadratic anything, in seconds."""
    import time

    _write(tmp_path, {"panx/dev-de.tsv": b"w\tO\n" * 1_000_000})
    start = time.perf_counter()
    split = dp.load_examples("panx", "dev", "de", source="xtreme", data_dir=tmp_path)
    assert len(split) == 1 and len(split[0].tokens) == 1_000_000
    assert time.perf_counter() - start < 60


# ---- hub rows: a dataset whose rows are not what the parser reads (nulls, a changed schema) ----------------

def _hub_case(mutate):
    from tests.support import hub_standin as hs

    rows = hs.REPOS["google/xquad"].rows("xquad.th", "validation")
    mutate(rows)
    with hs.serve(overrides={("google/xquad", "xquad.th", "validation"): rows}):
        with pytest.raises(ValueError) as e:
            dp.load_examples("xquad", "test", "th", source="hub")
    text = str(e.value)
    assert "\n" not in text and text.startswith("google/xquad/xquad.th[validation] row "), text
    return text


def test_a_hub_row_with_a_null_answer_start_names_the_row():
    def null_start(rows):
        rows[1]["answers"] = {"text": ["Normandy"], "answer_start": [None]}
    assert "row 1: unexpected row (TypeError: int() argument must be" in _hub_case(null_start)



def test_the_nearest_answer_is_found_as_a_walk_over_every_occurrence_would():
    """anchor_answer finds the occurrence nearest to answer_start with two searches; a brute-force walk over
    every occurrence (what it replaced) agrees on random contexts, starts before, inside and past the end."""
    import random

    from data_prep.gold import anchor_answer

    def walk(context, text, start):
        if context[start:start + len(text)] == text:
            return start
        found = [i for i in range(len(context)) if context.startswith(text, i)]
        return min(found, key=lambda i: (abs(i - start), i)) if found else None

    rng = random.Random(0)
    for _ in range(20_000):
        context = "".join(rng.choice("ab ") for _ in range(rng.randint(0, 30)))
        text = "".join(rng.choice("ab ") for _ in range(rng.randint(1, 4)))
        start = rng.randint(-3, 35)
        assert anchor_answer(context, text, start) == walk(context, text, start), (context, text, start)


def test_one_letter_answers_in_a_long_context_cost_two_searches_each(tmp_path):
    """A hostile SQuAD file: 2,000 one-letter answers, each off its place, in a 200,000-letter context of
    that letter. A walk over every occurrence made 4*10^8 steps; two searches each finish at once."""
    context = "a" * 200_000
    qas = [{"id": f"q{i}", "question": "?", "answers": [{"text": "a", "answer_start": 10**6 + i}]} for i in range(2000)]
    _write(tmp_path, {"xquad/xquad.de.json": json.dumps({"data": [{"paragraphs": [{"context": context, "qas": qas}]}]}).encode()})
    split = dp.load_examples("xquad", "test", "de", source="xtreme", data_dir=tmp_path)
    assert len(split) == 2000 and split[0].answers == (("a", 199_999),)
