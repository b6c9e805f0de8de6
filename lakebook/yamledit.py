"""Saving a pipeline file without losing what people wrote in it.

The sidebar and the API save a whole pipeline at a time. Dumping the new document would drop the
comments, key order and block-style SQL of a hand-written `pipeline.yaml`. `render_yaml` applies
the new document to the file's existing round-trip tree (ruamel.yaml) instead:

- mappings keep their keys' order and comments; keys gone from the new document are removed and
  new keys are added at the end;
- lists of named items (jobs, rules, inputs by `dataset`) are matched by name, so a job keeps its
  comments when another job is added, removed or reordered; other lists are replaced when changed;
- unchanged values keep their style (quotes, block scalars); new multi-line strings (SQL) are
  written as literal blocks.

The caller checks that the result parses back to the same spec before it replaces the file.
"""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import LiteralScalarString

# keys that identify the items of a list, in order of preference
ITEM_KEYS = ("name", "dataset")


def render_yaml(document: dict[str, Any], previous: str | None = None) -> str:
    """`document` as YAML text, laid out like `previous` (the file's current text) where it can."""
    yaml = _round_trip()
    tree: Any = None
    if previous:
        try:
            tree = yaml.load(previous)
        except YAMLError:
            tree = None  # a broken file is replaced by a fresh dump
    merged = _merge(tree if isinstance(tree, CommentedMap) else None, document)
    out = io.StringIO()
    yaml.dump(merged, out)
    return out.getvalue()


def _round_trip() -> YAML:
    yaml = YAML()  # round-trip mode: comments, order and styles are kept
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 100
    yaml.preserve_quotes = True
    return yaml


def _merge(old: Any, new: Any) -> Any:
    """`new`, reusing the nodes of `old` (and so their comments and styles) where they match."""
    if isinstance(new, dict):
        if not isinstance(old, CommentedMap):
            return _fresh(new)
        for key in [key for key in old if key not in new]:
            del old[key]
        for key, value in new.items():
            old[key] = _merge(old[key], value) if key in old else _fresh(value)
        return old
    if isinstance(new, list):
        if not isinstance(old, CommentedSeq):
            return _fresh(new)
        key = _item_key(new)
        if key is not None:
            previous = {item.get(key): item for item in old if isinstance(item, CommentedMap)}
            items = [_merge(previous.get(item.get(key)), item) for item in new]
            del old[:]
            old.extend(items)
            return old
        return old if _plain(old) == new else _fresh(new)
    if old is not None and not isinstance(old, (CommentedMap, CommentedSeq)) and old == new:
        return old  # unchanged: keep its quotes or block style
    return _fresh(new)


def _fresh(value: Any) -> Any:
    """A new node for `value`: multi-line strings as literal blocks (readable SQL)."""
    if isinstance(value, dict):
        node = CommentedMap()
        for key, item in value.items():
            node[key] = _fresh(item)
        return node
    if isinstance(value, list):
        return CommentedSeq(_fresh(item) for item in value)
    if isinstance(value, str) and "\n" in value:
        return LiteralScalarString(value)
    return value


def _item_key(items: list[Any]) -> str | None:
    """The key naming every item of a list of mappings, if there is one."""
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    for key in ITEM_KEYS:
        names = [item.get(key) for item in items]
        if all(isinstance(name, str) for name in names) and len(set(names)) == len(names):
            return key
    return None


def _plain(node: Any) -> Any:
    """A round-trip node as plain Python data, for comparison."""
    if isinstance(node, dict):
        return {key: _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if isinstance(node, str):
        return str(node)
    return node
