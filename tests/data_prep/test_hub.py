"""The hub source against the offline hub stand-in (tests/support/hub_standin.py; the `hub_standin` fixture
comes from conftest.py): the real schemas of every dataset the paper preset reads, parsed by the real code;
and the stand-in against datasets itself."""
import subprocess
import sys
from collections import Counter

import datasets
import pytest
import yaml

import data_prep as dp
from data_prep import hub
from tests.support import hub_standin as hs
from tests.support.paths import ROOT


def _one_line(e):
    assert "\n" not in str(e.value)
    return str(e.value)


def _paper_cells():
    """(task, split, language) the paper preset loads: every split of every target in each of its
    languages (train/dev in the training language), the intermediate tasks (the control arm trains on theirs), SQuAD and SIQA."""
    grid = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())["grid"]
    tasks = grid["target_tasks"] + [t for t in grid["intermediate_tasks"] if t not in ("none", "control")] + ["squad", "siqa"]
    for name in tasks:
        task = dp.get_task(name)
        for split in task.splits:
            for lang in (task.languages if split == "test" else [task.train_language or "en"]):
                yield name, split, lang


def test_every_cell_of_the_paper_preset_loads_or_says_why(hub_standin):
    outcome, refused = Counter(), {}
    for name, split, lang in _paper_cells():
        try:
            dp.load_examples(name, split, lang, source="hub", require_gold=True)
            outcome["ok"] += 1
        except (dp.MissingDataError, dp.NoGoldError) as e:
            refused[(name, split, lang)] = type(e).__name__
    # google/xtreme has udpos for the XTREME v1 languages only; COPA's test labels are private (-1)
    # google/xtreme's tatoeba has XTREME's 36 languages, not XTREME-R's az, lt, pl, ro, uk
    assert refused == {**{("udpos", "test", l): "MissingDataError" for l in ("lt", "pl", "uk", "wo", "ro")},
                       **{("tatoeba", "test", l): "MissingDataError" for l in ("az", "lt", "pl", "ro", "uk")},
                       ("xcopa", "test", "en"): "NoGoldError", ("mnli", "test", "en"): "NoGoldError",
                       ("qqp", "test", "en"): "NoGoldError",
                       ("siqa", "test", "en"): "MissingDataError"}      # lighteval/siqa: train, validation
    assert outcome["ok"] == 213


def test_language_the_hub_lacks_is_refused_before_any_download(hub_standin):
    with pytest.raises(dp.MissingDataError) as e:
        dp.load_examples("udpos", "test", "wo", source="hub")
    assert (e.value.what, e.value.source, e.value.language) == ("language", "hub", "wo")
    assert "google/xtreme has no 'wo'" in _one_line(e) and hub_standin.calls == []
    assert "wo" not in dp.source_languages("udpos", "hub") and "de" in dp.source_languages("udpos", "hub")
    with pytest.raises(dp.MissingDataError, match="use source='xtreme'") as e:
        dp.load_examples("mewslix", "dev", "de", source="hub")
    assert e.value.what == "task"
    with pytest.raises(dp.MissingDataError) as e:      # cambridgeltl/xcopa has no train split
        dp.load_examples("xcopa", "train", "et", source="hub")
    assert e.value.what == "split" and hub_standin.calls == []


def test_offline_hub_is_source_unavailable():
    with hs.serve(offline=True):
        with pytest.raises(dp.SourceUnavailableError) as e:
            dp.load_examples("xnli", "dev", "de", source="hub")
    assert isinstance(e.value, RuntimeError) and isinstance(e.value.__cause__, ConnectionError)
    assert "facebook/xnli" in _one_line(e) and e.value.split == "dev"


def test_a_data_file_missing_from_an_offline_cache_is_source_unavailable(monkeypatch):
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline_and_not_cached(*args, **kw):
        raise LocalEntryNotFoundError("Cannot find the requested files in the disk cache and outgoing traffic "
                                      "has been disabled.")
    monkeypatch.setattr(datasets, "load_dataset", offline_and_not_cached)
    with pytest.raises(dp.SourceUnavailableError, match="snli dev/en from hub: source unavailable: "
                                                        "stanfordnlp/snli: Cannot find"):
        dp.load_examples("snli", "dev", "en", source="hub")


def test_unknown_config_and_split_are_missing_data(hub_standin, monkeypatch):
    src = hub.SOURCES["pawsx"]
    monkeypatch.setitem(hub.SOURCES, "pawsx", hub.HubSource(src.path, lambda l: f"{l}-v2", src.splits, src.parse))
    with pytest.raises(dp.MissingDataError, match="paws-x has no config 'de-v2'") as e:
        dp.load_examples("pawsx", "dev", "de", source="hub")
    assert e.value.what == "language" and isinstance(e.value.__cause__, ValueError)
    monkeypatch.setitem(hub.SOURCES, "pawsx", hub.HubSource(src.path, src.config, {"dev": "dev"}, src.parse))
    with pytest.raises(dp.MissingDataError, match=r"paws-x/de has no split 'dev' \(it has: train, validation, test\)"):
        dp.load_examples("pawsx", "dev", "de", source="hub")


def test_a_repository_that_is_not_there_is_missing_data(hub_standin, monkeypatch):
    src = hub.SOURCES["snli"]
    monkeypatch.setitem(hub.SOURCES, "snli", hub.HubSource("stanfordnlp/snli-gone", src.config, src.splits, src.parse))
    with pytest.raises(dp.MissingDataError, match="snli-gone") as e:
        dp.load_examples("snli", "dev", "en", source="hub")
    assert e.value.what == "task"


def test_no_source_points_at_a_script_only_repository(hub_standin):
    # datasets >= 4 refuses facebook/mlqa, allenai/social_i_qa, mteb/amazon_reviews_multi, aps/super_glue@main
    for src in [*hub.SOURCES.values(), hub.COPA]:
        assert datasets.get_dataset_config_names(src.path, **src.kwargs)   # the form we read is served
    with pytest.raises(RuntimeError, match="Dataset scripts are no longer supported, but found super_glue.py"):
        datasets.load_dataset("aps/super_glue", "copa", split="train")


# --- parsers on the real schemas ------------------------------------------------------------------
def test_classlabel_names_map_labels_by_name(hub_standin):
    ex = dp.load_examples("xnli", "dev", "de", source="hub")     # names: entailment, neutral, contradiction
    assert [e.label for e in ex] == ["entailment", "contradiction", "neutral", "entailment"]
    assert ex[0].meta["dataset"] == "facebook/xnli" and ex[0].meta["synthetic"] is False
    assert [e.label for e in dp.load_examples("qqp", "dev", "en", source="hub")] == ["1", "0", "1"]
    assert [e.label for e in dp.load_examples("sst2", "dev", "en", source="hub")] == [
        "positive", "negative", "positive"]
    assert dp.load_examples("stsb", "dev", "en", source="hub")[0].label == pytest.approx(4.6)
    assert [e.label for e in dp.load_examples("paws", "train", "en", source="hub")] == ["1", "1", "0"]


def test_snli_rows_without_gold_are_dropped_and_counted(hub_standin):
    ex = dp.load_examples("snli", "test", "en", source="hub")
    assert len(ex) == 3 and ex.dropped == {"no gold label (-1)": 1}
    assert all(e.label is not None for e in ex)
    # a split where no row has gold stays whole, and is refused where gold is required
    assert len(dp.load_examples("mnli", "test", "en", source="hub")) == 4
    with pytest.raises(dp.NoGoldError, match="mnli test/en from hub: no gold: 4 of 4 examples have no gold"):
        dp.load_examples("mnli", "test", "en", source="hub", require_gold=True)


def test_tagging_configs(hub_standin):
    assert dp.load_examples("panx", "test", "qu", source="hub")[0].tags == ("B-PER", "I-PER", "O", "B-LOC", "O")
    pos = dp.load_examples("udpos", "test", "th", source="hub")
    assert pos[1].tags[:2] == ("PRON", "CCONJ") and hub_standin.calls[-1] == ("google/xtreme", "udpos.Thai", "test")
    with pytest.raises(dp.MissingDataError, match="has no split 'train'"):   # udpos.Thai is test only
        dp.load_examples("udpos", "train", "th", source="hub")


@pytest.mark.parametrize("task,split,lang,dataset", [
    ("xquad", "test", "zh", ("google/xquad", "xquad.zh", "validation")),
    ("mlqa", "test", "hi", ("google/xtreme", "MLQA.hi.hi", "test")),
    ("squad", "dev", "en", ("rajpurkar/squad", "plain_text", "validation")),
])
def test_qa_answers_are_reanchored_where_the_conversion_moved_them(hub_standin, task, split, lang, dataset):
    ex = dp.load_examples(task, split, lang, source="hub", require_gold=True)
    assert hub_standin.calls[-1] == dataset
    for e in ex:
        for text, start in e.answers:
            assert e.context[start:start + len(text)] == text
    assert ex[1].answers == (("Normandy", 22), ("Normandy, a region in France", 22))
    assert ex.dropped == {}


def test_qa_answer_absent_from_its_context_is_dropped_and_counted():
    rows = hs.REPOS["google/xquad"].rows("xquad.th", "validation")
    rows[0]["answers"] = {"text": ["Oslo"], "answer_start": [0]}                          # nowhere in it
    rows[1]["answers"]["text"] = ["Normandy", "Rouen"]                                       # one of two
    with hs.serve(overrides={("google/xquad", "xquad.th", "validation"): rows}):
        ex = dp.load_examples("xquad", "test", "th", source="hub")
    assert [e.id for e in ex] == ["xquad.th-2"] and ex[0].answers == (("Normandy", 22),)
    assert ex.dropped == {"answer text not in context": 2, "question without a locatable answer": 1}


def test_tydiqa_secondary_task_is_filtered_by_language(hub_standin):
    ex = dp.load_examples("tydiqa", "dev", "fi", source="hub")
    assert len(ex) == 2 and all(e.id.startswith("finnish-") for e in ex)


def test_xcopa_and_copa(hub_standin):
    et = dp.load_examples("xcopa", "test", "et", source="hub", require_gold=True)
    assert et[0].text == "The man broke his toe. What was the cause?" and [e.label for e in et] == ["0", "1"]
    en = dp.load_examples("xcopa", "train", "en", source="hub")
    assert [e.label for e in en] == ["0", "1"]         # the raw index, not the ClassLabel name "choice1"
    assert hub_standin.calls[-1] == ("aps/super_glue", None, "train")
    with pytest.raises(dp.NoGoldError, match="xcopa test/en from hub: no gold: 2 of 2 examples"):
        dp.load_examples("xcopa", "test", "en", source="hub", require_gold=True)


def test_amazon_reviews_multi_polarity_and_label_range(hub_standin):
    ex = dp.load_examples("amazon_reviews_multi", "train", "ja", source="hub")
    assert [e.label for e in ex] == ["negative", "negative", "positive", "positive"]
    assert ex.dropped == {"3-star review (neither polarity)": 1}
    assert hub_standin.calls[-1] == ("mteb/AmazonReviewsClassification", "ja", "train")
    rows = [{"text": "five stars", "label": 5}]
    with hs.serve(overrides={("mteb/AmazonReviewsClassification", "ja", "train"): rows}):
        with pytest.raises(ValueError, match=r"ja\[train\] row 0: label 5 is not 0-4"):
            dp.load_examples("amazon_reviews_multi", "train", "ja", source="hub")


def test_amazon_polarity_dev_is_a_fixed_holdout_of_train(hub_standin):
    dev = dp.load_examples("amazon_polarity", "dev", "en", source="hub")
    train = dp.load_examples("amazon_polarity", "train", "en", source="hub", seed=7)
    rows = lambda split: {e.meta["row"] for e in split}   # noqa: E731
    assert rows(dev).isdisjoint(rows(train)) and rows(dev) | rows(train) == set(range(6))
    assert {e.meta["split"] for e in dev} == {"train"}
    assert rows(dp.load_examples("amazon_polarity", "dev", "en", source="hub", seed=3)) == rows(dev)
    assert len(dp.load_examples("amazon_polarity", "test", "en", source="hub")) == 6
    assert dp.get_task("amazon_polarity").splits == ("train", "dev", "test")


def test_siqa_imdb_and_tatoeba(hub_standin):
    assert [e.label for e in dp.load_examples("siqa", "dev", "en", source="hub")] == ["2", "0"]
    assert hub_standin.calls[-1] == ("lighteval/siqa", None, "validation")
    assert [e.label for e in dp.load_examples("imdb", "test", "en", source="hub")] == ["positive", "negative"]
    t = dp.load_examples("tatoeba", "test", "de", source="hub", require_gold=True)
    assert t[1].label == ("1",) and t[1].text == "Danke schön." and t[1].candidates.texts[1] == "Thank you very much."


def test_unknown_label_names_the_row(hub_standin):
    rows = [{**r, "label": 2} for r in hs.REPOS["cambridgeltl/xcopa"].rows("sw", "validation")]
    with hs.serve(overrides={("cambridgeltl/xcopa", "sw", "validation"): rows}):
        with pytest.raises(ValueError, match=r"xcopa/sw\[validation\] row 0: unknown label '2'") as e:
            dp.load_examples("xcopa", "dev", "sw", source="hub")
    _one_line(e)


# --- the stand-in fails as datasets does ------------------------------------------------------------
def test_standin_errors_match_datasets_on_a_real_local_parquet_repo(tmp_path):
    ds = datasets.Dataset.from_dict({"text": ["a"], "label": [0]})
    (tmp_path / "en").mkdir()
    ds.to_parquet(str(tmp_path / "en" / "test-00000-of-00001.parquet"))
    (tmp_path / "README.md").write_text("---\nconfigs:\n- config_name: en\n  data_files:\n  - split: test\n"
                                        "    path: en/test-*\n- config_name: de\n  data_files:\n  - split: test\n"
                                        "    path: en/test-*\n---\n")
    real = {}
    for name, split in (("xx", "test"), ("en", "train")):
        with pytest.raises(ValueError) as e:
            datasets.load_dataset(str(tmp_path), name, split=split)
        real[name] = str(e.value)
    standin = hs.HubStandIn()
    standin_repo = hs.Repo(lambda c: ds.features, {"en": ("test",), "de": ("test",)}, lambda c, s: [])
    hs.REPOS["local/test"] = standin_repo
    try:
        for name, split in (("xx", "test"), ("en", "train")):
            with pytest.raises(ValueError) as e:
                standin.load_dataset("local/test", name, split=split)
            assert str(e.value) == real[name]
    finally:
        del hs.REPOS["local/test"]


def test_offline_datasets_raises_connection_error_as_the_standin_does():
    code = ("import datasets\ntry:\n    datasets.load_dataset('google/xtreme', 'MLQA.de.de', split='test')\n"
            "except ConnectionError as e:\n    print('ConnectionError', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PATH": "/usr/bin:/bin",
                              "HOME": str(ROOT / ".nonexistent-home")})
    assert out.stdout.startswith("ConnectionError Couldn't reach 'google/xtreme' on the Hub"), out.stderr[-500:]


def test_standin_runs_a_module_for_a_subprocess(tmp_path, monkeypatch, capsys):
    (tmp_path / "probe_hub.py").write_text(
        "import data_prep as dp\n"
        "try:\n    print(len(dp.load_examples('snli', 'dev', 'en', source='hub')))\n"
        "except dp.SourceUnavailableError as e:\n    print('unavailable', e.source)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    hs.main(["probe_hub"])
    hs.main(["--offline", "probe_hub"])
    assert capsys.readouterr().out.split("\n")[:2] == ["3", "unavailable hub"]
    assert datasets.load_dataset.__module__ == "datasets.load"    # restored
