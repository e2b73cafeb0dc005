"""The Hugging Face hub source: `datasets.load_dataset(path, config, split=...)` per task, rows parsed
into Examples. docs/data.md lists the dataset, config and split chosen per task and why.

Every dataset here is script-free (parquet): datasets >= 4 refuses repositories that hold a loading
script. What the hub lacks is known before any download where it can be (languages a dataset does not
have); what is only known after asking (a config or split that is not there) is mapped from the
ValueError datasets raises, after checking the dataset's own config and split lists. No network / no
cache is a SourceUnavailableError. tests/support/hub_standin.py serves the same schemas offline.
"""
from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from huggingface_hub.errors import LocalEntryNotFoundError

from .errors import MissingDataError, SourceUnavailableError
from .examples import Candidates, Example, check_label, dev_holdout
from .gold import anchor_answers
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
XCOPA_HUB_LANGS = ("et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh")   # cambridgeltl/xcopa
GLUE_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


@dataclass(frozen=True)
class HubSource:
    path: str
    config: Callable[[str], str | None]
    splits: dict                     # our split -> the dataset's split
    parse: Callable | None = None    # (task, row, language, names, where, dropped) -> fields | None
    languages: tuple | None = None   # None: every language of the task
    kwargs: dict = field(default_factory=dict)    # more load_dataset arguments (revision, data_dir)
    build: Callable | None = None    # (task, ds, language, meta) -> examples, for whole-split tasks


def _names(ds, column):
    """ClassLabel names of a column (or of a Sequence(ClassLabel)), None when plain values."""
    feature = getattr(ds, "features", {}).get(column)
    feature = getattr(feature, "feature", feature)
    return list(getattr(feature, "names", None) or []) or None


def _label(task, value, names, where, mapping=None):
    if value is None or value == -1:
        return None   # no gold: GLUE/SNLI test splits, SNLI pairs without annotator consensus
    if mapping is not None:
        if value not in mapping:
            raise ValueError(f"{where}: unknown label {value!r} for task {task.name!r} "
                             f"(expected one of {', '.join(map(repr, mapping))})")
        return mapping[value]
    if names is not None and isinstance(value, int):
        if not 0 <= value < len(names):
            raise ValueError(f"{where}: label {value} is outside the dataset's {len(names)} classes")
        value = names[value]
    return check_label(task, str(value), where)


def _pair(a, b, label_col="label", mapping=None):
    def parse(task, row, language, names, where, dropped):
        if task.kind == "regression":
            value = row[label_col]
            label = None if value is None or value < 0 else float(value)
        else:
            label = _label(task, row[label_col], names.get(label_col), where, mapping)
        return dict(text=row[a], text_pair=row[b] if b else None, label=label)
    return parse


def _single(*cols, mapping=None):
    def parse(task, row, language, names, where, dropped):
        label = _label(task, row["label"], names.get("label"), where, mapping)
        return dict(text=" ".join(str(row[c]) for c in cols if row[c]), label=label)
    return parse


def _tagging(col):
    def parse(task, row, language, names, where, dropped):
        tags = tuple(_label(task, t, names.get(col), f"{where} token {k}") for k, t in enumerate(row[col]))
        return dict(tokens=tuple(row["tokens"]), tags=tags)
    return parse


def _squad(task, row, language, names, where, dropped):
    ans = row["answers"]
    answers = anchor_answers(row["context"], zip(ans["text"], ans["answer_start"]), dropped)
    if answers is None:
        return None
    return dict(id=str(row["id"]), question=row["question"], context=row["context"], answers=answers)


def _tydiqa(task, row, language, names, where, dropped):
    if not str(row["id"]).startswith(TYDIQA_NAMES[language] + "-"):
        return None   # secondary_task mixes all languages; ids start with the language name
    return _squad(task, row, language, names, where, dropped)


def _copa(task, row, language, names, where, dropped):
    # The raw 0/1 index (SuperGLUE's ClassLabel names are "choice1"/"choice2"); -1 = no gold (COPA test).
    label = None if row["label"] in (None, -1) else check_label(task, str(row["label"]), where)
    return dict(text=f"{row['premise']} What was the {row['question']}?",   # run_xcopa.py's text
                choices=(row["choice1"], row["choice2"]), label=label)


def _siqa(task, row, language, names, where, dropped):
    label = _label(task, row["label"], None, where, mapping={"1": "0", "2": "1", "3": "2"})
    return dict(text=f"{row['context']} {row['question']}",
                choices=(row["answerA"], row["answerB"], row["answerC"]), label=label)


# mteb/AmazonReviewsClassification: label = stars - 1 (0-4). Binary polarity as amazon_polarity / IMDB
# are built: 1-2 stars negative, 4-5 positive, 3 stars dropped (and counted).
_STARS = {0: "negative", 1: "negative", 3: "positive", 4: "positive", 2: None}


def _amazon_multi(task, row, language, names, where, dropped):
    if row["label"] not in _STARS:
        raise ValueError(f"{where}: label {row['label']!r} is not 0-4 (stars - 1) for task {task.name!r}")
    label = _STARS[row["label"]]
    if label is None:
        dropped["3-star review (neither polarity)"] += 1
        return None
    return dict(text=row["text"], label=label)


def _tatoeba(task, ds, language, meta):
    # Rows are aligned pairs: the gold English sentence of query i is candidate i. google/xtreme keeps
    # each line's newline.
    rows = list(ds)
    pool = Candidates(ids=tuple(str(i) for i in range(len(rows))),
                      texts=tuple(r["target_sentence"].rstrip("\n") for r in rows))
    return [Example(id=f"{language}-{i}", language=language, text=r["source_sentence"].rstrip("\n"),
                    candidates=pool, label=(str(i),), meta=meta(i)) for i, r in enumerate(rows)]


_BIN = {0: "negative", 1: "positive"}
_BINARY01 = {0: "0", 1: "1"}

SOURCES: dict[str, HubSource] = {
    "xnli": HubSource("facebook/xnli", lambda l: l, GLUE_SPLITS, _pair("premise", "hypothesis")),
    "pawsx": HubSource("google-research-datasets/paws-x", lambda l: l, GLUE_SPLITS,
                       _pair("sentence1", "sentence2", mapping=_BINARY01)),
    "paws": HubSource("google-research-datasets/paws", lambda l: "labeled_final", GLUE_SPLITS,
                      _pair("sentence1", "sentence2", mapping=_BINARY01)),
    "udpos": HubSource("google/xtreme", lambda l: f"udpos.{UDPOS_NAMES[l]}", GLUE_SPLITS,
                       _tagging("pos_tags"), languages=tuple(UDPOS_NAMES)),
    "panx": HubSource("unimelb-nlp/wikiann", lambda l: l, GLUE_SPLITS, _tagging("ner_tags")),
    "xquad": HubSource("google/xquad", lambda l: f"xquad.{l}", {"test": "validation"}, _squad),
    # facebook/mlqa is script-only; google/xtreme's MLQA configs are the same files as parquet.
    "mlqa": HubSource("google/xtreme", lambda l: f"MLQA.{l}.{l}", {"dev": "validation", "test": "test"},
                      _squad),
    "tydiqa": HubSource("google-research-datasets/tydiqa", lambda l: "secondary_task",
                        {"train": "train", "dev": "validation"}, _tydiqa),
    "xcopa": HubSource("cambridgeltl/xcopa", lambda l: l, {"dev": "validation", "test": "test"}, _copa,
                       languages=XCOPA_HUB_LANGS),
    "amazon_reviews_multi": HubSource("mteb/AmazonReviewsClassification", lambda l: l, GLUE_SPLITS,
                                      _amazon_multi),
    "amazon_polarity": HubSource("fancyzhx/amazon_polarity", lambda l: "amazon_polarity",
                                 {"train": "train", "test": "test"},   # dev: held out of train
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
    # allenai/social_i_qa is script-only; lighteval/siqa has its columns and its "1"-"3" labels.
    "siqa": HubSource("lighteval/siqa", lambda l: None, {"train": "train", "dev": "validation"}, _siqa),
    "tatoeba": HubSource("google/xtreme", lambda l: f"tatoeba.{TATOEBA_CODES[l]}", {"test": "validation"},
                         languages=tuple(TATOEBA_CODES), build=_tatoeba),
}
# en in xcopa = COPA itself (the English data xtreme trains and validates on). aps/super_glue holds a
# loading script; its parquet export (refs/convert/parquet, copa/{train,validation,test}/) does not.
# Its test labels are all -1 (SuperGLUE keeps them private): xcopa en has no scorable test split.
COPA = HubSource("aps/super_glue", lambda l: None, GLUE_SPLITS, _copa, languages=("en",),
                 kwargs={"revision": "refs/convert/parquet", "data_dir": "copa"})


def source_of(task: TaskSpec, language: str) -> HubSource | None:
    return COPA if (task.name == "xcopa" and language == "en") else SOURCES.get(task.name)


def languages(task: TaskSpec) -> tuple:
    """The task's languages the hub serves (empty: the task has no hub source)."""
    if task.name not in SOURCES:
        return ()
    served = set(SOURCES[task.name].languages or task.languages)
    if task.name == "xcopa":
        served.add("en")
    return tuple(l for l in task.languages if l in served)


def check(task: TaskSpec, split: str, language: str) -> None:
    """MissingDataError for what is known without downloading: no hub source, language, split."""
    if task.name not in SOURCES:
        raise MissingDataError(task, split, language, "hub", "task",
                               "not on the hub in its xtreme form; use source='xtreme' with the "
                               "google-research/xtreme download/ layout")
    if language not in languages(task):
        src = SOURCES[task.name]
        raise MissingDataError(task, split, language, "hub", "language",
                               f"{src.path} has no {language!r} (XTREME-R added it; use source='xtreme')")
    src = source_of(task, language)
    if split not in src.splits and not (task.dev_holdout and split == "dev"):
        raise MissingDataError(task, split, language, "hub", "split",
                               f"{src.path} has no {split} split for {language!r} "
                               f"(it has: {', '.join(src.splits) or 'none'})")


# The hub cannot be asked: datasets raises ConnectionError when it cannot reach it (OfflineModeIsEnabled is
# one); huggingface_hub's LocalEntryNotFoundError when offline and a data file is not in the cache.
_OFFLINE = (ConnectionError, LocalEntryNotFoundError)


def _unavailable(task, split, language, src, e):
    return SourceUnavailableError(task, split, language, "hub", f"{src.path}: {' '.join(str(e).split())}")


def _open(task, split, language, src, hub_split, data_dir):
    """datasets.load_dataset, with its failures mapped to the three data errors."""
    import datasets
    from datasets.exceptions import DatasetNotFoundError

    config = src.config(language)
    try:
        return config, datasets.load_dataset(src.path, config, split=hub_split, cache_dir=data_dir,
                                              **src.kwargs)
    except _OFFLINE as e:
        raise _unavailable(task, split, language, src, e) from e
    except DatasetNotFoundError as e:
        raise MissingDataError(task, split, language, "hub", "task", f"{src.path}: {e}") from e
    except ValueError as e:
        # datasets says "BuilderConfig 'x' not found" / "Unknown split": confirm from its own lists.
        _raise_if_missing(task, split, language, src, config, hub_split, e)
        raise


def _raise_if_missing(task, split, language, src, config, hub_split, error):
    import datasets

    try:
        if config is not None:
            configs = datasets.get_dataset_config_names(src.path, **src.kwargs)
            if config not in configs:
                raise MissingDataError(task, split, language, "hub", "language",
                                       f"{src.path} has no config {config!r}") from error
        splits = datasets.get_dataset_split_names(src.path, config, **src.kwargs)
    except _OFFLINE as e:
        raise _unavailable(task, split, language, src, e) from error
    if hub_split not in splits:
        raise MissingDataError(task, split, language, "hub", "split",
                               f"{src.path}/{config} has no split {hub_split!r} (it has: "
                               f"{', '.join(splits)})") from error


@contextlib.contextmanager
def _rows_of(where: str):
    """A row whose columns are not what the parser expects (a column missing, a null or a value of another
    type where a number or text should be) becomes one ValueError naming the dataset, config, split and row."""
    try:
        yield
    except (MissingDataError, SourceUnavailableError):
        raise
    except ValueError as e:
        if str(e).startswith(where.split(" row ")[0]):   # already names the row (an unknown label)
            raise
        raise ValueError(f"{where}: unexpected row (ValueError: {' '.join(str(e).split())[:200]})") from e
    except (KeyError, TypeError, IndexError, AttributeError, OverflowError) as e:
        what = f"missing column {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
        raise ValueError(f"{where}: unexpected row ({' '.join(what.split())[:200]})") from e


def load(task: TaskSpec, split: str, language: str, data_dir=None, dropped: Counter | None = None) -> list:
    check(task, split, language)
    dropped = Counter() if dropped is None else dropped
    src = source_of(task, language)
    holdout = task.dev_holdout and split in ("train", "dev")
    hub_split = src.splits["train" if holdout else split]
    config, ds = _open(task, split, language, src, hub_split, data_dir)
    rows = range(len(ds))
    if holdout:
        held = dev_holdout(len(ds), task.dev_holdout)
        rows = sorted(held) if split == "dev" else [i for i in rows if i not in held]
        ds = ds.select(rows)

    def meta(i):
        return {"source": "hub", "synthetic": False, "dataset": src.path, "config": config,
                "split": hub_split, "row": rows[i]}

    if src.build is not None:
        with _rows_of(f"{src.path}/{config}[{hub_split}]"):
            return src.build(task, ds, language, meta)
    names = {c: _names(ds, c) for c in ds.column_names}
    out = []
    for i, row in enumerate(ds):
        where = f"{src.path}/{config}[{hub_split}] row {rows[i]}"
        with _rows_of(where):
            fields = src.parse(task, row, language, names, where, dropped)
        if fields is None:
            continue
        fields.setdefault("id", f"{split}-{language}-{rows[i]}")
        out.append(Example(language=language, meta=meta(i), **fields))
    return out
