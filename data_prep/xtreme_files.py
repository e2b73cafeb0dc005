"""Readers for the google-research/xtreme `download/` layout (scripts/download_data.sh followed by
utils_preprocess.py). Every malformed input is a one-line error naming the file and line (or key).

    xnli/{train,dev,test}-{lang}.tsv          premise \t hypothesis \t label   (test: no label)
    pawsx/{train,dev,test}-{lang}.tsv         sentence1 \t sentence2 \t label  (test: no label)
    udpos/, panx/{train,dev,test}-{lang}.tsv  word \t tag, blank line between sentences (test: word)
    xquad/xquad.{lang}.json                   SQuAD v1.1 json (test annotations removed by xtreme)
    mlqa/MLQA_V1/{dev,test}/{split}-context-{lang}-question-{lang}.json
    tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.{lang}.train.json, tydiqa-goldp-v1.1-dev/...dev.json
    squad/{train,dev}-v1.1.json
    xcopa/{train,val,test}-{lang}.jsonl       premise, choice1, choice2, question, label, idx
    siqa/socialIQa_v1.4_{trn,dev,tst}.jsonl   context, question, answerA..C, correct (A/B/C)
    tatoeba/{lang}-en.{lang}, {lang}-en.en    one sentence a line; gold indices (xtreme's label file
                                              layout) in tatoeba/test-{lang}.tsv, or beside download/
                                              in ../labels/tatoeba/test-{lang}.tsv
    mewslix/candidate_set_entities.jsonl, wikinews_mentions/{split}-{lang}.jsonl,
            wikinews_labels/{split}-{lang}.json, wikipedia_pairs-train.jsonl
    lareqa/xquad-r/{lang}.json                SQuAD json + per-paragraph sentence_breaks

xtreme removes test gold (utils_preprocess.py): QA answers become {"answer_start": 0, "text": ""}, tagging
test files keep the words only, XCOPA test labels become 0. Those are read as absent gold (no answers,
tags None, label None), so that `gold_problem` refuses them. A file that is not there is a
MissingDataError naming it; a file that is there but not as expected (not UTF-8, not JSON, nested beyond
reason, a missing key, a value of the wrong kind) is a FileFormatError naming the file and the line or entry.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections import Counter
from pathlib import Path

from .errors import FileFormatError, MissingDataError
from .examples import Candidates, Example, check_label
from .gold import NO_GOLD, anchor_answers
from .tasks import TaskSpec

# Languages of a task that no xtreme download/ has: scripts/download_data.sh fetches xquad for
# ar de el en es hi ru th tr vi zh only (XTREME-R's ro is not among them).
FILE_SPLITS = {"dev": "val", "train": "trn", "test": "tst"}   # xcopa / siqa file names
NEVER_FETCHED = {"xquad": {"ro": "scripts/download_data.sh never fetches xquad.ro.json"}}


def languages(task: TaskSpec) -> tuple:
    """The task's languages an xtreme download/ can hold (empty: the task has no xtreme layout)."""
    if task.name not in READERS:
        return ()
    return tuple(l for l in task.languages if l not in NEVER_FETCHED.get(task.name, {}))


def load(task: TaskSpec, split: str, language: str, data_dir, dropped: Counter | None = None) -> list[Example]:
    if task.name not in READERS:
        raise MissingDataError(task, split, language, "xtreme", "task",
                               "no xtreme download/ layout; use source='hub'")
    if language not in languages(task):
        raise MissingDataError(task, split, language, "xtreme", "language", NEVER_FETCHED[task.name][language])
    root = Path(data_dir) / (task.xtreme_dir or task.name)
    dropped = Counter() if dropped is None else dropped
    try:
        if task.kind == "qa":
            return read_qa(task, split, language, root, dropped)
        return READERS[task.name](task, split, language, root)
    except FileNotFoundError as e:
        path = Path(e.filename or "")
        raise MissingDataError(task, split, language, "xtreme", _what_is_missing(root, path, split, language),
                               f"{path}: no such file") from e


def _what_is_missing(root: Path, path: Path, split: str, language: str) -> str:
    """task: no folder for it; language: the file is per language and the split exists for others
    (or file names carry no split); split: no file of that split at all."""
    if not root.is_dir():
        return "task"
    tokens = set(re.split(r"[-._]", path.name))
    if path.parent.is_dir() and language in tokens:
        split_names = {split, FILE_SPLITS.get(split, split)}
        if not split_names & tokens or any(split_names & set(re.split(r"[-._]", p.name))
                                           for p in path.parent.iterdir()):
            return "language"
    return "split"


def _need(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(2, "no such file", str(path))
    return path


def _lines(path: Path):
    """(line number, text) of a UTF-8 text file; each line is decoded on its own, so that a bad byte is named
    by line and column."""
    with open(_need(path), "rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise FileFormatError(path, f"not UTF-8: byte {raw[e.start]:#04x} at column {e.start + 1}", n) from e
            yield n, line.rstrip("\n").rstrip("\r")


def _parse_json(text: str, path: Path, line: int | None = None):
    """json.loads, with each way a hostile or broken text fails named by file and line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise FileFormatError(path, f"not valid json ({e.msg}, column {e.colno})",
                              line if line is not None else e.lineno) from e
    except RecursionError as e:
        raise FileFormatError(path, "json nested too deeply to read", line) from e
    except ValueError as e:   # an integer of more than sys.get_int_max_str_digits() digits
        raise FileFormatError(path, f"unreadable json value ({' '.join(str(e).split())[:100]})", line) from e


def _json_file(path: Path):
    raw = _need(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise FileFormatError(path, f"not UTF-8: byte {raw[e.start]:#04x} at column {column}", line) from e
    return _parse_json(text, path)


class _Entry:
    """Where a reader is inside a json file (an article, a paragraph, a question), for the error message."""
    now = ""


@contextlib.contextmanager
def _layout(path: Path, expected: str):
    """A json file whose structure is not `expected` (a key missing, a list where an object should be, a
    number that is not one) becomes one FileFormatError naming the file and the entry being read."""
    entry = _Entry()
    try:
        yield entry
    except (FileFormatError, MissingDataError):
        raise
    except (KeyError, TypeError, IndexError, AttributeError, ValueError, OverflowError) as e:
        what = f"missing key {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
        at = f"{entry.now}: " if entry.now else ""
        raise FileFormatError(path, f"{at}{what[:200]} (expected {expected})") from e


def _label_at(task, label, path, n):
    try:
        return check_label(task, label, "")
    except ValueError as e:
        raise FileFormatError(path, str(e).removeprefix(": "), n) from e


def _meta(path, n, source="xtreme"):
    return {"source": source, "synthetic": False, "file": str(path), "line": n}


# --- sentence (pair) classification -------------------------------------------------------------
def read_pair_tsv(task, split, language, root):
    path = root / f"{split}-{language}.tsv"
    out = []
    for n, line in _lines(path):
        if not line.strip():
            continue
        cols = line.split("\t")   # xtreme reads these with csv quotechar=None: plain tab split
        if len(cols) == 2 and split == "test":
            label = None
        elif len(cols) == 3:
            label = cols[2].strip()
            label = "contradiction" if label == "contradictory" else label
            _label_at(task, label, path, n)
        else:
            raise FileFormatError(path, f"expected 3 tab-separated columns (2 in test), got {len(cols)}", n)
        out.append(Example(id=f"{split}-{language}-{len(out)}", language=language, text=cols[0],
                           text_pair=cols[1], label=label, meta=_meta(path, n)))
    return out


# --- tagging ------------------------------------------------------------------------------------
def read_tagging_tsv(task, split, language, root):
    path = root / f"{split}-{language}.tsv"
    out, tokens, tags, start = [], [], [], None

    def flush():
        if tokens:
            has_tags = all(t is not None for t in tags)
            out.append(Example(id=f"{split}-{language}-{len(out)}", language=language,
                               tokens=tuple(tokens), tags=tuple(tags) if has_tags else None,
                               meta=_meta(path, start)))
        tokens.clear(), tags.clear()

    for n, line in _lines(path):
        if not line.strip():
            flush()
            continue
        cols = line.split("\t")
        if len(cols) > 2 or not cols[0].strip():
            raise FileFormatError(path, f"expected 'word<TAB>tag' (or 'word' in test), got {len(cols)} columns", n)
        if start is None or not tokens:
            start = n
        tokens.append(cols[0].strip())
        tags.append(_label_at(task, cols[1].strip(), path, n) if len(cols) == 2 else None)
    flush()
    return out


# --- extractive QA (SQuAD json) -----------------------------------------------------------------
SQUAD_LAYOUT = ('SQuAD v1.1 json: {"data": [{"paragraphs": [{"context": str, "qas": [{"id", "question", '
                '"answers": [{"text": str, "answer_start": int}]}]}]}]}')


def read_squad_json(path: Path, language: str, dropped: Counter, source="xtreme") -> list[Example]:
    data = _json_file(path)
    with _layout(path, SQUAD_LAYOUT) as at:
        return _squad_examples(data, path, language, dropped, source, at)


def _squad_examples(data, path, language, dropped, source, at) -> list[Example]:
    articles = data["data"] if isinstance(data, dict) and "data" in data else data
    out = []
    for i, article in enumerate(articles):
        at.now = f"article {i}"
        for j, paragraph in enumerate(article.get("paragraphs", ())):
            at.now = f"article {i} paragraph {j}"
            context = paragraph["context"]
            if not isinstance(context, str):
                raise TypeError(f"context is a {type(context).__name__}, not a string")
            for qa in paragraph["qas"]:
                at.now = f"article {i} paragraph {j} question {str(qa.get('id', '?'))[:40]!r}"
                for key in ("id", "question", "answers"):
                    if key not in qa:
                        raise FileFormatError(path, f"question {qa.get('id', '?')!r} has no key {key!r}")
                if not isinstance(qa["question"], str) or not isinstance(qa["answers"], list):
                    raise TypeError("question must be a string and answers a list")
                # blank answers (xtreme's stripped test annotations) -> no gold
                answers = anchor_answers(context, ((a["text"], a["answer_start"]) for a in qa["answers"]),
                                         dropped)
                if answers is None:
                    continue
                meta = {"source": source, "synthetic": False, "file": str(path)}
                if not answers and qa["answers"]:
                    meta[NO_GOLD] = "answers blanked: xtreme removes the annotations of this split"
                out.append(Example(id=str(qa["id"]), language=language, question=qa["question"],
                                   context=context, answers=answers, meta=meta))
    return out


def read_qa(task, split, language, root, dropped):
    if task.name == "xquad":
        path = root / f"xquad.{language}.json"
    elif task.name == "mlqa":
        path = root / "MLQA_V1" / split / f"{split}-context-{language}-question-{language}.json"
    elif task.name == "tydiqa":
        folder = "tydiqa-goldp-v1.1-train" if split == "train" else "tydiqa-goldp-v1.1-dev"
        path = root / folder / f"tydiqa.goldp.{language}.{split}.json"
    else:  # squad
        path = root / f"{split}-v1.1.json"
    return read_squad_json(path, language, dropped)


# --- multiple choice ----------------------------------------------------------------------------
def _jsonl(path: Path):
    for n, line in _lines(path):
        if not line.strip():
            continue
        row = _parse_json(line, path, n)
        if not isinstance(row, dict):
            raise FileFormatError(path, f"expected a json object per line, got a {type(row).__name__}", n)
        yield n, row


def _get(row, key, path, n, kind=None):
    if not isinstance(row, dict) or key not in row:
        raise FileFormatError(path, f"missing key {key!r}", n)
    value = row[key]
    if kind is not None and not isinstance(value, kind):
        raise FileFormatError(path, f"{key!r} is a {type(value).__name__}, expected a "
                                    f"{getattr(kind, '__name__', 'string')}", n)
    return value


def read_xcopa(task, split, language, root):
    file_split = {"dev": "val"}.get(split, split)   # COPA/XCOPA call dev "val"
    path = root / f"{file_split}-{language}.jsonl"
    out = []
    for n, row in _jsonl(path):
        premise, question = _get(row, "premise", path, n), _get(row, "question", path, n)
        label = str(_get(row, "label", path, n, (int, str)))
        _label_at(task, label, path, n)
        # run_xcopa.py: "{premise} What was the {question}?" paired with each choice.
        out.append(Example(id=f"{split}-{language}-{row.get('idx', len(out))}", language=language,
                           text=f"{premise} What was the {question}?",
                           choices=(_get(row, "choice1", path, n), _get(row, "choice2", path, n)),
                           label=label, meta=_meta(path, n)))
    if split == "test" and all(e.label == "0" for e in out):
        # utils_preprocess.xcopa_preprocess sets every test label to 0: a placeholder, not gold.
        note = "xtreme's preprocessing writes a placeholder label 0 for every test row"
        out = [dataclasses.replace(e, label=None, meta={**e.meta, NO_GOLD: note}) for e in out]
    return out


SIQA_LETTERS = {"A": "0", "B": "1", "C": "2"}


def read_siqa(task, split, language, root):
    file_split = {"train": "trn", "dev": "dev", "test": "tst"}[split]
    path = root / f"socialIQa_v1.4_{file_split}.jsonl"
    out = []
    for n, row in _jsonl(path):
        letter = _get(row, "correct", path, n)
        if not isinstance(letter, str) or letter not in SIQA_LETTERS:
            raise FileFormatError(path, f"unknown label {letter!r} for task 'siqa' (labels: A, B, C)", n)
        out.append(Example(id=f"{split}-{len(out)}", language=language,
                           text=f"{_get(row, 'context', path, n)} {_get(row, 'question', path, n)}",
                           choices=tuple(_get(row, f"answer{c}", path, n) for c in "ABC"),
                           label=SIQA_LETTERS[letter], meta=_meta(path, n)))
    return out


# --- retrieval ----------------------------------------------------------------------------------
def read_tatoeba(task, split, language, root):
    src, tgt = root / f"{language}-en.{language}", root / f"{language}-en.en"
    queries = [line for _, line in _lines(src)]
    english = [line for _, line in _lines(tgt)]
    if len(queries) != len(english):
        raise FileFormatError(src, f"{len(queries)} lines but {tgt} has {len(english)}")
    # Gold is not part of a real download/: xtreme keeps it in a labels/ folder beside it.
    gold_path = next((p for p in (root / f"test-{language}.tsv",
                                  root.parent.parent / "labels" / "tatoeba" / f"test-{language}.tsv")
                      if p.is_file()), None)
    gold = None
    if gold_path is not None:
        gold = []
        for n, line in _lines(gold_path):
            if not re.fullmatch(r"[0-9]{1,18}", line.strip()) or int(line) >= len(english):
                raise FileFormatError(gold_path, f"expected a line index below {len(english)}, got "
                                                 f"{line[:40]!r}{'...' if len(line) > 40 else ''}", n)
            gold.append(line.strip())
        if len(gold) != len(queries):
            raise FileFormatError(gold_path, f"{len(gold)} labels for {len(queries)} sentences in {src}")
    pool = Candidates(ids=tuple(str(i) for i in range(len(english))), texts=tuple(english))
    return [Example(id=f"{language}-{i}", language=language, text=q, candidates=pool,
                    label=(gold[i],) if gold else None, meta=_meta(src, i + 1))
            for i, q in enumerate(queries)]


def read_mewslix(task, split, language, root):
    ent_path = root / "candidate_set_entities.jsonl"
    ids, texts = [], []
    for n, row in _jsonl(ent_path):
        ids.append(_get(row, "entity_id", ent_path, n, str))
        texts.append(f"{_get(row, 'title', ent_path, n, str)}. {_get(row, 'description', ent_path, n, str)}")
    pool = Candidates(ids=tuple(ids), texts=tuple(texts))
    out = []
    if split == "train":
        path = root / "wikipedia_pairs-train.jsonl"
        for n, row in _jsonl(path):
            with _layout(path, MENTION_LAYOUT) as at:
                at.now = f"line {n}"
                cm = _get(row, "contextual_mention", path, n, dict)
                ctx, m = cm["context"], cm["mention"]
                if ctx.get("language") != language:
                    continue
                ent = _get(row, "entity", path, n, dict)["entity_id"]
                out.append(_mention(ctx, m, language, pool, (ent,), path, n))
        return out
    path = root / "wikinews_mentions" / f"{split}-{language}.jsonl"
    label_path = root / "wikinews_labels" / f"{split}-{language}.json"
    labels = _json_file(label_path) if label_path.is_file() else {}
    if not isinstance(labels, dict):
        raise FileFormatError(label_path, f"expected a json object of example id -> entity ids, got a "
                                          f"{type(labels).__name__}")
    for n, row in _jsonl(path):
        with _layout(path, MENTION_LAYOUT) as at:
            at.now = f"line {n}"
            ctx = _get(row, "context", path, n, dict)
            for m in _get(row, "mentions", path, n, list):
                gold = labels.get(m["example_id"]) or ([m["entity_id"]] if m.get("entity_id") else None)
                if gold is not None and not (isinstance(gold, list) and all(isinstance(g, str) for g in gold)):
                    raise FileFormatError(label_path, f"{m['example_id']!r}: expected a list of entity ids")
                out.append(_mention(ctx, m, language, pool, tuple(gold) if gold else None, path, n))
    return out


MENTION_LAYOUT = ('a mention: {"example_id": str, "mention_span": {"start": int, "end": int, "text": str}} in a '
                  'context {"text": str, "language": str}')


def _mention(ctx, m, language, pool, gold, path, n):
    span = m["mention_span"]
    if ctx["text"][span["start"]:span["end"]] != span["text"]:
        raise FileFormatError(path, f"mention {m['example_id']!r} text {span['text']!r} is not at "
                                    f"context[{span['start']}:{span['end']}]", n)
    return Example(id=m["example_id"], language=language, text=span["text"], text_pair=ctx["text"],
                   candidates=pool, label=gold,
                   meta={**_meta(path, n), "mention_span": (span["start"], span["end"])})


def read_lareqa(task, split, language, root):
    """XQuAD-R as utils_lareqa.load_data reads it: every sentence of every language is a candidate;
    a question's gold answers are the answer sentences of its id (xling_id) in all languages."""
    folder = root / "xquad-r"
    langs = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    if language not in langs:
        _need(folder / f"{language}.json")
    cand_ids, cand_texts, cand_ctx, index = [], [], [], {}
    gold_by_xling: dict[str, set] = {}
    questions = []
    for lang in langs:
        path = folder / f"{lang}.json"
        data = _json_file(path)
        with _layout(path, LAREQA_LAYOUT) as at:
            _lareqa_file(data, lang, language, path, at, cand_ids, cand_texts, cand_ctx, index, gold_by_xling,
                         questions)
    pool = Candidates(ids=tuple(cand_ids), texts=tuple(cand_texts))
    return [Example(id=f"{language}-{qid}", language=language, text=q, candidates=pool,
                    label=tuple(cand_ids[c] for c in sorted(gold_by_xling[qid])),
                    meta={"source": "xtreme", "synthetic": False, "file": str(path), "xling_id": qid,
                          "candidate_contexts": cand_ctx})
            for qid, q, path in questions]


LAREQA_LAYOUT = ('XQuAD-R json: {"data": [{"paragraphs": [{"context": str, "sentence_breaks": [[start, end]], '
                 '"qas": [{"id", "question", "answers": [{"answer_start": int}]}]}]}]}')


def _lareqa_file(data, lang, language, path, at, cand_ids, cand_texts, cand_ctx, index, gold_by_xling, questions):
    """One language's XQuAD-R file into the shared candidate pool and the gold by xling id."""
    n_par = 0
    for article in data["data"]:
        for par in article["paragraphs"]:
            n_par += 1
            at.now = f"paragraph {n_par}"
            context = par["context"]
            if "sentence_breaks" not in par:
                raise FileFormatError(path, f"paragraph {n_par} has no key 'sentence_breaks'")
            sents, end = [], 0
            for pos, (s, e) in enumerate(par["sentence_breaks"]):
                if not (isinstance(s, int) and isinstance(e, int)):
                    raise TypeError(f"sentence_breaks[{pos}] is not a pair of integers")
                if not end <= s <= e <= len(context):   # sentences tile the context: memory linear in it
                    raise FileFormatError(path, f"paragraph {n_par}: sentence_breaks[{pos}] = [{s}, {e}] is not a "
                                                f"span after the previous one inside the {len(context)}-character "
                                                "context")
                end = e
                key = (lang, context[s:e], context)
                if key not in index:
                    index[key] = len(cand_ids)
                    cand_ids.append(f"{lang}_{n_par}_{pos}")
                    cand_texts.append(context[s:e])
                    cand_ctx.append(context)
                sents.append((s, e, index[key]))
            for qa in par["qas"]:
                start = qa["answers"][0]["answer_start"]
                hit = [c for s, e, c in sents if s <= start < e]
                if not hit:
                    continue   # as utils_lareqa: answer start in no sentence -> skipped
                gold_by_xling.setdefault(qa["id"], set()).add(hit[0])
                if lang == language:
                    questions.append((qa["id"], qa["question"], path))


READERS = {
    "xnli": read_pair_tsv, "pawsx": read_pair_tsv,
    "udpos": read_tagging_tsv, "panx": read_tagging_tsv,
    "xquad": read_qa, "mlqa": read_qa, "tydiqa": read_qa, "squad": read_qa,
    "xcopa": read_xcopa, "siqa": read_siqa,
    "tatoeba": read_tatoeba, "mewslix": read_mewslix, "lareqa": read_lareqa,
}
