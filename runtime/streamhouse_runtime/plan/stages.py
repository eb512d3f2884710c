"""The stage graph of a plan: stages that end at repartition topics, their input ports and
the edges between them, as plain frozen data.

A stage runs on one partition number at a time (a task). Each input *port* reads one topic: a
source topic, or an internal repartition topic written by an upstream stage. A join stage has
one port per joined input; its ports must be co-partitioned (same partition count, same key
bytes for the same key, same partitioner), which is what the repartitions before it ensure.

A repartition that only stateless operators follow (PARTITION BY before the sink) needs no
topic: it re-keys the sink's records and folds into the stage that writes the sink.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streamhouse_runtime.plan.nodes import (
    Aggregate,
    Distinct,
    Filter,
    Join,
    MatchRecognize,
    OverAggregate,
    PlanNode,
    Project,
    Repartition,
    Sink,
    Source,
    TableChanges,
    WindowAggregate,
)
from streamhouse_runtime.sql import bound
from streamhouse_runtime.sql.catalog import SourceKind

STATEFUL = (
    Aggregate,
    WindowAggregate,
    Distinct,
    Join,
    MatchRecognize,
    OverAggregate,
    TableChanges,
)
STATELESS = (Filter, Project)
QUERY_TOPIC = "<query>"  # stands for the query's state identity in internal topic names


@dataclass(frozen=True)
class Port:
    """One input of a stage: a topic and how its records become rows."""

    index: int
    reads: Source | Repartition  # the source, or the repartition whose topic it reads
    kind: SourceKind  # a TABLE port is materialized; its time never holds back a watermark
    operators: tuple[PlanNode, ...] = ()  # stateless operators applied to this port alone

    @property
    def topic(self) -> str:
        if isinstance(self.reads, Source):
            return self.reads.topic
        return f"{QUERY_TOPIC}-{self.reads.topic_suffix}"

    @property
    def internal(self) -> bool:
        return isinstance(self.reads, Repartition)

    @property
    def event_time(self) -> str:
        if isinstance(self.reads, Source):
            return self.reads.timestamp_field or "ROWTIME"
        return "ROWTIME (carried by the repartition record)"

    @property
    def key(self) -> tuple[str, ...]:
        return self.reads.schema.key

    def render(self) -> str:
        kind = self.kind.value.lower()
        what = (
            f"{kind} {self.reads.name}" + (f" AS {self.reads.alias}" if self.reads.alias else "")
            if isinstance(self.reads, Source)
            else f"{kind} from stage repartition"
        )
        key = ", ".join(self.key) or "-"
        line = (
            f"port {self.index}: {what} topic={self.topic} key=({key}) event_time={self.event_time}"
        )
        if self.operators:
            line += " then " + " -> ".join(node.label() for node in self.operators)
        return line


@dataclass(frozen=True)
class Stage:
    """Ports in, operators in execution order (the ports' subtrees first), one output."""

    index: int
    ports: tuple[Port, ...]
    operators: tuple[PlanNode, ...]
    output: Repartition | Sink
    rekey: Repartition | None = None  # PARTITION BY folded into the sink's records

    @property
    def copartitioned(self) -> bool:
        """Every port of a multi-port stage must be co-partitioned with the others."""
        return len(self.ports) > 1

    def output_text(self) -> str:
        if isinstance(self.output, Repartition):
            keys = ", ".join(expr.render() for _, expr in self.output.keys)
            carried = " carries=retractions" if self.output.retractions else ""
            topic = f"{QUERY_TOPIC}-{self.output.topic_suffix}"
            return f"repartition by=({keys}) topic={topic}{carried}"
        return f"{self.output.kind.value.lower()} {self.output.name} topic={self.output.topic}"

    def render(self) -> list[str]:
        lines = [f"stage {self.index}:"]
        lines += [f"  {port.render()}" for port in self.ports]
        if self.copartitioned:
            lines.append(f"  co-partitioned: ports {', '.join(str(p.index) for p in self.ports)}")
        if self.operators:
            lines.append("  operators: " + " -> ".join(node.label() for node in self.operators))
        for node in self.operators:
            for store in node.state():
                lines.append(f"  state: {store.name} ({store.description})")
        if self.rekey is not None:
            keys = ", ".join(expr.render() for _, expr in self.rekey.keys)
            lines.append(f"  re-key: ({keys})")
        lines.append(f"  output: {self.output_text()}")
        return lines


@dataclass(frozen=True)
class Edge:
    """Stage `source` writes the topic that port `port` of stage `target` reads."""

    source: int
    target: int
    port: int
    topic: str


@dataclass(frozen=True)
class StageGraph:
    stages: tuple[Stage, ...]  # in data-flow order: a stage's inputs come before it
    edges: tuple[Edge, ...]

    def to_json(self) -> dict[str, Any]:
        """The graph as plain JSON (for `explain --json`)."""
        return {
            "stages": [
                {
                    "index": stage.index,
                    "ports": [
                        {
                            "index": port.index,
                            "topic": port.topic,
                            "kind": port.kind.value,
                            "internal": port.internal,
                            "key": list(port.key),
                            "event_time": port.event_time,
                            "operators": [node.label() for node in port.operators],
                        }
                        for port in stage.ports
                    ],
                    "operators": [node.label() for node in stage.operators],
                    "state": [s.name for node in stage.operators for s in node.state()],
                    "output": stage.output_text(),
                }
                for stage in self.stages
            ],
            "edges": [
                {"from": e.source, "to": e.target, "port": e.port, "topic": e.topic}
                for e in self.edges
            ],
        }

    def render(self) -> str:
        lines: list[str] = []
        for stage in self.stages:
            lines += stage.render()
        for edge in self.edges:
            lines.append(
                f"edge: stage {edge.source} -> stage {edge.target} port {edge.port} "
                f"via {edge.topic}"
            )
        return "\n".join(lines) + "\n"


@dataclass
class _Fragment:
    """A stage under construction: its ports, and its operators in execution order."""

    ports: list[tuple[Source | Repartition, SourceKind, list[PlanNode]]]
    operators: list[PlanNode]
    upstream: list[tuple[int, int]]  # (port position, stage index) for repartition ports


class _Builder:
    def __init__(self) -> None:
        self.stages: list[Stage] = []
        self.edges: list[Edge] = []

    def fragment(self, node: PlanNode, stateful_after: bool) -> _Fragment:
        """The fragment of the stage that `node`'s output belongs to. `stateful_after`: a
        stateful operator follows `node` downstream in the same stage or a later one."""
        if isinstance(node, Source):
            return _Fragment([(node, node.kind, [])], [], [])
        if isinstance(node, Repartition):
            if stateful_after:
                upstream = self.close(self.fragment(node.input, True), node)
                kind = _kind_of(node.input)
                return _Fragment([(node, kind, [])], [], [(0, upstream)])
            inner = self.fragment(node.input, False)
            inner.operators.append(node)  # folds into the output as a re-key
            return inner
        if isinstance(node, Join):
            left = self.fragment(node.left, True)
            right = self.fragment(node.right, True)
            offset = len(left.ports)
            merged = _Fragment(
                left.ports + right.ports,
                left.operators + right.operators + [node],
                left.upstream + [(position + offset, stage) for position, stage in right.upstream],
            )
            return merged
        children = node.children()
        if len(children) != 1:
            raise ValueError(f"{node.label()} has {len(children)} inputs")
        inner = self.fragment(children[0], stateful_after or isinstance(node, STATEFUL))
        if isinstance(node, STATELESS) and len(inner.ports) == 1 and not inner.operators:
            inner.ports[0][2].append(node)  # applied to the port's rows before anything else
        else:
            inner.operators.append(node)
        return inner

    def close(self, fragment: _Fragment, output: Repartition | Sink) -> int:
        """Turn a fragment into the next stage (its index)."""
        index = len(self.stages)
        ports = tuple(
            Port(position, reads, kind, tuple(operators))
            for position, (reads, kind, operators) in enumerate(fragment.ports)
        )
        operators = [n for n in fragment.operators if not isinstance(n, Repartition)]
        folded = [n for n in fragment.operators if isinstance(n, Repartition)]
        rekey = folded[-1] if folded else None
        if rekey is not None:
            position = next(i for i, n in enumerate(fragment.operators) if n is rekey)
            rekey = _keys_over_output(rekey, fragment.operators[position + 1 :])
        self.stages.append(Stage(index, ports, tuple(operators), output, rekey))
        for position, upstream in fragment.upstream:
            self.edges.append(Edge(upstream, index, position, ports[position].topic))
        return index


def _keys_over_output(rekey: Repartition, after: list[PlanNode]) -> Repartition:
    """A folded PARTITION BY keys the stage's output rows, which a later projection has
    renamed or dropped columns of (`SELECT UCASE(r) AS region ... PARTITION BY UCASE(r)`):
    a key expression the projection computes is read from the projected column instead."""
    keys = rekey.keys
    for node in after:
        if isinstance(node, Project):
            keys = tuple((name, _projected(expr, node.expressions)) for name, expr in keys)
    return (
        rekey
        if keys == rekey.keys
        else Repartition(rekey.schema, rekey.input, keys, rekey.topic_suffix)
    )


def _projected(expr: bound.Expr, projection: tuple[tuple[str, bound.Expr], ...]) -> bound.Expr:
    for name, projected in projection:
        if projected == expr:
            return bound.ColumnRef(expr.type, name)
    return expr


def _kind_of(node: PlanNode) -> SourceKind:
    """A repartitioned input keeps the kind of what it repartitions: an aggregate or a
    table-table join is a TABLE, everything else a STREAM."""
    while True:
        if isinstance(node, Source):
            return node.kind
        if isinstance(node, Aggregate):
            return SourceKind.TABLE
        if isinstance(node, TableChanges):
            return SourceKind.STREAM  # a table's retractions and additions, in order
        if isinstance(node, Join):
            tables = node.left_kind is SourceKind.TABLE and node.right_kind is SourceKind.TABLE
            return SourceKind.TABLE if tables else SourceKind.STREAM
        children = node.children()
        if len(children) != 1:
            return SourceKind.STREAM
        node = children[0]


def stage_graph(plan: Sink) -> StageGraph:
    """The stages, ports and edges of a planned query, in data-flow order."""
    builder = _Builder()
    builder.close(builder.fragment(plan.input, False), plan)
    return StageGraph(tuple(builder.stages), tuple(builder.edges))


def copartition_conflicts(graph: StageGraph, partitions: Mapping[str, int]) -> list[str]:
    """What makes a join stage's ports impossible to co-partition: two source topics it reads
    directly with different partition counts (`partitions`: the counts known, by topic). A
    repartitioned port is not a conflict: its internal topic is created with the count of
    the ports it joins."""
    problems = []
    for stage in graph.stages:
        if not stage.copartitioned:
            continue
        known = [
            (port.topic, partitions[port.topic])
            for port in stage.ports
            if not port.internal and port.topic in partitions
        ]
        if len({count for _, count in known}) > 1:
            listed = " and ".join(f"{topic} ({count} partitions)" for topic, count in known)
            most = max(count for _, count in known)
            problems.append(
                f"a join reads {listed} directly, but its inputs must be co-partitioned (the "
                "same partition count); give the topics the same number of partitions, or "
                f"re-key one side into a topic with {most} partitions first (CREATE STREAM ... "
                f"WITH (partitions={most}) AS SELECT * FROM ... PARTITION BY <join key>)"
            )
    return problems
