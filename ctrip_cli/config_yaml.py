"""A strict YAML loader for chains.yaml: bounded nesting and alias expansion, no
duplicate keys.

PyYAML composes nodes recursively (thousands of `[` exhaust Python's stack) and lets
aliases share nodes, so seven lines of anchors can stand for a million values that
every later step walks. Duplicate keys would silently keep the last value.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_DEPTH = 64
MAX_NODES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(yaml.SafeLoader):
    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise ConstructorError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # unhashable: the base class refuses it below
                continue
            if duplicate:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"duplicate key {str(key)[:40]!r}",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def load(text: str) -> Any:
    """The document in `text`, as `yaml.safe_load` would build it.

    Raises:
        yaml.YAMLError: not YAML, nested deeper than MAX_DEPTH, aliases that expand
            past MAX_NODES values or refer to themselves, or a duplicate key.
    """
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, {}, set())
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_size(node: Node, sizes: dict[int, int], open_: set[int]) -> int:
    """How many nodes `node` stands for with every alias expanded (each shared node
    is counted once per use but walked once)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        raise ConstructorError(None, None, "an alias refers to itself", node.start_mark)
    open_.add(key)
    size = 1
    if isinstance(node, SequenceNode):
        size += sum(_expanded_size(child, sizes, open_) for child in node.value)
    elif isinstance(node, MappingNode):
        size += sum(
            _expanded_size(k, sizes, open_) + _expanded_size(v, sizes, open_)
            for k, v in node.value
        )
    open_.discard(key)
    if size > MAX_NODES:
        raise ConstructorError(
            None,
            None,
            f"aliases expand to more than {MAX_NODES:,} values",
            node.start_mark,
        )
    sizes[key] = size
    return size
