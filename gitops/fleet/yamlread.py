"""Reads YAML text into plain Python values while keeping where every value came from.

Part of the model layer (reads local files only). Uses PyYAML's C parser to compose node
trees (fast, with marks), then builds the values itself so that it can refuse what a plain
``yaml.safe_load`` would accept silently: duplicate keys, non-string keys, alias bombs and
recursive aliases, and nesting too deep to be a fleet document.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from gitops.fleet.problems import Problem


class _Loader(yaml.cyaml.CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):  # type: ignore[misc,name-defined]
    """The C parser with a memo of implicit tag resolution, which is otherwise done in Python.

    A fleet repository repeats the same keys and values thousands of times, and resolving a
    plain scalar's tag runs a regular expression per call.
    """

    _memo: dict[tuple[str, Any], str] = {}

    def __init__(self, stream: str) -> None:
        yaml.cyaml.CParser.__init__(self, stream)  # type: ignore[attr-defined]
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is not yaml.ScalarNode:
            return str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]
        key = (value, implicit)
        try:
            return self._memo[key]
        except KeyError:
            tag = str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]
            if len(self._memo) < 100_000:
                self._memo[key] = tag
            return tag

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        """No path resolvers are registered, so there is nothing to track."""

    def ascend_resolver(self) -> None:
        """No path resolvers are registered, so there is nothing to track."""


Path = tuple[str | int, ...]
MAX_DEPTH = 64
# Anchors and aliases are fine; expanding far more nodes than were written is an alias bomb.
ALIAS_EXPANSION_FACTOR = 10
ALIAS_EXPANSION_FLOOR = 10_000

_MERGE = "tag:yaml.org,2002:merge"
_NULL = "tag:yaml.org,2002:null"
_STR = "tag:yaml.org,2002:str"
_SCALARS = {
    tag: yaml.constructor.SafeConstructor.yaml_constructors[tag]
    for tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:bool", _NULL, "tag:yaml.org,2002:float")
}
_constructor = yaml.constructor.SafeConstructor()


@dataclass
class Document:
    """One YAML document: its value and the (line, col) of every value and key by path."""

    file: str
    index: int
    value: Any
    start: tuple[int, int]
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """The closest known position of ``path`` (its key when ``key``), walking up when unknown."""
        table = self.keys if key else self.values
        while path:
            if path in table:
                return table[path]
            if key and path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), self.start)


class _Refused(Exception):
    def __init__(self, mark: yaml.Mark | None, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message
        self.hint = hint


def _pos(mark: yaml.Mark | None) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _expanded_size(node: yaml.Node, sizes: dict[int, int], active: set[int]) -> int:
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in active:
        raise _Refused(
            node.start_mark, "recursive alias: a node contains itself", "remove the alias cycle"
        )
    if len(active) > MAX_DEPTH:
        raise _Refused(node.start_mark, f"nested more than {MAX_DEPTH} levels deep")
    active.add(key)
    total = 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            total += _expanded_size(k, sizes, active) + _expanded_size(v, sizes, active)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            total += _expanded_size(item, sizes, active)
    active.discard(key)
    sizes[key] = total
    return total


class _Builder:
    def __init__(self, doc: Document, problems: list[Problem]) -> None:
        self.doc = doc
        self.problems = problems

    def problem(self, mark: yaml.Mark | None, message: str, hint: str = "") -> None:
        line, col = _pos(mark)
        self.problems.append(Problem(self.doc.file, line, col, message, hint))

    def build(self, node: yaml.Node, path: Path) -> Any:
        mark = node.start_mark
        self.doc.values.setdefault(path, (mark.line + 1, mark.column + 1))
        if len(path) > MAX_DEPTH:
            raise _Refused(mark, f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if node.tag == _STR:
            return node.value
        construct = _SCALARS.get(node.tag)
        try:
            if construct is None:
                return _constructor.construct_object(node, deep=True)
            return construct(_constructor, node)
        except (yaml.constructor.ConstructorError, ValueError) as err:
            self.problem(mark, f"cannot read value: {getattr(err, 'problem', None) or err}")
            return None

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        seen: dict[str, yaml.Mark] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for source in sources:
                    if not isinstance(source, yaml.MappingNode):
                        self.problem(
                            source.start_mark,
                            "a merge key (<<) needs a mapping or a list of mappings",
                        )
                        continue
                    for k, v in self._mapping(source, path).items():
                        merged.setdefault(k, v)
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                shown = getattr(key_node, "value", "?")
                self.problem(
                    key_node.start_mark,
                    f"key {shown!r} is not a string",
                    'quote the key, e.g. "80": value',
                )
                continue
            key = key_node.value
            if key in seen:
                first = seen[key]
                self.problem(
                    key_node.start_mark,
                    f"duplicate key {key!r} (first at line {first.line + 1}, column {first.column + 1})",
                    "keep one of them",
                )
                continue
            seen[key] = key_node.start_mark
            self.doc.keys[(*path, key)] = _pos(key_node.start_mark)
            out[key] = self.build(value_node, (*path, key))
        for k, v in merged.items():
            out.setdefault(k, v)
        return out


def read_documents(file: str, text: str, problems: list[Problem]) -> Iterator[Document]:
    """Yield each document of ``text``; append every problem found to ``problems``."""
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = _pos(mark)
        what = err.problem or "invalid YAML"
        context = f" {err.context}" if err.context else ""
        problems.append(
            Problem(file, line, col, f"YAML syntax error: {what}{context}", "fix the YAML syntax")
        )
        return
    except yaml.YAMLError as err:
        problems.append(Problem(file, 1, 1, f"YAML error: {err}", "fix the YAML syntax"))
        return
    except RecursionError:
        problems.append(Problem(file, 1, 1, "YAML nested too deeply to read"))
        return
    for index, node in enumerate(nodes):
        if node is None or (
            isinstance(node, yaml.ScalarNode) and node.tag == _NULL and not node.value
        ):
            continue  # an empty document, e.g. after a trailing "---"
        doc = Document(file, index, None, _pos(node.start_mark))
        try:
            # Without an anchor there can be no alias, and so no bomb and no cycle to look for.
            if "&" in text:
                _refuse_alias_bombs(node)
            doc.value = _Builder(doc, problems).build(node, ())
        except _Refused as refused:
            line, col = _pos(refused.mark)
            problems.append(Problem(file, line, col, refused.message, refused.hint))
            continue
        yield doc


def _refuse_alias_bombs(node: yaml.Node) -> None:
    written = _count_written(node)
    expanded = _expanded_size(node, {}, set())
    if expanded > max(ALIAS_EXPANSION_FLOOR, ALIAS_EXPANSION_FACTOR * written):
        raise _Refused(
            node.start_mark,
            f"refused: aliases expand {written} written nodes into {expanded}",
            "this looks like an alias bomb; write the values out",
        )


def _count_written(root: yaml.Node) -> int:
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                stack.extend((k, v))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return len(seen)
