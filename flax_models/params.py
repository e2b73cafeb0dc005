"""Parameter counts as papers report them: total, embedding (the nn.Embedding tables), the rest."""
from __future__ import annotations

import math
from typing import Callable, Iterable, NamedTuple

from flax import nnx


class ParamCount(NamedTuple):
    total: int
    embedding: int       # parameters of nnx.Embed tables (torch: of nn.Embedding modules)
    non_embedding: int
    trainable: int       # total minus the frozen ones

    def as_dict(self) -> dict[str, int]:
        return self._asdict()


def _flat_params(model_or_state) -> Iterable[tuple[tuple, tuple[int, ...]]]:
    """(path, shape) for every parameter of a model (concrete or abstract), nnx.State or pytree of arrays."""
    if isinstance(model_or_state, nnx.Module):
        model_or_state = nnx.state(model_or_state, nnx.Param)
    if isinstance(model_or_state, nnx.State):
        for path, variable in nnx.to_flat_state(model_or_state):
            yield tuple(str(p) for p in path), tuple(variable.shape)
        return
    import jax

    for path, leaf in jax.tree_util.tree_flatten_with_path(model_or_state)[0]:
        keys = tuple(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path)
        yield keys, tuple(leaf.shape)


def param_count(model_or_state, frozen: Callable[[str], bool] | Iterable[str] | None = None) -> ParamCount:
    """Counts parameters of an nnx model (also one from `abstract_model`), an nnx.State or a param pytree.

    `frozen`: a predicate on the dotted nnx path (`bert.embeddings.word_embeddings.embedding`) or a list of
    path prefixes; those parameters do not count as trainable.
    """
    if frozen is not None and not callable(frozen):
        prefixes = tuple(frozen)
        frozen = lambda name: name.startswith(prefixes)  # noqa: E731
    total = embedding = frozen_count = 0
    for path, shape in _flat_params(model_or_state):
        size = math.prod(shape)
        total += size
        if path[-1] == "embedding":  # the table of an nnx.Embed
            embedding += size
        if frozen is not None and frozen(".".join(path)):
            frozen_count += size
    return ParamCount(total=total, embedding=embedding, non_embedding=total - embedding,
                      trainable=total - frozen_count)
