"""The errors flax_models raises on purpose, each a one-line message naming the file, key or value at fault.

They subclass ValueError / OSError, so a caller that catches those (repro, the CLI) turns them into one line.
"""
from __future__ import annotations


class CheckpointError(ValueError):
    """A weights file that is malformed or hostile, refused before anything is allocated for what it claims:
    the message names the file and the entry at fault (a tensor, a zip member, a header field)."""


class RemoteCodeError(ValueError):
    """A model or tokenizer folder that names code of its own (an auto_map, a class transformers lacks, a .py
    file): refused before transformers reads it, naming the file and the key (flax_models/remote_code.py)."""


class MissingWeightsError(ValueError):
    """A checkpoint lacks backbone weights; from_pretrained(..., allow_missing_backbone=True) accepts that."""


class HubUnreachableError(OSError):
    """A hub id that is not in the local cache while the hub cannot be reached (or HF_HUB_OFFLINE=1)."""
