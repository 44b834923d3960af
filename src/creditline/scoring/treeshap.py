"""Exact path-dependent TreeSHAP over dumped LightGBM trees, and lookup tables for serving.

What is computed: the SHAP values that LightGBM's ``predict(pred_contrib=True)`` returns
(Lundberg et al. 2018, Algorithm 2, "path-dependent"): the reference is the training
distribution as the trees saw it, each node weighting its children by their training
row counts; ``expected_value`` is the count-weighted mean leaf value summed over trees,
and for every row ``expected_value + Σ contributions`` equals the raw margin.

How it is made fast: a tree's output and its contributions depend on a row only through
which interval between that tree's thresholds each of its features falls in (plus
"missing"). Trees are grouped; for each group we enumerate its cells (the product of
those intervals), run Algorithm 2 once per cell (vectorised over cells with numpy), and
store the table. Serving then finds each row's cell with `searchsorted` and gathers its
contributions: no per-row tree walk, no LightGBM.

Deeper trees: a tree whose own grid would exceed the cell budget is cut into groups of
leaves (whole subtrees, split from the root down until each fits). Contributions and
the margin are linear in the leaf values, so a group's table is the tree with every
other leaf set to zero, solved on the grid of the splits on its leaves' paths only (a
leaf's contribution depends on a row only through those splits); the groups' tables
add up to the tree's exact contributions (Fast TreeSHAP, Yang 2021, makes the same cut
per leaf).

Size budget: `table_budget` picks the largest cell limit (32,768, then ÷4 down to 512)
whose tables hold at most a given count of numbers, counted from the trees' thresholds
before anything is solved (`planned_entries`); the pipeline passes
`GbmParams.table_entries`. The tables stay exact at any limit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class FlatTree:
    """One tree as arrays; node k is a leaf when `left[k] < 0`."""

    feature: NDArray[np.int64]
    threshold: FloatArray
    default_left: NDArray[np.bool_]
    missing_nan: NDArray[np.bool_]  # missing_type "NaN": NaN follows default_left; else NaN is 0
    left: NDArray[np.int64]
    right: NDArray[np.int64]
    value: FloatArray
    cover: FloatArray

    @property
    def features(self) -> tuple[int, ...]:
        return tuple(
            sorted({int(f) for f, lft in zip(self.feature, self.left, strict=True) if lft >= 0})
        )

    def thresholds_of(self, feature: int) -> FloatArray:
        mask = (self.feature == feature) & (self.left >= 0)
        return np.unique(self.threshold[mask])

    def expected_value(self) -> float:
        leaves = self.left < 0
        return float(np.sum(self.value[leaves] * self.cover[leaves]) / self.cover[0])

    def goes_left(self, node: int, x: FloatArray) -> NDArray[np.bool_]:
        nan = np.isnan(x)
        if self.missing_nan[node]:
            go = np.where(nan, self.default_left[node], x <= self.threshold[node])
        else:
            go = np.where(nan, self.threshold[node] >= 0.0, x <= self.threshold[node])
        return np.asarray(go, dtype=np.bool_)

    def predict(self, X: FloatArray) -> FloatArray:
        node = np.zeros(len(X), dtype=np.int64)
        out = np.empty(len(X))
        active = np.arange(len(X))
        while len(active):
            k = node[active]
            leaf = self.left[k] < 0
            out[active[leaf]] = self.value[k[leaf]]
            active, k = active[~leaf], k[~leaf]
            if not len(active):
                break
            x = X[active, self.feature[k]]
            thr = self.threshold[k]
            nan = np.isnan(x)
            go = np.where(
                nan, np.where(self.missing_nan[k], self.default_left[k], thr >= 0.0), x <= thr
            )
            node[active] = np.where(go, self.left[k], self.right[k])
        return out


def flatten_lightgbm(dump: dict[str, Any]) -> list[FlatTree]:
    """The trees of `Booster.dump_model()`; refuses what this module does not implement."""
    trees = []
    for info in dump["tree_info"]:
        rows: list[dict[str, Any]] = []

        def walk(node: dict[str, Any], rows: list[dict[str, Any]] = rows) -> int:
            k = len(rows)
            rows.append({})
            if "leaf_value" in node or "split_index" not in node:
                rows[k] = {
                    "f": -1,
                    "t": 0.0,
                    "dl": False,
                    "mn": True,
                    "l": -1,
                    "r": -1,
                    "v": float(node.get("leaf_value", 0.0)),
                    "c": float(node.get("leaf_count", 0)),
                }
                return k
            if node.get("decision_type", "<=") != "<=":
                raise ValueError("categorical splits are not supported (categories enter as WoE)")
            missing = node.get("missing_type", "None")
            if missing == "Zero":
                raise ValueError("zero_as_missing trees are not supported")
            rows[k] = {
                "f": int(node["split_feature"]),
                "t": float(node["threshold"]),
                "dl": bool(node["default_left"]),
                "mn": missing == "NaN",
                "v": 0.0,
                "c": float(node["internal_count"]),
            }
            rows[k]["l"] = walk(node["left_child"], rows)
            rows[k]["r"] = walk(node["right_child"], rows)
            return k

        walk(info["tree_structure"])
        trees.append(
            FlatTree(
                feature=np.array([r["f"] for r in rows], dtype=np.int64),
                threshold=np.array([r["t"] for r in rows]),
                default_left=np.array([r["dl"] for r in rows], dtype=bool),
                missing_nan=np.array([r["mn"] for r in rows], dtype=bool),
                left=np.array([r["l"] for r in rows], dtype=np.int64),
                right=np.array([r["r"] for r in rows], dtype=np.int64),
                value=np.array([r["v"] for r in rows]),
                cover=np.array([r["c"] for r in rows]),
            )
        )
    return trees


class _Path:
    """Algorithm 2's path: feature, zero fraction (scalar), one fraction, weight (vectors)."""

    __slots__ = ("d", "o", "w", "z")

    def __init__(self) -> None:
        self.d: list[int] = []
        self.z: list[float] = []
        self.o: list[FloatArray] = []
        self.w: list[FloatArray] = []

    def copy(self) -> _Path:
        p = _Path()
        p.d, p.z, p.o, p.w = list(self.d), list(self.z), list(self.o), list(self.w)
        return p

    def extend(self, pz: float, po: FloatArray, pi: int, n: int) -> None:
        depth = len(self.d)
        self.d.append(pi)
        self.z.append(pz)
        self.o.append(po)
        self.w.append(np.ones(n) if depth == 0 else np.zeros(n))
        for i in range(depth - 1, -1, -1):
            self.w[i + 1] = self.w[i + 1] + po * self.w[i] * (i + 1) / (depth + 1)
            self.w[i] = pz * self.w[i] * (depth - i) / (depth + 1)

    def unwind(self, i: int) -> None:
        depth = len(self.d) - 1
        o, z = self.o[i], self.z[i]
        nonzero = o != 0
        o_safe = np.where(nonzero, o, 1.0)
        n = self.w[depth]
        for j in range(depth - 1, -1, -1):
            t = self.w[j]
            hot = n * (depth + 1) / ((j + 1) * o_safe)
            cold = t * (depth + 1) / (z * (depth - j)) if z != 0 else np.zeros_like(t)
            new_w = np.where(nonzero, hot, cold)
            n = np.where(nonzero, t - hot * z * (depth - j) / (depth + 1), n)
            self.w[j] = new_w
        for j in range(i, depth):
            self.d[j], self.z[j], self.o[j] = self.d[j + 1], self.z[j + 1], self.o[j + 1]
        self.d.pop()
        self.z.pop()
        self.o.pop()
        self.w.pop()

    def unwound_sum(self, i: int) -> FloatArray:
        depth = len(self.d) - 1
        o, z = self.o[i], self.z[i]
        nonzero = o != 0
        o_safe = np.where(nonzero, o, 1.0)
        total_hot = np.zeros_like(o)
        total_cold = np.zeros_like(o)
        nxt = self.w[depth]
        for j in range(depth - 1, -1, -1):
            tmp = nxt * (depth + 1) / ((j + 1) * o_safe)
            total_hot = total_hot + tmp
            nxt = self.w[j] - tmp * z * (depth - j) / (depth + 1)
            if z != 0:
                total_cold = total_cold + self.w[j] / z / ((depth - j) / (depth + 1))
        return np.where(nonzero, total_hot, total_cold)


def tree_shap(
    tree: FlatTree, X: FloatArray, n_features: int, active: NDArray[np.bool_] | None = None
) -> FloatArray:
    """Contributions (n_rows, n_features) of one tree to every row of `X` (Algorithm 2).

    `active`, per node: False where the subtree's leaves are all zero (nothing to add).
    """
    n = len(X)
    phi = np.zeros((n, n_features))
    ones = np.ones(n)

    def recurse(node: int, path: _Path, pz: float, po: FloatArray, pi: int) -> None:
        if active is not None and not active[node]:
            return
        path = path.copy()
        path.extend(pz, po, pi, n)
        if tree.left[node] < 0:
            for i in range(1, len(path.d)):
                w = path.unwound_sum(i)
                phi[:, path.d[i]] += w * (path.o[i] - path.z[i]) * tree.value[node]
            return
        f = int(tree.feature[node])
        go = tree.goes_left(node, X[:, f]).astype(np.float64)
        iz, io = 1.0, ones
        if f in path.d[1:]:
            k = path.d.index(f, 1)
            iz, io = path.z[k], path.o[k]
            path.unwind(k)
        cover = tree.cover[node]
        lft, rgt = int(tree.left[node]), int(tree.right[node])
        recurse(lft, path, iz * tree.cover[lft] / cover, io * go, f)
        recurse(rgt, path, iz * tree.cover[rgt] / cover, io * (1.0 - go), f)

    if tree.left[0] < 0:
        return phi
    recurse(0, _Path(), 1.0, ones, -1)
    return phi


@dataclass(frozen=True, slots=True)
class ShapTable:
    """Contributions of a group of trees for every cell of its features' intervals."""

    features: tuple[int, ...]
    thresholds: tuple[FloatArray, ...]  # per feature, sorted; cells: len + 1 intervals + missing
    margin: FloatArray  # (cells,) the group's summed tree outputs
    phi: FloatArray  # (cells, len(features))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(t) + 2 for t in self.thresholds)

    def cell(self, X: FloatArray) -> NDArray[np.int64]:
        idx = np.zeros(len(X), dtype=np.int64)
        for f, thr, size in zip(self.features, self.thresholds, self.shape, strict=True):
            x = X[:, f]
            local = np.searchsorted(thr, x, side="left")
            local[np.isnan(x)] = size - 1
            idx = idx * size + local
        return idx


def _representatives(thresholds: FloatArray) -> FloatArray:
    """One value per cell: each threshold (x ≤ t), one above the last, and NaN."""
    above = np.nextafter(thresholds[-1], np.inf) if len(thresholds) else 0.0
    return np.asarray(np.r_[thresholds, above, np.nan], dtype=np.float64)


def _tree_table(tree: FlatTree, n_features: int) -> ShapTable:
    """One tree's table on its own (small) grid of cells."""
    feats = tree.features
    thresholds = tuple(tree.thresholds_of(f) for f in feats)
    grids = np.meshgrid(*[_representatives(thr) for thr in thresholds], indexing="ij")
    X = np.full((grids[0].size, n_features), np.nan)
    for j, f in enumerate(feats):
        X[:, f] = grids[j].ravel()
    phi = tree_shap(tree, X, n_features)[:, list(feats)]
    return ShapTable(feats, thresholds, tree.predict(X), phi)


def _grid_size(tree: FlatTree, nodes: list[int]) -> int:
    thresholds: dict[int, set[float]] = {}
    for k in nodes:
        thresholds.setdefault(int(tree.feature[k]), set()).add(float(tree.threshold[k]))
    return int(np.prod([len(v) + 2 for v in thresholds.values()]))


def _subtree(tree: FlatTree, node: int) -> list[int]:
    """The nodes under `node`, itself included."""
    out, stack = [], [node]
    while stack:
        k = stack.pop()
        out.append(k)
        if tree.left[k] >= 0:
            stack += [int(tree.right[k]), int(tree.left[k])]
    return out


def _group_table(tree: FlatTree, n_features: int, root: int, ancestors: list[int]) -> ShapTable:
    """The table of the leaves under `root`: their paths' splits only, other leaves zero."""
    under = _subtree(tree, root)
    splits = ancestors + [k for k in under if tree.left[k] >= 0]
    feats = tuple(sorted({int(tree.feature[k]) for k in splits}))
    thresholds = tuple(
        np.unique(np.asarray([tree.threshold[k] for k in splits if tree.feature[k] == f]))
        for f in feats
    )
    keep = np.zeros(len(tree.value), dtype=bool)
    keep[under] = True
    masked = replace(tree, value=np.where(keep & (tree.left < 0), tree.value, 0.0))
    active = keep.copy()
    active[ancestors] = True
    grids = np.meshgrid(*[_representatives(thr) for thr in thresholds], indexing="ij")
    X = np.full((grids[0].size, n_features), np.nan)
    for j, f in enumerate(feats):
        X[:, f] = grids[j].ravel()
    phi = tree_shap(masked, X, n_features, active)[:, list(feats)]
    return ShapTable(feats, thresholds, masked.predict(X), phi)


def _leaf_groups(tree: FlatTree, max_cells: int) -> list[tuple[int, list[int]]]:
    """Where a tree is cut: (subtree root, its ancestors) per group; [(0, [])] if it fits."""
    splits = [k for k in range(len(tree.left)) if tree.left[k] >= 0]
    if _grid_size(tree, splits) <= max_cells:
        return [(0, [])]
    groups: list[tuple[int, list[int]]] = []

    def cut(node: int, ancestors: list[int]) -> None:
        inner = [k for k in _subtree(tree, node) if tree.left[k] >= 0]
        if not inner or _grid_size(tree, ancestors + inner) <= max_cells:
            groups.append((node, ancestors))
            return
        cut(int(tree.left[node]), [*ancestors, node])
        cut(int(tree.right[node]), [*ancestors, node])

    cut(0, [])
    return groups


def tree_tables(tree: FlatTree, n_features: int, max_cells: int = 32768) -> list[ShapTable]:
    """One table for a tree whose grid fits in `max_cells`, else one per group of leaves."""
    if not tree.features:
        return []
    groups = _leaf_groups(tree, max_cells)
    if groups == [(0, [])]:
        return [_tree_table(tree, n_features)]
    return [_group_table(tree, n_features, root, ancestors) for root, ancestors in groups]


def _group_thresholds(tree: FlatTree, root: int, ancestors: list[int]) -> dict[int, set[float]]:
    """Per feature, the thresholds a group's table is solved on (as `_group_table` does)."""
    out: dict[int, set[float]] = {}
    for k in ancestors + [k for k in _subtree(tree, root) if tree.left[k] >= 0]:
        out.setdefault(int(tree.feature[k]), set()).add(float(tree.threshold[k]))
    return out


def _merge_plan(own: list[dict[int, set[float]]], max_cells: int) -> list[list[int]]:
    """Greedy merge, in order: indices of `own` per table, each of at most `max_cells` cells."""
    groups: list[list[int]] = []
    current: list[int] = []
    current_thr: dict[int, set[float]] = {}
    for i, thresholds in enumerate(own):
        merged = {f: set(v) for f, v in current_thr.items()}
        for f, thr in thresholds.items():
            merged.setdefault(f, set()).update(thr)
        size = int(np.prod([len(v) + 2 for v in merged.values()]))
        if current and size > max_cells:
            groups.append(current)
            current = []
            merged = {f: set(thr) for f, thr in thresholds.items()}
        current.append(i)
        current_thr = merged
    if current:
        groups.append(current)
    return groups


def planned_entries(trees: list[FlatTree], max_cells: int) -> int:
    """Numbers `build_tables(trees, n, max_cells)` would store (margin and φ), without solving.

    Tables store float64, so the artefact is about 8 bytes per entry.
    """
    own = [
        _group_thresholds(t, root, ancestors)
        for t in trees
        if t.features
        for root, ancestors in _leaf_groups(t, max_cells)
    ]
    own.sort(key=lambda thr: (len(thr), tuple(sorted(thr))))
    total = 0
    for group in _merge_plan(own, max_cells):
        merged: dict[int, set[float]] = {}
        for i in group:
            for f, thr in own[i].items():
                merged.setdefault(f, set()).update(thr)
        total += int(np.prod([len(v) + 2 for v in merged.values()])) * (1 + len(merged))
    return total


def table_budget(
    trees: list[FlatTree], max_entries: int, max_cells: int = 32768, min_cells: int = 512
) -> int:
    """The largest `max_cells` (÷4 steps, down to `min_cells`) whose tables fit `max_entries`.

    Fewer, larger tables serve faster (one lookup each), but deep trees that split on
    many features have grids far larger than their leaves; cutting them finer bounds the
    artefact's size at a small cost in lookups.
    """
    while max_cells > min_cells and planned_entries(trees, max_cells) > max_entries:
        max_cells //= 4
    return max(max_cells, min_cells)


def build_tables(trees: list[FlatTree], n_features: int, max_cells: int = 32768) -> list[ShapTable]:
    """Exact tables for all trees with a split, merged into tables of at most `max_cells` cells.

    Each tree is solved once on its own grid; a merged table then gathers every member
    tree's cells from its grid (a cell of the merged grid lies in exactly one cell of each
    member's grid), so merging costs only index arithmetic.
    """
    own = [table for t in trees for table in tree_tables(t, n_features, max_cells)]
    own.sort(key=lambda t: (len(t.features), t.features))
    plan = _merge_plan(
        [
            {f: set(map(float, thr)) for f, thr in zip(t.features, t.thresholds, strict=True)}
            for t in own
        ],
        max_cells,
    )
    groups = [[own[i] for i in indices] for indices in plan]
    tables = []
    for group in groups:
        if len(group) == 1:
            tables.append(group[0])
            continue
        feats = tuple(sorted({f for t in group for f in t.features}))
        thresholds = tuple(
            np.unique(
                np.concatenate(
                    [t.thresholds[t.features.index(f)] for t in group if f in t.features]
                )
            )
            for f in feats
        )
        grids = np.meshgrid(*[_representatives(thr) for thr in thresholds], indexing="ij")
        X = np.full((grids[0].size, n_features), np.nan)
        for j, f in enumerate(feats):
            X[:, f] = grids[j].ravel()
        phi = np.zeros((len(X), len(feats)))
        margin = np.zeros(len(X))
        for member in group:
            cell = member.cell(X)
            margin += member.margin[cell]
            cols = [feats.index(f) for f in member.features]
            phi[:, cols] += member.phi[cell]
        tables.append(ShapTable(feats, thresholds, margin, phi))
    return tables


def expected_value(trees: list[FlatTree]) -> float:
    return float(sum(tree.expected_value() for tree in trees))
