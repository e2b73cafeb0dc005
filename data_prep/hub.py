"""The Hugging Face hub source: `datasets.load_dataset(path, config, split=...)` per task, rows parsed
into Examples. docs/data.md lists the dataset, config and split chosen per task and why.

Tests replace `datasets.load_dataset` with an in-memory `datasets.Dataset`; everything below it runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .examples import Candidates, Example, check_label
from .tasks import TaskSpec

# google/xtreme names its udpos configs by language name (XTREME v1 languages only).
UDPOS_NAMES = dict(af="Afrikaans", ar="Arabic", bg="Bulgarian", de="German", el="Greek", en="English",
                   es="Spanish", et="Estonian", eu="Basque", fa="Persian", fi="Finnish", fr="French",
                   he="Hebrew", hi="Hindi", hu="Hungarian", id="Indonesian", it="Italian", ja="Japanese",
                   kk="Kazakh", ko="Korean", mr="Marathi", nl="Dutch", pt="Portuguese", ru="Russian",
                   ta="Tamil", te="Telugu", th="Thai", tl="Tagalog", tr="Turkish", ur="Urdu",
                   vi="Vietnamese", yo="Yoruba", zh="Chinese")
# google/xtreme tatoeba configs use LASER's 3-letter codes (XTREME v1 languages only).
TATOEBA_CODES = dict(af="afr", ar="ara", bg="bul", bn="ben", de="deu", el="ell", es="spa", et="est",
                     eu="eus", fa="pes", fi="fin", fr="fra", he="heb", hi="hin", hu="hun", id="ind",
                     it="ita", ja="jpn", jv="jav", ka="kat", kk="kaz", ko="kor", ml="mal", mr="mar",
                     nl="nld", pt="por", ru="rus", sw="swh", ta="tam", te="tel", th="tha", tl="tgl",
                     tr="tur", ur="urd", vi="vie", zh="cmn")
TYDIQA_NAMES = dict(ar="arabic", bn="bengali", en="english", fi="finnish", id="indonesian",
                    ko="korean", ru="russian", sw="swahili", te="telugu")
GLUE_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


@dataclass(frozen=True)
class HubSource:
    path: str
    config: Callable[[str], str | None]
    splits: dict
    parse: Callable     # (task, row, index, language, names) -> Example | None (None: row skipped)


def _names(ds, column):
    """ClassLabel names of a column (or of a Sequence(ClassLabel)), None when plain values."""
    feature = getattr(ds, "features", {}).get(column)
    feature = getattr(feature, "feature", feature)
    return list(getattr(feature, "names", None) or []) or None


def _label(task, value, names, where, mapping=None):
    if value is None or value == -1:
        return None   # hub test splits carry label -1
    if mapping is not None:
        if value not in mapping:
            raise ValueError(f"{where}: unknown label {value!r} for task {task.name!r}")
        return mapping[value]
    if names is not None and isinstance(value, int):
        value = names[value]
    return check_label(task, str(value), where)


def _meta(src, split, i):
    return {"source": "hub", "synthetic": False, "dataset": src, "split": split, "row": i}


def _pair(a, b, label_col="label", mapping=None):
    def parse(task, row, i, language, names, where):
        if task.kind == "regression":
            value = row[label_col]
            label = None if value is None or value < 0 else float(value)
        else:
            label = _label(task, row[label_col], names.get(label_col), where, mapping)
        return dict(text=row[a], text_pair=row[b] if b else None, label=label)
    return parse


def _single(*cols, mapping=None):
    def parse(task, row, i, language, names, where):
        label = _label(task, row["label"], names.get("label"), where, mapping)
        text = " ".join(str(row[c]) for c in cols if row[c])
        return dict(text=text, label=label)
    return parse


def _tagging(col):
    def parse(task, row, i, language, names, where):
        tags = tuple(_label(task, t, names.get(col), f"{where} token {k}")
                     for k, t in enumerate(row[col]))
        return dict(tokens=tuple(row["tokens"]), tags=tags)
    return parse


def _squad(task, row, i, language, names, where):
    ans = row["answers"]
    answers = tuple((t, int(s)) for t, s in zip(ans["text"], ans["answer_start"]) if t)
    for t, s in answers:
        if row["context"][s:s + len(t)] != t:
            raise ValueError(f"{where}: answer {t!r} is not at context[{s}:{s + len(t)}]")
    return dict(id=str(row["id"]), question=row["question"], context=row["context"], answers=answers)


def _tydiqa(task, row, i, language, names, where):
    if not str(row["id"]).startswith(TYDIQA_NAMES[language] + "-"):
        return None   # secondary_task mixes all languages; ids start with the language name
    return _squad(task, row, i, language, names, where)


def _copa(task, row, i, language, names, where):
    label = _label(task, row["label"], None, where)
    return dict(text=f"{row['premise']} What was the {row['question']}?",
                choices=(row["choice1"], row["choice2"]), label=label)


def _siqa(task, row, i, language, names, where):
    label = _label(task, row["label"], None, where, mapping={"1": "0", "2": "1", "3": "2"})
    return dict(text=f"{row['context']} {row['question']}",
                choices=(row["answerA"], row["answerB"], row["answerC"]), label=label)


# mteb/amazon_reviews_multi: label = stars - 1. Binary polarity as in amazon_polarity / IMDB:
# 1-2 stars negative, 4-5 positive, 3 stars dropped.
_STARS = {0: "negative", 1: "negative", 3: "positive", 4: "positive", 2: None}


def _amazon_multi(task, row, i, language, names, where):
    if row["label"] not in _STARS:
        raise ValueError(f"{where}: unknown label {row['label']!r} for task {task.name!r} (0-4 stars)")
    label = _STARS[row["label"]]
    return None if label is None else dict(text=row["text"], label=label)


_BIN = {0: "negative", 1: "positive"}
_BINARY01 = {0: "0", 1: "1"}

SOURCES: dict[str, HubSource] = {
    "xnli": HubSource("facebook/xnli", lambda l: l, GLUE_SPLITS, _pair("premise", "hypothesis")),
    "pawsx": HubSource("google-research-datasets/paws-x", lambda l: l, GLUE_SPLITS,
                       _pair("sentence1", "sentence2", mapping=_BINARY01)),
    "paws": HubSource("google-research-datasets/paws", lambda l: "labeled_final", GLUE_SPLITS,
                      _pair("sentence1", "sentence2", mapping=_BINARY01)),
    "udpos": HubSource("google/xtreme", lambda l: f"udpos.{UDPOS_NAMES[l]}" if l in UDPOS_NAMES else None,
                       GLUE_SPLITS, _tagging("pos_tags")),
    "panx": HubSource("unimelb-nlp/wikiann", lambda l: l, GLUE_SPLITS, _tagging("ner_tags")),
    "xquad": HubSource("google/xquad", lambda l: f"xquad.{l}", {"test": "validation"}, _squad),
    "mlqa": HubSource("facebook/mlqa", lambda l: f"mlqa.{l}.{l}", {"dev": "validation", "test": "test"},
                      _squad),
    "tydiqa": HubSource("google-research-datasets/tydiqa", lambda l: "secondary_task",
                        {"train": "train", "dev": "validation"}, _tydiqa),
    "xcopa": HubSource("cambridgeltl/xcopa", lambda l: l, {"dev": "validation", "test": "test"}, _copa),
    "amazon_reviews_multi": HubSource("mteb/amazon_reviews_multi", lambda l: l, GLUE_SPLITS,
                                      _amazon_multi),
    "amazon_polarity": HubSource("fancyzhx/amazon_polarity", lambda l: "amazon_polarity",
                                 {"train": "train", "test": "test"},
                                 _single("title", "content", mapping=_BIN)),
    "snli": HubSource("stanfordnlp/snli", lambda l: "plain_text", GLUE_SPLITS,
                      _pair("premise", "hypothesis")),
    "imdb": HubSource("stanfordnlp/imdb", lambda l: "plain_text", {"train": "train", "test": "test"},
                      _single("text", mapping=_BIN)),
    "mnli": HubSource("nyu-mll/glue", lambda l: "mnli",
                      {"train": "train", "dev": "validation_matched", "test": "test_matched"},
                      _pair("premise", "hypothesis")),
    "sst2": HubSource("nyu-mll/glue", lambda l: "sst2", GLUE_SPLITS, _single("sentence", mapping=_BIN)),
    "qqp": HubSource("nyu-mll/glue", lambda l: "qqp", GLUE_SPLITS,
                     _pair("question1", "question2", mapping=_BINARY01)),
    "stsb": HubSource("nyu-mll/glue", lambda l: "stsb", GLUE_SPLITS, _pair("sentence1", "sentence2")),
    "squad": HubSource("rajpurkar/squad", lambda l: "plain_text", {"train": "train", "dev": "validation"},
                       _squad),
    "siqa": HubSource("allenai/social_i_qa", lambda l: None, {"train": "train", "dev": "validation"},
                      _siqa),
}
# en in xcopa = COPA itself (the English data xtreme trains and validates on).
COPA = HubSource("aps/super_glue", lambda l: "copa", GLUE_SPLITS, _copa)


def load(task: TaskSpec, split: str, language: str, data_dir=None) -> list[Example]:
    import datasets

    if task.name == "tatoeba":
        return _load_tatoeba(task, split, language, data_dir)
    src = COPA if (task.name == "xcopa" and language == "en") else SOURCES.get(task.name)
    if src is None:
        raise ValueError(f"task {task.name!r} has no hub source; use source='xtreme' with the "
                         "google-research/xtreme download/ layout")
    if split not in src.splits:
        raise ValueError(f"task {task.name!r} split {split!r} is not on the hub "
                         f"(hub splits: {', '.join(src.splits)})")
    config = src.config(language)
    if config is None and task.name == "udpos":
        raise ValueError(f"task 'udpos' language {language!r} is XTREME-R only and not in google/xtreme; "
                         "use source='xtreme'")
    ds = datasets.load_dataset(src.path, config, split=src.splits[split], cache_dir=data_dir)
    names = {c: _names(ds, c) for c in ds.column_names}
    out = []
    for i, row in enumerate(ds):
        where = f"{src.path}/{config}[{src.splits[split]}] row {i}"
        fields = src.parse(task, row, i, language, names, where)
        if fields is None:
            continue
        fields.setdefault("id", f"{split}-{language}-{i}")
        out.append(Example(language=language, meta=_meta(src.path, src.splits[split], i), **fields))
    return out


def _load_tatoeba(task, split, language, data_dir):
    import datasets

    if language not in TATOEBA_CODES:
        raise ValueError(f"task 'tatoeba' language {language!r} is XTREME-R only and not in "
                         "google/xtreme; use source='xtreme'")
    config = f"tatoeba.{TATOEBA_CODES[language]}"
    ds = datasets.load_dataset("google/xtreme", config, split="validation", cache_dir=data_dir)
    rows = list(ds)
    # Rows are aligned pairs: the gold English sentence of query i is candidate i.
    pool = Candidates(ids=tuple(str(i) for i in range(len(rows))),
                      texts=tuple(r["target_sentence"] for r in rows))
    return [Example(id=f"{language}-{i}", language=language, text=r["source_sentence"],
                    candidates=pool, label=(str(i),), meta=_meta("google/xtreme", "validation", i))
            for i, r in enumerate(rows)]
