"""Marked copies stay equal to their originals (transformers' utils/check_copies.py habit).

A class or function that repeats another one is marked on the line above it

    # Copied from flax_models.bert.BertForTokenClassification with Bert->Roberta,bert->roberta

and must equal the original's source once the replacements are made (all at once, so that `bert->roberta`
does not rewrite the `Roberta` that `Bert->Roberta` wrote). Comments count; line breaks and indentation
inside a statement do not (a longer name moves a continuation line). A drift fails with a unified diff.
"""
from __future__ import annotations

import ast
import difflib
import io
import re
import textwrap
import tokenize
from pathlib import Path
from typing import Callable, NamedTuple

import pytest

from tests.support.paths import ROOT

PACKAGE = ROOT / "flax_models"
MARK = re.compile(r"^\s*# Copied from (?P<module>flax_models(?:\.\w+)+?)\.(?P<name>[A-Z_a-z]\w*(?:\.\w+)*)"
                  r"(?: with (?P<replacements>\S+))?\s*$")


class Copy(NamedTuple):
    line: int            # of the mark
    module: str
    qualname: str
    replacements: dict[str, str]
    source: str          # the copy, dedented


def _definitions(tree: ast.AST, prefix: str = ""):
    """(qualified name, node) of every class and function, methods as Class.method."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name, node
            yield from _definitions(node, prefix + node.name + ".")


def _segment(lines: list[str], node: ast.AST) -> str:
    start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    return textwrap.dedent("".join(lines[start - 1:node.end_lineno]))


def find_copies(source: str, filename: str = "<source>") -> list[Copy]:
    lines = source.splitlines(keepends=True)
    starts = {}
    for _, node in _definitions(ast.parse(source, filename)):
        starts[node.decorator_list[0].lineno if node.decorator_list else node.lineno] = node
    copies = []
    for number, text in enumerate(lines, 1):
        match = MARK.match(text)
        if not match:
            continue
        if number + 1 not in starts:
            raise AssertionError(f"{filename}:{number}: a 'Copied from' mark not directly above a class or def")
        pairs = (match["replacements"] or "").split(",") if match["replacements"] else []
        replacements = dict(pair.split("->", 1) for pair in pairs)
        copies.append(Copy(number, match["module"], match["name"], replacements,
                           _segment(lines, starts[number + 1])))
    return copies


def module_source(module: str) -> str:
    return (ROOT / Path(*module.split("."))).with_suffix(".py").read_text()


def original(module: str, qualname: str, read: Callable[[str], str] = module_source) -> str:
    source = read(module)
    for name, node in _definitions(ast.parse(source)):
        if name == qualname:
            return _segment(source.splitlines(keepends=True), node)
    raise KeyError(f"{module} has no {qualname}")


def replace_all(text: str, replacements: dict[str, str]) -> str:
    if not replacements:
        return text
    pattern = re.compile("|".join(map(re.escape, sorted(replacements, key=len, reverse=True))))
    return pattern.sub(lambda m: replacements[m.group()], text)


def _tokens(text: str) -> list[tuple[int, str]]:
    skip = {tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}
    return [(t.type, t.string) for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type not in skip]


def check_copies(source: str, filename: str, read: Callable[[str], str] = module_source) -> list[str]:
    """One message (with a unified diff) per marked copy that differs from its original."""
    problems = []
    for copy in find_copies(source, filename):
        try:
            expected = replace_all(original(copy.module, copy.qualname, read), copy.replacements)
        except (KeyError, FileNotFoundError) as err:
            problems.append(f"{filename}:{copy.line}: the original is not there ({err})")
            continue
        if _tokens(expected) != _tokens(copy.source):
            diff = "".join(difflib.unified_diff(expected.splitlines(keepends=True),
                                                copy.source.splitlines(keepends=True),
                                                f"{copy.module}.{copy.qualname} (replaced)", f"{filename} copy"))
            problems.append(f"{filename}:{copy.line}: the copy of {copy.module}.{copy.qualname} has drifted:\n{diff}")
    return problems


def package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_marked_copy_equals_its_original():
    problems = [p for file in package_files() for p in check_copies(file.read_text(), str(file.relative_to(ROOT)))]
    assert not problems, "\n".join(problems)


def test_roberta_marks_what_it_copies_from_bert():
    copies = find_copies((PACKAGE / "roberta.py").read_text())
    assert {(c.module, c.qualname) for c in copies} == {
        ("flax_models.bert", "BertModel.encode"), ("flax_models.bert", "BertModel.__call__"),
        ("flax_models.bert", "BertForTokenClassification"), ("flax_models.bert", "BertForQuestionAnswering"),
        ("flax_models.bert", "BertForMultipleChoice")}
    multiple_choice = next(c for c in copies if c.qualname == "BertForMultipleChoice")
    assert multiple_choice.replacements == {"Bert": "Roberta", "bert": "roberta",
                                            "head_dropout": "hidden_dropout_prob"}


def test_replacements_are_made_at_once():
    assert replace_all("BertModel(bert)", {"Bert": "Roberta", "bert": "roberta"}) == "RobertaModel(roberta)"


def test_a_planted_drift_is_caught_with_a_diff():
    source = (PACKAGE / "roberta.py").read_text()
    drifted = source.replace("        logits = self.classifier(dropout(hidden, self.dropout_rate, rngs))\n",
                             "        logits = self.classifier(hidden)\n", 1)
    assert drifted != source
    problems = check_copies(drifted, "roberta.py")
    assert len(problems) == 1
    assert "the copy of flax_models.bert.BertForTokenClassification has drifted" in problems[0]
    assert "-        logits = self.classifier(dropout(hidden, self.dropout_rate, rngs))" in problems[0]
    assert "+        logits = self.classifier(hidden)" in problems[0]

    # A comment is part of the copy; a continuation line's indentation is not.
    recommented = source.replace("  # no dropout before qa_outputs (as the reference)", "  # no dropout", 1)
    assert any("BertForQuestionAnswering has drifted" in p for p in check_copies(recommented, "roberta.py"))
    reflowed = source.replace("                                             flatten_choices(token_type_ids), rngs)",
                              "            flatten_choices(token_type_ids), rngs)", 1)
    assert reflowed != source and check_copies(reflowed, "roberta.py") == []


def test_a_drifted_original_and_a_lost_original_are_caught():
    bert = module_source("flax_models.bert")
    changed = bert.replace("        self.qa_outputs = linear(config.hidden_size, 2,",
                           "        self.qa_outputs = linear(config.hidden_size, 3,", 1)
    assert changed != bert
    read = {"flax_models.bert": changed}.__getitem__
    problems = check_copies((PACKAGE / "roberta.py").read_text(), "roberta.py", read)
    assert len(problems) == 1 and "BertForQuestionAnswering has drifted" in problems[0]

    lost = bert.replace("class BertForQuestionAnswering(", "class BertForQA(", 1)
    problems = check_copies((PACKAGE / "roberta.py").read_text(), "roberta.py", {"flax_models.bert": lost}.__getitem__)
    assert problems == [f"roberta.py:{_line_of('BertForQuestionAnswering')}: the original is not there "
                        "('flax_models.bert has no BertForQuestionAnswering')"]


def test_a_mark_must_sit_on_a_definition():
    with pytest.raises(AssertionError, match="not directly above a class or def"):
        find_copies("# Copied from flax_models.bert.BertModel\n\nclass X:\n    pass\n", "x.py")


def _line_of(qualname: str) -> int:
    return next(c.line for c in find_copies((PACKAGE / "roberta.py").read_text()) if c.qualname == qualname)
