"""data_prep: raw files | hub | synthetic -> examples -> features -> length-bucketed batches -> metrics.

See docs/design.md (the contract) and docs/data.md (sources, formats, hyper-parameters).
"""
from . import errors
from .batching import Batcher, collect_outputs, default_buckets
from .errors import FileFormatError, MissingDataError, NoGoldError, SourceUnavailableError
from .evaluation import evaluate, per_example, postprocess, references
from .examples import Candidates, Example, Split
from .features import IGNORE, Features, featurize
from .gold import gold_problem
from .sources import SOURCES, load_examples, source_languages
from .tasks import KINDS, TASKS, HParams, TaskSpec, get_task, register_task
from .tokenization import FAMILIES, load_tokenizer, synthetic_tokenizer, tokenizer_family

__all__ = [
    "Batcher", "collect_outputs", "default_buckets", "evaluate", "per_example", "postprocess", "references", "SOURCES",
    "Candidates", "Example", "Split", "load_examples", "source_languages", "IGNORE", "Features", "featurize",
    "KINDS", "TASKS", "HParams", "TaskSpec", "get_task", "register_task", "FAMILIES", "load_tokenizer",
    "synthetic_tokenizer", "tokenizer_family", "FileFormatError", "MissingDataError", "NoGoldError",
    "SourceUnavailableError", "gold_problem", "errors",
]
