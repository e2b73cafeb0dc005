"""Offline synthetic tasks: small multilingual stand-ins for every task kind, for tests and for runs
without the hub. Clearly fake: every Example has meta["synthetic"] = True.

Languages. "en" is a small English-like vocabulary. x1, x2, x3 are made from it by deterministic
word substitution: each English word keeps its form with probability `OVERLAP[lang]` (shared words,
as cognates and names are in real languages) and otherwise gets a pseudo-word from that language's
own syllables. Less overlap = harder zero-shot transfer (x1 easy, x3 hard), and no language is a
cipher a model could not have to learn. The languages are fixed (they do not depend on `seed`).

Tasks. Each generator builds examples as English token lists with token-level annotations, then
renders them word by word into the language, so spans and tags carry over. Test sets are parallel
across languages (same content, as XNLI/XQuAD are). Intermediate tasks share the target's decision
rule but not all of its words (other domain: movie vs product reviews, news vs lab verbs), so
intermediate training helps the target partly, not by copying it.
"""
from __future__ import annotations

import random

from .examples import Candidates, Example
from .tasks import SYNTH_LANGS, TaskSpec

OVERLAP = {"en": 1.0, "x1": 0.6, "x2": 0.35, "x3": 0.1}
NAME_OVERLAP = {"en": 1.0, "x1": 0.9, "x2": 0.8, "x3": 0.6}   # names travel across languages more
SYLLABLES = {
    "x1": ("ka", "to", "mi", "ne", "su", "la", "ri", "ko", "ta", "me"),
    "x2": ("bo", "du", "ga", "vy", "zo", "bu", "da", "gy", "vo", "zu"),
    "x3": ("pe", "fi", "hai", "jou", "wi", "fe", "pou", "hi", "jai", "we"),
}

W = str.split
FUNCTION = W("the a this that is was were and but very really i it not quite so too with for in of "
             "to at by on what who where does did do how feel ? . , cause effect think")
POS_SHARED = W("good great excellent wonderful nice happy perfect lovely amazing pleasant")
NEG_SHARED = W("bad awful terrible poor horrible sad disappointing ugly weak annoying")
POS_DOMAIN = {"movie": W("thrilling moving funny gripping"), "product": W("durable sturdy reliable handy")}
NEG_DOMAIN = {"movie": W("dull predictable slow overacted"), "product": W("broken flimsy faulty leaky")}
NOUNS = {"movie": W("movie film plot actor scene ending script soundtrack"),
         "product": W("phone charger battery cable blender kettle lamp screen")}
FIRST = W("alice bob carol dave erin frank grace heidi ivan judy mallory oscar peggy trent")
LAST = W("smith jones brown garcia miller davis lopez wilson")
CITIES = W("paris lima oslo cairo delhi tokyo rome quito berlin nairobi")
ORGS = W("acme globex initech hooli vandelay stark wayne umbrella")
ORG_SUFFIX = W("corp group bank")
VERBS = {"news": W("visited called met helped paid hired"),
         "lab": W("measured heated tested mixed cooled weighed")}
OBJECTS = {"news": NOUNS["product"], "lab": W("sample liquid powder crystal solution metal")}
FEELINGS = {"positive": W("glad happy proud"), "negative": W("upset sad angry"), "neutral": W("tired busy")}
RELATIONS = {   # qa relation: (fact template, question template, answer kind)
    "lives": (("{p}", "lives", "in", "{c}", "."), ("where", "does", "{p}", "live", "?"), "c"),
    "works": (("{p}", "works", "for", "{o}", "."), ("who", "does", "{p}", "work", "for", "?"), "o"),
    "born": (("{p}", "was", "born", "in", "{c}", "."), ("where", "was", "{p}", "born", "?"), "c"),
    "owns": (("{p}", "owns", "a", "{n}", "."), ("what", "does", "{p}", "own", "?"), "n"),
}
EXTRA = W("lives live works work born owns own visited with from team met found")


def _concepts():
    words = set(FUNCTION + POS_SHARED + NEG_SHARED + EXTRA + ORG_SUFFIX + FIRST + LAST + CITIES + ORGS)
    for group in (POS_DOMAIN, NEG_DOMAIN, NOUNS, VERBS, OBJECTS, FEELINGS):
        for ws in group.values():
            words.update(ws)
    return sorted(words)


NAMES = set(FIRST + LAST + CITIES + ORGS)
PUNCT = {"?", ".", ","}


def _build_lexicon():
    lexicon = {"en": {w: w for w in _concepts()}}
    for lang in SYNTH_LANGS[1:]:
        used, table = set(_concepts()), {}
        for w in _concepts():
            rng = random.Random(f"lexicon:{lang}:{w}")
            keep = OVERLAP[lang] if w not in NAMES else NAME_OVERLAP[lang]
            if w in PUNCT or rng.random() < keep:
                table[w] = w
                continue
            form = "".join(rng.choice(SYLLABLES[lang]) for _ in range(rng.choice((2, 2, 3))))
            while form in used:
                form += rng.choice(SYLLABLES[lang])
            used.add(form)
            table[w] = form
        lexicon[lang] = table
    return lexicon


LEXICON = _build_lexicon()


def vocabulary() -> list[str]:
    """Every word any synthetic language can produce (the synthetic tokenizer's word list)."""
    return sorted({w for table in LEXICON.values() for w in table.values()})


def render(tokens, language: str) -> list[str]:
    table = LEXICON[language]
    return [table[t] for t in tokens]


# --- generators: (rng, role) -> English tokens + annotations ------------------------------------
def _person(rng):
    return [rng.choice(FIRST)] + ([rng.choice(LAST)] if rng.random() < 0.4 else [])


def _org(rng):
    return [rng.choice(ORGS)] + ([rng.choice(ORG_SUFFIX)] if rng.random() < 0.4 else [])


def _polar_adj(rng, positive, domain):
    shared, own = (POS_SHARED, POS_DOMAIN[domain]) if positive else (NEG_SHARED, NEG_DOMAIN[domain])
    return rng.choice(own) if rng.random() < 0.4 else rng.choice(shared)


def _clause(rng, domain, positive):
    negate = rng.random() < 0.2
    adj = _polar_adj(rng, positive != negate, domain)
    words = ["the", rng.choice(NOUNS[domain]), rng.choice(("was", "is"))]
    if negate:
        words.append("not")
    elif rng.random() < 0.3:
        words.append(rng.choice(("very", "really", "quite", "so")))
    return words + [adj]


def gen_sentiment(rng, domain):
    n = rng.choice((1, 1, 3))
    polarities = [rng.random() < 0.5 for _ in range(n)]
    words = ["i", "think"] if rng.random() < 0.2 else []
    for k, pol in enumerate(polarities):
        if k:
            words.append(rng.choice(("and", "but", ",")))
        words += _clause(rng, domain, pol)
    label = "positive" if sum(polarities) * 2 > n else "negative"
    return dict(text=words + ["."], label=label)


def _fact(rng, domain):
    return _person(rng) + [rng.choice(VERBS[domain]), "the", rng.choice(OBJECTS[domain]), "in",
                           rng.choice(CITIES)]


def gen_nli(rng, domain):
    facts = [_fact(rng, domain) for _ in range(rng.choice((1, 2)))]
    premise = sum(([*f, "."] for f in facts), [])
    fact = rng.choice(facts)
    label = rng.choice(("entailment", "contradiction", "neutral"))
    verb_at = next(i for i, w in enumerate(fact) if w in VERBS[domain])
    if label == "entailment":
        hyp = fact[:-2] if rng.random() < 0.5 else fact
    elif label == "contradiction":
        hyp = fact[:verb_at] + ["did", "not"] + fact[verb_at:]
        if rng.random() < 0.5:
            hyp = hyp[:-2]
    else:
        other = _fact(rng, domain)
        while any(other[:2] == f[:2] for f in facts):
            other = _fact(rng, domain)
        hyp = other[:-2] if rng.random() < 0.5 else other
    return dict(text=premise, text_pair=hyp + ["."], label=label)


def _event(rng, domain):
    return dict(a=_person(rng), b=_person(rng), verb=rng.choice(VERBS[domain]), city=rng.choice(CITIES))


def _say(e, order):
    core = e["a"] + [e["verb"]] + e["b"]
    return (["in", e["city"], ","] + core if order else core + ["in", e["city"]]) + ["."]


def gen_similarity(rng, domain):
    e = _event(rng, domain)
    while e["a"] == e["b"]:
        e = _event(rng, domain)
    first = _say(e, rng.random() < 0.5)
    label = "1" if rng.random() < 0.5 else "0"
    if label == "1":   # same meaning, other word order (PAWS-style pairs share almost all words)
        second = _say(e, first[0] != "in")
    else:              # same words, roles swapped -> different meaning
        second = _say(dict(e, a=e["b"], b=e["a"]), rng.random() < 0.5)
    return dict(text=first, text_pair=second, label=label)


def gen_sts(rng, domain):
    first = _fact(rng, domain)
    second, changed = list(first), 0
    slots = [i for i, w in enumerate(first) if w not in ("the", "in")]
    for i in rng.sample(slots, rng.randint(0, len(slots))):
        pool = (VERBS[domain] if first[i] in VERBS[domain] else OBJECTS[domain] if first[i] in
                OBJECTS[domain] else CITIES if first[i] in CITIES else FIRST + LAST)
        second[i] = rng.choice([w for w in pool if w != first[i]])
        changed += 1
    return dict(text=first + ["."], text_pair=second + ["."], label=5.0 * (1 - changed / len(slots)))


TAG_TEMPLATES = {
    "news": (("{p}", "visited", "{c}", "with", "{p}"), ("{p}", "works", "for", "{o}", "in", "{c}"),
             ("the", "{o}", "team", "met", "{p}")),
    "lab": (("{p}", "tested", "the", "sample", "for", "{o}"), ("in", "{c}", ",", "{p}", "mixed", "the",
                                                               "liquid")),
}


def gen_tagging(rng, domain):
    tokens, tags = [], []
    for slot in rng.choice(TAG_TEMPLATES[domain]):
        if slot in ("{p}", "{c}", "{o}"):
            kind, words = {"{p}": ("PER", _person(rng)), "{c}": ("LOC", [rng.choice(CITIES)]),
                           "{o}": ("ORG", _org(rng))}[slot]
            tokens += words
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)
        else:
            tokens.append(slot)
            tags.append("O")
    return dict(tokens=tokens, tags=tags)


QA_RELATIONS = {"news": ("lives", "works", "born"), "lab": ("lives", "works", "owns")}


def gen_qa(rng, domain):
    people, context, facts = [], [], []
    while len(facts) < rng.randint(3, 5):
        p = _person(rng)
        if p[0] in (q[0] for q in people):
            continue
        people.append(p)
        rel = rng.choice(QA_RELATIONS[domain])
        fact_t, question_t, answer_kind = RELATIONS[rel]
        fill = {"p": p, "c": [rng.choice(CITIES)], "o": _org(rng), "n": [rng.choice(NOUNS["product"])]}
        start = len(context)
        for slot in fact_t:
            if slot.startswith("{"):
                key = slot[1]
                if key == answer_kind:
                    answer = (len(context), len(context) + len(fill[key]))
                context += fill[key]
            else:
                context.append(slot)
        question = sum((fill[s[1]] if s.startswith("{") else [s] for s in question_t), [])
        facts.append((start, question, answer))
    _, question, answer = rng.choice(facts)
    return dict(context=context, question=question, answer=answer)


def gen_choice(rng, domain, n_choices):
    positive = rng.random() < 0.5
    pol, anti = ("positive", "negative") if positive else ("negative", "positive")
    if n_choices == 2:   # XCOPA-like: cause or effect, choices differ in polarity
        premise = _clause(rng, domain, positive)
        good, bad = ["i", "was", rng.choice(FEELINGS[pol])], ["i", "was", rng.choice(FEELINGS[anti])]
        text = premise + [".", "what", "was", "the", "effect", "?"]
        if rng.random() < 0.5:
            text = good + [".", "what", "was", "the", "cause", "?"]
            good, bad = premise, _clause(rng, domain, not positive)
        choices = [good, bad]
    else:               # SIQA-like: how does the person feel, third choice neutral
        p = _person(rng)
        text = p + ["found", "the", rng.choice(NOUNS[domain]), _polar_adj(rng, positive, domain), ".",
                    "how", "does"] + p + ["feel", "?"]
        choices = [[rng.choice(FEELINGS[pol])], [rng.choice(FEELINGS[anti])],
                   [rng.choice(FEELINGS["neutral"])]]
    order = list(range(len(choices)))
    rng.shuffle(order)
    return dict(text=text, choices=[choices[i] for i in order], label=str(order.index(0)))


# task name -> (generator, domain)
GENERATORS = {
    "synth_sentiment": (gen_sentiment, "product"), "synth_sentiment_domain": (gen_sentiment, "product"),
    "synth_int_sentiment": (gen_sentiment, "movie"),
    "synth_nli": (gen_nli, "news"), "synth_nli_domain": (gen_nli, "lab"), "synth_int_nli": (gen_nli, "news"),
    "synth_similarity": (gen_similarity, "news"), "synth_similarity_domain": (gen_similarity, "news"),
    "synth_int_similarity": (gen_similarity, "lab"),
    "synth_sts": (gen_sts, "news"), "synth_int_sts": (gen_sts, "lab"),
    "synth_tagging": (gen_tagging, "news"), "synth_int_tagging": (gen_tagging, "lab"),
    "synth_qa": (gen_qa, "news"), "synth_int_qa": (gen_qa, "lab"),
    "synth_choice": (lambda rng, d: gen_choice(rng, d, 2), "product"),
    "synth_int_choice": (lambda rng, d: gen_choice(rng, d, 3), "movie"),
}
# The cross-lingual NLI target and its intermediate task share the news domain but not examples:
# the intermediate task draws from its own seed stream (task name is part of the seed).


def generate(task: TaskSpec, split: str, language: str, seed: int = 0) -> list[Example]:
    if language not in LEXICON:
        raise ValueError(f"unknown synthetic language {language!r} (one of {', '.join(LEXICON)})")
    n = task.sizes.get(split, 0)
    # Content depends on (task, split, seed), not on the language: test sets are parallel.
    rng = random.Random(f"{task.name}:{split}:{seed}")
    meta = {"source": "synthetic", "synthetic": True, "task": task.name, "seed": seed}
    if task.kind == "retrieval":
        return _retrieval(task, split, language, n, rng, meta)
    gen, domain = GENERATORS[task.name]
    out = []
    for i in range(n):
        raw = gen(rng, domain)
        ex_id = f"{task.name}-{split}-{language}-{i}"
        if task.kind == "tagging":
            out.append(Example(id=ex_id, language=language, tokens=tuple(render(raw["tokens"], language)),
                               tags=tuple(raw["tags"]), meta=meta))
        elif task.kind == "qa":
            words = render(raw["context"], language)
            a, b = raw["answer"]
            start = sum(len(w) + 1 for w in words[:a])
            text = " ".join(words[a:b])
            out.append(Example(id=ex_id, language=language, context=" ".join(words),
                               question=" ".join(render(raw["question"], language)),
                               answers=((text, start),), meta=meta))
        elif task.kind == "multiple_choice":
            out.append(Example(id=ex_id, language=language, text=" ".join(render(raw["text"], language)),
                               choices=tuple(" ".join(render(c, language)) for c in raw["choices"]),
                               label=raw["label"], meta=meta))
        else:
            pair = raw.get("text_pair")
            out.append(Example(id=ex_id, language=language, text=" ".join(render(raw["text"], language)),
                               text_pair=" ".join(render(pair, language)) if pair else None,
                               label=raw["label"], meta=meta))
    return out


def _retrieval(task, split, language, n, rng, meta):
    """Tatoeba-like: a sentence in `language` must find its English original among all originals."""
    sentences = []
    while len(sentences) < n:
        gen, domain = rng.choice(((gen_sentiment, "product"), (gen_nli, "news")))
        s = gen(rng, domain)["text"]
        if s not in sentences:
            sentences.append(s)
    order = list(range(n))
    rng.shuffle(order)   # the pool is not in query order
    pool = Candidates(ids=tuple(str(k) for k in range(n)),
                      texts=tuple(" ".join(sentences[i]) for i in order))
    where = {i: str(k) for k, i in enumerate(order)}
    return [Example(id=f"{task.name}-{split}-{language}-{i}", language=language,
                    text=" ".join(render(s, language)), candidates=pool, label=(where[i],), meta=meta)
            for i, s in enumerate(sentences)]
