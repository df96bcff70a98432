"""Dose-transition pathways: every path the next few cohorts can take, and where each leads.

Pure (stdlib only). Follows R ``escalation::get_dose_paths`` (``R/phase1_dose_paths.R``):

* the root is the current outcomes and the dose the design recommends for them (dose 1 when nobody has
  been treated);
* each cohort of size k has k + 1 outcomes, one per number of DLTs, because R enumerates
  ``gtools::combinations(n = 2, r = k, v = c('T', 'N'), repeats.allowed = TRUE)``: combinations, not
  orderings, so ``NNT`` stands for every order of one DLT in three. As R prints them, the letters are
  sorted (N before T) and the outcomes are listed from no DLT to all DLTs: ``NNN``, ``NNT``, ``NTT``, ``TTT``;
* a path is extended while the design says continue (R: ``if(cont)``); a node where the design stops
  has no children;
* each node's recommendation is the design's answer on the whole history to that node
  (``safety.rules``, strict 3+3 as R's selectors run it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from safety import rules
from safety.dosefinding.designs import Design, check_whole_number

__all__ = ["MAX_PATH_NODES", "PathNode", "cohort_outcomes", "dose_paths", "flatten_paths", "render_paths"]

#: Refuse trees larger than this many nodes (R only warns past 100 model evaluations; we must stay fast).
MAX_PATH_NODES = 20_000


def cohort_outcomes(size: int) -> list[str]:
    """The k + 1 outcomes of a cohort of ``size``, as R's ``gtools::combinations`` lists them.

    >>> cohort_outcomes(3)
    ['NNN', 'NNT', 'NTT', 'TTT']
    """
    check_whole_number(size, "cohort size")
    return ["N" * (size - dlts) + "T" * dlts for dlts in range(size + 1)]


@dataclass(frozen=True, slots=True)
class PathNode:
    """One node of the tree.

    ``outcomes`` is the cohort's letters (``""`` at the root), ``dose`` the dose that cohort received
    (``None`` at the root), ``path`` the whole history in the notation, ``recommended_dose`` and
    ``continue_`` the design's answer there (``recommended_dose`` is ``None`` when no dose is acceptable).
    """

    node_id: int
    parent_id: int | None
    depth: int
    outcomes: str
    dose: int | None
    path: str
    recommended_dose: int | None
    continue_: bool
    reason: str
    children: tuple[PathNode, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        """Nested dicts: ``outcomes``, ``dose``, ``path``, ``recommended_dose``, ``continue``, ``reason``,
        ``children``."""
        return {
            "outcomes": self.outcomes,
            "dose": self.dose,
            "path": self.path,
            "recommended_dose": self.recommended_dose,
            "continue": self.continue_,
            "reason": self.reason,
            "children": [child.to_dict() for child in self.children],
        }

    def walk(self) -> Iterator[PathNode]:
        """This node and its descendants, depth first, children in outcome order."""
        yield self
        for child in self.children:
            yield from child.walk()


def _count_nodes(cohort_sizes: Sequence[int]) -> int:
    total, level = 1, 1
    for size in cohort_sizes:
        level *= size + 1
        total += level
    return total


def dose_paths(
    design: Design,
    outcomes: str = "",
    *,
    cohort_sizes: Sequence[int] | None = None,
    cohorts: int = 1,
    cohort_size: int = 3,
) -> PathNode:
    """The tree of every outcome of the next cohorts and the design's recommendation after each.

    ``cohort_sizes`` (R's argument) lists the size of each future cohort; without it, ``cohorts``
    cohorts of ``cohort_size``. Raises ``OutcomeNotationError`` for bad notation,
    ``InconsistentThreePlusThreeError`` for a history the 3+3 cannot produce, and ``ValueError`` for bad
    sizes or a tree above :data:`MAX_PATH_NODES` nodes.
    """
    if cohort_sizes is None:
        check_whole_number(cohorts, "cohorts")
        check_whole_number(cohort_size, "cohort_size")
        cohort_sizes = [cohort_size] * cohorts
    else:
        cohort_sizes = list(cohort_sizes)
        if not cohort_sizes:
            raise ValueError("cohort_sizes must list at least one cohort")
        for size in cohort_sizes:
            check_whole_number(size, "each cohort size")
    if _count_nodes(cohort_sizes) > MAX_PATH_NODES:
        raise ValueError(
            f"{_count_nodes(cohort_sizes)} paths requested; at most {MAX_PATH_NODES} nodes: ask for fewer or "
            "smaller cohorts"
        )
    base = rules.parse_outcomes(outcomes, num_doses=design.num_doses)
    counter = iter(range(1, 10**9))

    def build(
        history: list[rules.CohortOutcome], depth: int, parent_id: int | None, cohort: str, dose: int | None
    ) -> PathNode:
        advice = design.recommend(history)
        node_id = next(counter)
        children: list[PathNode] = []
        if advice.continue_ and advice.recommended_dose is not None and depth < len(cohort_sizes):
            next_dose = advice.recommended_dose
            for letters in cohort_outcomes(cohort_sizes[depth]):
                step = [*history, rules.CohortOutcome(dose=next_dose, outcomes=letters)]
                children.append(build(step, depth + 1, node_id, letters, next_dose))
        return PathNode(
            node_id=node_id,
            parent_id=parent_id,
            depth=depth,
            outcomes=cohort,
            dose=dose,
            path=rules.format_outcomes(history),
            recommended_dose=advice.recommended_dose,
            continue_=advice.continue_,
            reason=advice.reason,
            children=tuple(children),
        )

    return build(base, 0, None, "", None)


def flatten_paths(root: PathNode) -> list[dict[str, object]]:
    """The tree as rows (R's ``as_tibble(paths)``): ``node``, ``parent``, ``depth``, ``outcomes``, ``dose``,
    ``path``, ``recommended_dose``, ``continue``; depth first, in outcome order."""
    return [
        {
            "node": node.node_id,
            "parent": node.parent_id,
            "depth": node.depth,
            "outcomes": node.outcomes,
            "dose": node.dose,
            "path": node.path,
            "recommended_dose": node.recommended_dose,
            "continue": node.continue_,
        }
        for node in root.walk()
    ]


def _answer(node: PathNode) -> str:
    if node.continue_:
        return str(node.recommended_dose)
    if node.recommended_dose is None:
        return "stop (no dose)"
    return f"stop ({node.recommended_dose})"


def render_paths(root: PathNode) -> str:
    """Plain text in the layout of R's ``print(paths)``: ``Give dose 1:`` then one indented line per node,
    ``NNN -> 2``; a node where the design stops reads ``stop (no dose)`` or ``stop (2)``."""
    start = root.path or "no patients yet"
    if not root.continue_:
        return f"After {start}: {_answer(root)}; nothing to enumerate.\n"
    lines = [f"After {start}:", f"Give dose {root.recommended_dose}:"]
    for node in root.walk():
        if node is root:
            continue
        lines.append(f"{'  ' * node.depth}{node.outcomes} -> {_answer(node)}")
    return "\n".join(lines) + "\n"
