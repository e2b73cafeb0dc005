"""Checkpoints in: transformers folders (or hub ids) -> our NNX models.

The mapping is one naming rule (flax_models/pretrained.py, docs/design.md), not a table per family: the
nnx path of a parameter joined with "." is its transformers state-dict key once the leaf is renamed
(kernel, embedding, scale -> weight; Linear kernels transposed). Checkpoints are accepted with or without
the backbone prefix (`bert.`, `roberta.`, `transformer.`): a BertModel saved alone has none, a
BertForPreTraining checkpoint has `bert.` plus `cls.*` (reported unused).

A config is checked before anything is built: each value by its family's config class, then the whole
model's float32 parameters against the machine's memory, counted on the abstract model (shapes only).
`from_pretrained` builds the model abstractly, fills it with the checkpoint's arrays and initialises only
what the checkpoint lacks (a fresh head), with the very values `from_config(seed=...)` gives those
parameters: one jitted build of the whole model from which XLA keeps just those outputs. A checkpoint that
lacks backbone weights is an error unless `allow_missing_backbone=True`.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from flax_models.errors import HubUnreachableError, MissingWeightsError
from flax_models.families import family_for, head_class_name
from flax_models.host_buffers import aligned_empty
from flax_models.modeling_utils import HFConfig, KeyStream, is_int, labels_for_head
from flax_models.pretrained import (
    hf_named_params,
    hf_names,
    hf_shape,
    hf_state_dict,
    is_linear_kernel,
    save_pretrained,
)
from flax_models.weights import CONFIG_NAME, TORCH_WEIGHTS_NAME, WEIGHTS_NAME, read_weights

__all__ = ["CONFIG_NAME", "HubUnreachableError", "LoadingInfo", "MissingWeightsError", "abstract_model",
           "family_for", "from_config", "from_pretrained", "head_class_name", "hf_state_dict", "read_config",
           "resolve", "save_pretrained", "transfer_encoder"]

logger = logging.getLogger(__name__)

MAX_CONFIG_BYTES = 16 * 2**20  # config.json files are kilobytes; a label map of 100,000 names is ~3 MB
# What resolve() fetches from the hub besides the weights: the config and the tokenizer files.
_HUB_SIDE_FILES = [CONFIG_NAME, "*.json", "*.txt", "*.model"]
_HUB_WEIGHTS = ([WEIGHTS_NAME, "model-*.safetensors", f"{WEIGHTS_NAME}.index.json"], [TORCH_WEIGHTS_NAME])


@dataclasses.dataclass(frozen=True)
class LoadingInfo:
    """What from_pretrained did with the checkpoint (attached as `model.loading_info`)."""

    source: str
    loaded: int
    missing: tuple[str, ...]      # our parameters not in the checkpoint: freshly initialised
    unexpected: tuple[str, ...]   # checkpoint weights we have no place for (e.g. `cls.*` pretraining heads)


# ---------------------------------------------------------------------------------------------------------
# Reading folders, configs and weights


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name


def resolve(name_or_dir: str | os.PathLike, weights: bool = True) -> Path:
    """A local model folder, or a hub id downloaded into the HF cache (offline: the cache only).

    From the hub, one weight format: model.safetensors (or its shards) where the repository has it, else
    pytorch_model.bin (xlnet-base-cased's main branch has only that), plus the config and tokenizer files
    (those alone with weights=False: a tokenizer). Never a .py file: nothing here runs a repository's code.
    """
    path = Path(name_or_dir).expanduser()
    if path.is_dir():
        return path
    name = str(name_or_dir)
    if path.exists() or _looks_like_path(name):
        raise FileNotFoundError(f"model folder not found: {name}")
    from huggingface_hub import errors

    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    unreachable = False
    try:
        return _download(name, offline, weights)
    except errors.GatedRepoError as err:
        why, cause = "the repository is gated: accept its terms on the hub and log in (hf auth login)", err
    except errors.RepositoryNotFoundError as err:
        why, cause = "no such repository on the hub (or it is private and you are not logged in)", err
    except errors.RevisionNotFoundError as err:
        why, cause = "the revision does not exist on the hub", err
    except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled) as err:
        why = ("HF_HUB_OFFLINE=1 and it is not in the local cache" if offline else
               "the hub cannot be reached and it is not in the local cache")
        cause, unreachable = err, True
    except errors.HfHubHTTPError as err:
        why, cause = f"HTTP error from the hub: {_first_line(err)}", err
    except errors.HFValidationError as err:
        why, cause = f"not a valid hub id ({_first_line(err)})", err
    except _transport_errors() as err:  # connection, timeout, disk: what the HTTP client and the cache raise
        why, cause = f"{type(err).__name__}: {_first_line(err)}", err
        unreachable = not isinstance(err, OSError) or isinstance(err, (ConnectionError, TimeoutError))
    error = HubUnreachableError if unreachable else OSError
    raise error(f"cannot get model {name!r} from the Hugging Face hub: {why}") from cause


def _download(name: str, offline: bool, with_weights: bool = True) -> Path:
    from huggingface_hub import snapshot_download

    if not with_weights:
        return Path(snapshot_download(name, allow_patterns=_HUB_SIDE_FILES, local_files_only=offline))
    folder = None
    for weights in _HUB_WEIGHTS:  # safetensors first; the .bin only where the repository has no safetensors
        folder = Path(snapshot_download(name, allow_patterns=_HUB_SIDE_FILES + weights, local_files_only=offline))
        if any(any(folder.glob(pattern)) for pattern in weights):
            break
    return folder


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [""])[0]


def _transport_errors() -> tuple[type[BaseException], ...]:
    """OSError (requests' errors, the cache's I/O) and the transport errors of the HTTP client in use."""
    classes: list[type[BaseException]] = [OSError]
    for module in ("httpx2", "httpx"):  # huggingface_hub >= 1.0 talks httpx(2); older versions requests
        try:
            classes.append(importlib.import_module(module).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(classes)


def read_config(hf_config: dict | str | os.PathLike) -> dict:
    """A config dict from a dict, a config.json path or a folder holding one."""
    if isinstance(hf_config, dict):
        return dict(hf_config)
    path = config_path(hf_config)
    if not path.is_file():
        raise FileNotFoundError(f"no {CONFIG_NAME} at {path}")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ValueError(f"{path}: {path.stat().st_size} bytes, over the {MAX_CONFIG_BYTES}-byte limit for a "
                         "config")
    try:
        config = json.loads(path.read_text())
    except (ValueError, RecursionError) as err:   # not UTF-8, not JSON, nested too deep, a 5000-digit integer
        raise ValueError(f"{path}: not JSON ({str(err).splitlines()[0]:.100})") from err
    if not isinstance(config, dict):
        raise ValueError(f"{path}: a JSON {type(config).__name__}, not a config object")
    return config


def config_path(folder_or_file: str | os.PathLike) -> Path:
    path = Path(folder_or_file)
    return path / CONFIG_NAME if path.is_dir() else path


def _normalise_key(key: str) -> str:
    # Checkpoints converted from TF BERT name LayerNorm parameters gamma/beta.
    if key.endswith(".gamma"):
        return key[: -len("gamma")] + "weight"
    if key.endswith(".beta"):
        return key[: -len("beta")] + "bias"
    return key


# ---------------------------------------------------------------------------------------------------------
# Checkpoint arrays to our parameters


def _match_key(key: str, ours: dict, prefix: str) -> str | None:
    if key in ours:
        return key
    if f"{prefix}.{key}" in ours:                      # a bare backbone checkpoint into a model with a head
        return f"{prefix}.{key}"
    if key.startswith(f"{prefix}.") and key[len(prefix) + 1:] in ours:   # a head checkpoint into a bare backbone
        return key[len(prefix) + 1:]
    return None


def _is_required(key: str, prefix: str, head: str | None) -> bool:
    """A backbone weight (which a checkpoint must have), not the head's. The pooler counts as head: pretraining
    and token-classification checkpoints lack it and transformers initialises it fresh too."""
    if head is not None:
        if not key.startswith(f"{prefix}."):
            return False
        key = key[len(prefix) + 1:]
    return not key.startswith("pooler.")


def match_weights(ours: dict[str, tuple[tuple, nnx.Variable]], weights: dict[str, np.ndarray], prefix: str,
                  source: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """({our key: checkpoint array in the checkpoint's layout}, unused checkpoint keys); wrong shapes raise."""
    assigned, unexpected = {}, []
    for raw_key, value in weights.items():
        key = _match_key(_normalise_key(raw_key), ours, prefix)
        if key is None:
            unexpected.append(raw_key)
            continue
        path, variable = ours[key]
        expected = hf_shape(path, variable.shape)
        if tuple(value.shape) != expected:
            raise ValueError(f"weight {raw_key!r} in {source}: expected shape {expected}, found {tuple(value.shape)}")
        assigned[key] = value
    return assigned, sorted(unexpected)


def _our_layout(path: tuple, value: np.ndarray) -> np.ndarray:
    """The checkpoint array as our parameter holds it: Linear kernels transposed into an aligned buffer."""
    if not is_linear_kernel(path):
        return value
    out = aligned_empty(value.shape[::-1])
    np.copyto(out, value.T)
    return out


# ---------------------------------------------------------------------------------------------------------
# Building models


def _head_config(config: dict, head: str | None, num_labels: int | None) -> tuple[HFConfig, int | None]:
    config, num_labels = labels_for_head(config, head, num_labels)
    config["architectures"] = [head_class_name(config.get("model_type"), head)]
    return HFConfig(config), num_labels


def physical_memory() -> int | None:
    """Bytes of RAM on this machine (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _in_units(nbytes: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if nbytes < 1000:
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{nbytes} B"
        nbytes /= 1000
    return f"{nbytes:,.1f} TB"


def _check_memory(config: HFConfig, flat: list, where: str) -> None:
    """Refuses a model whose float32 parameters alone exceed this machine's memory, naming the config
    values that size its largest parameter."""
    shapes = [(path, tuple(var.shape)) for path, var in flat if isinstance(var, nnx.Param)]
    count = sum(math.prod(shape) for _, shape in shapes)
    memory = physical_memory()
    if memory is None or 4 * count <= memory:
        return
    path, shape = max(shapes, key=lambda item: math.prod(item[1]))
    keys = ", ".join(f"{k}={v}" for k, v in config.items() if is_int(v) and v > 1 and v in shape)
    raise ValueError(f"{where}the model's {count:,} float32 parameters need {_in_units(4 * count)}, more "
                     f"than this machine's {_in_units(memory)} of memory; the largest, "
                     f"{'.'.join(map(str, path))} {shape}, is sized by {keys or 'its config'}")


def _checked(hf_config: dict | str | os.PathLike, head: str | None, num_labels: int | None,
             dtype) -> tuple[HFConfig, int | None, nnx.GraphDef, list]:
    """(the head's config, num_labels, graphdef, flat abstract state), once every config value is checked by
    its family and the parameters are known to fit in memory; nothing is allocated before. An error about
    a config.json names the file."""
    config = read_config(hf_config)
    where = "" if isinstance(hf_config, dict) else f"{config_path(hf_config)}: "
    try:
        family_for(config.get("model_type")).CONFIG_CLASS.from_hf(config)
        config, num_labels = _head_config(config, head, num_labels)
    except ValueError as err:
        if not where:
            raise
        raise ValueError(f"{where}{err}") from err
    graphdef, flat = _abstract_split(config, head, num_labels, dtype)
    _check_memory(config, flat, where)
    return config, num_labels, graphdef, flat


def _build(config: HFConfig, head, num_labels, dtype, seed) -> nnx.Module:
    # KeyStream(seed) hands out nnx.Rngs(seed)'s `params` keys, cheaply under tracing too.
    return family_for(config["model_type"]).build(dict(config), head, num_labels, dtype, KeyStream(seed))


def from_config(hf_config: dict | str | os.PathLike, head: str | None = None, num_labels: int | None = None,
                dtype=jnp.float32, seed: int = 0) -> nnx.Module:
    """Random init as transformers does: normal(initializer_range) weights, zero biases, LayerNorm ones."""
    config, num_labels, _, _ = _checked(hf_config, head, num_labels, dtype)
    return _build(config, head, num_labels, dtype, seed)


@functools.lru_cache(maxsize=16)
def _abstract_split(config: HFConfig, head, num_labels, dtype) -> tuple[nnx.GraphDef, list]:
    """(graphdef, flat abstract state) of the model: traced once per configuration, then reused."""
    graphdef, state = nnx.split(nnx.eval_shape(lambda: _build(config, head, num_labels, dtype, 0)))
    return graphdef, list(nnx.to_flat_state(state))


def _merge(graphdef: nnx.GraphDef, flat: list, values: dict[tuple, object]) -> nnx.Module:
    """A new model from the graphdef and one value per flat-state path (fresh Variables: nothing shared)."""
    return nnx.merge(graphdef, nnx.from_flat_state([(path, var.replace(values[path])) for path, var in flat]))


def abstract_model(hf_config: dict | str | os.PathLike, head: str | None = None, num_labels: int | None = None,
                   dtype=jnp.float32) -> nnx.Module:
    """The model with jax.ShapeDtypeStruct parameters (built under nnx.eval_shape: nothing allocated)."""
    _, _, graphdef, flat = _checked(hf_config, head, num_labels, dtype)
    return _merge(graphdef, flat, {path: var.get_value() for path, var in flat})


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _fresh_params(config: HFConfig, head, num_labels, dtype, paths: tuple[tuple, ...], seed) -> list[jax.Array]:
    """The initial values of `paths` in from_config(config, seed=seed): the whole model is built under jit,
    and XLA drops every other parameter's initialisation (dead code) before anything is allocated."""
    state = dict(nnx.to_flat_state(nnx.state(_build(config, head, num_labels, dtype, seed), nnx.Param)))
    return [state[path].get_value() for path in paths]


def from_pretrained(name_or_dir: str | os.PathLike, head: str | None = None, num_labels: int | None = None,
                    dtype=jnp.float32, seed: int = 0, *, allow_missing_backbone: bool = False) -> nnx.Module:
    """A transformers checkpoint (local folder or hub id) as our model; head weights fresh when absent.

    Parameters the checkpoint lacks get exactly the values `from_config(..., seed=seed)` gives them;
    `model.loading_info` lists them (`missing`) and the checkpoint weights left unused (`unexpected`).
    Missing backbone weights (anything but the head and the pooler) raise `MissingWeightsError` naming the
    file and the first of them, unless `allow_missing_backbone=True`.
    """
    folder = resolve(name_or_dir)
    config, num_labels, graphdef, flat = _checked(folder, head, num_labels, dtype)
    prefix = family_for(config["model_type"]).BACKBONE_PREFIX
    weights, source = read_weights(folder)
    ours = hf_names(flat)
    assigned, unexpected = match_weights(ours, weights, prefix, source)
    missing = sorted(set(ours) - set(assigned))
    required = [key for key in missing if _is_required(key, prefix, head)]
    if required and not allow_missing_backbone:
        shown = ", ".join(required[:3]) + (f" and {len(required) - 3} more" if len(required) > 3 else "")
        raise MissingWeightsError(f"{source} lacks {len(required)} backbone weight(s): {shown} "
                                  "(from_pretrained(..., allow_missing_backbone=True) initialises them fresh)")

    loaded = len(assigned)
    del weights  # each checkpoint array now lives in `assigned` alone, until it is in our layout
    with ThreadPoolExecutor(2) as pool:  # transposing the Linear kernels is a copy: two at a time
        layouts = {ours[key][0]: pool.submit(_our_layout, ours[key][0], assigned.pop(key)) for key in list(assigned)}
        arrays = {path: future.result() for path, future in layouts.items()}
    # One batched transfer; on CPU the aligned buffers become the parameters as they are (no second copy).
    values = dict(zip(arrays, jax.device_put(list(arrays.values()), may_alias=True)))
    if missing:
        paths = tuple(ours[key][0] for key in missing)
        values.update(zip(paths, _fresh_params(config, head, num_labels, dtype, paths, seed)))
    model = _merge(graphdef, flat, values)
    model.loading_info = LoadingInfo(source=source, loaded=loaded, missing=tuple(missing),
                                     unexpected=tuple(unexpected))
    if missing:
        logger.warning("%d weights not in %s, freshly initialised: %s", len(missing), source, ", ".join(missing))
    if unexpected:
        logger.warning("%d weights in %s unused: %s", len(unexpected), source, ", ".join(unexpected))
    return model


def transfer_encoder(src: nnx.Module, dst: nnx.Module) -> list[str]:
    """Copies the backbone of src into dst where name and shape match; returns dst's names copied.

    The head of dst stays as it is: this is how a model trained on an intermediate task starts the target
    task with a fresh head.
    """
    def backbone(model):
        prefix = f"{family_for(model.config.get('model_type')).BACKBONE_PREFIX}."
        named = hf_named_params(model)
        if not any(k.startswith(prefix) for k in named):  # a bare backbone: every parameter is the backbone
            return {k: (k, v) for k, (_, v) in named.items()}
        return {k[len(prefix):]: (k, v) for k, (_, v) in named.items() if k.startswith(prefix)}

    src_params, copied = backbone(src), []
    for name, (dst_key, dst_var) in backbone(dst).items():
        if name in src_params and src_params[name][1].shape == dst_var.shape:
            dst_var.set_value(src_params[name][1].get_value())
            copied.append(dst_key)
    return sorted(copied)
