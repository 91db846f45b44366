"""Path-dependent TreeSHAP, compiled, on every core: the tree models' exact attributions.

shap's :class:`~shap.TreeExplainer` computes these values in C++ but holds Python's global
interpreter lock while it does, so a process explains one row at a time on one core
(measured: two threads take as long as one). :func:`tree_shap` runs the same algorithm
(Lundberg et al. 2020, Algorithm 2; shap's ``tree_shap_recursive``) compiled by numba with
the lock released, and splits the rows over threads.

It reads the trees shap has already parsed (:attr:`shap.TreeExplainer.model`), for one
output, so the two agree to rounding; the tests hold them within 1e-12. Each row is
computed alone, in the same order of operations whatever the split, so the values do not
depend on the number of threads.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

__all__ = ["TreeArrays", "tree_shap"]

# Rows per thread below which a second thread costs more than it saves.
MIN_ROWS_PER_THREAD = 2_000


@dataclass(frozen=True)
class TreeArrays:
    """One output of a parsed tree ensemble, as flat arrays (one row per tree).

    Parameters
    ----------
    left, right, default : numpy.ndarray of int32, shape (trees, nodes)
        Child node indexes; ``right < 0`` marks a leaf. ``default`` is where a missing
        value goes.
    features : numpy.ndarray of int32, shape (trees, nodes)
        The feature each node splits on.
    thresholds : numpy.ndarray of float64, shape (trees, nodes)
        A row goes left when its value is at most the threshold.
    values : numpy.ndarray of float64, shape (trees, nodes)
        Each node's output (leaves are what count).
    weights : numpy.ndarray of float64, shape (trees, nodes)
        Training rows (or their weight) that reached each node.
    live : numpy.ndarray of bool, shape (trees, nodes)
        Whether a node has a leaf of non-zero value below it (or is one).
    max_depth : int
        The deepest tree's depth.
    input_dtype : numpy.dtype
        The precision the trees compare in (float32 for scikit-learn forests): rows are
        rounded to it first, as the model does.
    expected : float
        The ensemble's expected output (training rows weighted), to which a row's values
        add up its own output.
    """

    left: np.ndarray
    right: np.ndarray
    default: np.ndarray
    features: np.ndarray
    thresholds: np.ndarray
    values: np.ndarray
    weights: np.ndarray
    live: np.ndarray
    max_depth: int
    input_dtype: Any
    expected: float

    @classmethod
    def from_shap(cls, explainer: Any, output: int = 0) -> TreeArrays:
        """The trees of a :class:`shap.TreeExplainer`, keeping ``output`` (a class's column)."""
        ensemble = explainer.model
        values = np.ascontiguousarray(np.asarray(ensemble.values, dtype=np.float64)[:, :, output])
        left = np.ascontiguousarray(ensemble.children_left, dtype=np.int32)
        right = np.ascontiguousarray(ensemble.children_right, dtype=np.int32)
        return cls(
            left=left,
            right=right,
            default=np.ascontiguousarray(ensemble.children_default, dtype=np.int32),
            features=np.ascontiguousarray(ensemble.features, dtype=np.int32),
            thresholds=np.ascontiguousarray(ensemble.thresholds, dtype=np.float64),
            values=values,
            weights=np.ascontiguousarray(ensemble.node_sample_weight, dtype=np.float64),
            live=_live_nodes(left, right, values),
            max_depth=int(ensemble.max_depth),
            input_dtype=ensemble.input_dtype,
            expected=float(np.ravel(explainer.expected_value)[output]),
        )


def _live_nodes(left: np.ndarray, right: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Whether each node is, or has below it, a leaf whose value is not 0."""
    live = (right < 0) & (values != 0)
    for tree in range(left.shape[0]):
        order, pending = [], [0]
        while pending:  # preorder; reversed, every child comes before its parent
            node = pending.pop()
            order.append(node)
            if right[tree, node] >= 0:
                pending += [int(left[tree, node]), int(right[tree, node])]
        for node in reversed(order):
            if right[tree, node] >= 0:
                live[tree, node] = live[tree, left[tree, node]] or live[tree, right[tree, node]]
    return live


def _usable_cores() -> int:
    """The cores this process may run on: its affinity where the system keeps one."""
    if hasattr(os, "sched_getaffinity"):  # Linux; not macOS or Windows
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def tree_shap(trees: TreeArrays, x: np.ndarray, threads: int | None = None) -> np.ndarray:
    """Path-dependent SHAP values of each row, summed over the trees.

    Parameters
    ----------
    trees : TreeArrays
        The ensemble, one output.
    x : numpy.ndarray of shape (rows, features)
        The model's input (after the pipeline's transforms); NaN is a missing value.
    threads : int, optional
        Threads to split the rows over; by default one per core this process may use,
        fewer for small frames.

    Returns
    -------
    numpy.ndarray of float64, shape (rows, features)
        Each row's values add up to its output minus the ensemble's expected output.
    """
    rows = np.ascontiguousarray(np.asarray(x).astype(trees.input_dtype), dtype=np.float64)
    out = np.zeros(rows.shape, dtype=np.float64)
    if not len(rows):
        return out
    if threads is None:
        threads = min(_usable_cores(), -(-len(rows) // MIN_ROWS_PER_THREAD))
    bounds = np.linspace(0, len(rows), max(1, threads) + 1).astype(int)
    missing = np.isnan(rows)

    def run(start: int, stop: int) -> None:
        _shap_rows(
            rows[start:stop],
            missing[start:stop],
            trees.left,
            trees.right,
            trees.default,
            trees.features,
            trees.thresholds,
            trees.values,
            trees.weights,
            trees.live,
            trees.max_depth,
            out[start:stop],
        )

    if len(bounds) == 2:
        run(0, len(rows))
    else:
        with ThreadPoolExecutor(len(bounds) - 1) as pool:
            list(pool.map(run, bounds[:-1], bounds[1:]))
    return out


# The compiled kernel below follows shap's cext/tree_shap.h line for line; its comments
# name the C++ function each block stands for. A path element is (feature, zero fraction,
# one fraction, permutation weight), held in four parallel arrays; each recursion level
# copies its parent's path to the next free stretch of them, as the C++ does.


@njit(nogil=True, cache=True)
def _extend(feat, zero, one, weight, start, depth, zero_fraction, one_fraction, feature):
    """``extend_path``: add a split to the path starting at ``start``."""
    feat[start + depth] = feature
    zero[start + depth] = zero_fraction
    one[start + depth] = one_fraction
    weight[start + depth] = 1.0 if depth == 0 else 0.0
    for i in range(depth - 1, -1, -1):
        weight[start + i + 1] += one_fraction * weight[start + i] * (i + 1) / (depth + 1)
        weight[start + i] = zero_fraction * weight[start + i] * (depth - i) / (depth + 1)


@njit(nogil=True, cache=True)
def _unwind(feat, zero, one, weight, start, depth, index):
    """``unwind_path``: undo the split at ``index``, to redo it deeper."""
    one_fraction = one[start + index]
    zero_fraction = zero[start + index]
    next_one = weight[start + depth]
    for i in range(depth - 1, -1, -1):
        if one_fraction != 0:
            kept = weight[start + i]
            weight[start + i] = next_one * (depth + 1) / ((i + 1) * one_fraction)
            next_one = kept - weight[start + i] * zero_fraction * (depth - i) / (depth + 1)
        else:
            weight[start + i] = weight[start + i] * (depth + 1) / (zero_fraction * (depth - i))
    for i in range(index, depth):
        feat[start + i] = feat[start + i + 1]
        zero[start + i] = zero[start + i + 1]
        one[start + i] = one[start + i + 1]


@njit(nogil=True, cache=True)
def _unwound_sum(zero, one, weight, start, depth, index):
    """``unwound_path_sum``: the path's total weight were ``index`` unwound."""
    one_fraction = one[start + index]
    zero_fraction = zero[start + index]
    next_one = weight[start + depth]
    total = 0.0
    if one_fraction != 0:
        for i in range(depth - 1, -1, -1):
            share = next_one / ((i + 1) * one_fraction)
            total += share
            next_one = weight[start + i] - share * zero_fraction * (depth - i)
    else:
        for i in range(depth - 1, -1, -1):
            total += weight[start + i] / (zero_fraction * (depth - i))
    return total * (depth + 1)


@njit(nogil=True, cache=True)
def _add_leaf(phi, feat, zero, one, weight, start, depth, value):
    """The leaf branch of ``tree_shap_recursive``: each path feature's share of ``value``."""
    for i in range(1, depth + 1):
        share = _unwound_sum(zero, one, weight, start, depth, i)
        phi[feat[start + i]] += share * (one[start + i] - zero[start + i]) * value


@njit(nogil=True, cache=True)
def _push(stack_int, stack_float, top, node, depth, parent, feature, zero_fraction, one_fraction):
    """Queue a recursive call (a child to explore); return the new top of the stack."""
    top += 1
    stack_int[top, 0], stack_int[top, 1] = node, depth
    stack_int[top, 2], stack_int[top, 3] = parent, feature
    stack_float[top, 0], stack_float[top, 1] = zero_fraction, one_fraction
    return top


@njit(nogil=True, cache=True)
def _shap_rows(
    x, missing, left, right, default, features, thresholds, values, weights, live, max_depth, out
):
    """``tree_shap_recursive`` over every tree and row, with an explicit stack."""
    size = (max_depth + 2) * (max_depth + 3)
    feat = np.empty(size, np.int64)
    zero = np.empty(size)
    one = np.empty(size)
    weight = np.empty(size)
    # A pending call: node, depth, parent's path start, its split's zero/one fraction, feature.
    stack_int = np.empty((2 * max_depth + 4, 4), np.int64)
    stack_float = np.empty((2 * max_depth + 4, 2))
    for row in range(x.shape[0]):
        for tree in range(left.shape[0]):
            if not live[tree, 0]:
                continue
            # The root's parent path is the empty one at 0; its own starts at 1.
            top = _push(stack_int, stack_float, -1, 0, 0, 0, -1, 1.0, 1.0)
            while top >= 0:
                node, depth = stack_int[top, 0], stack_int[top, 1]
                parent, parent_feature = stack_int[top, 2], stack_int[top, 3]
                zero_fraction, one_fraction = stack_float[top, 0], stack_float[top, 1]
                top -= 1
                start = parent + depth + 1
                for i in range(depth + 1):  # the parent's path, copied to extend
                    feat[start + i], zero[start + i] = feat[parent + i], zero[parent + i]
                    one[start + i], weight[start + i] = one[parent + i], weight[parent + i]
                _extend(feat, zero, one, weight, start, depth, zero_fraction, one_fraction,
                        parent_feature)  # fmt: skip
                if right[tree, node] < 0:
                    _add_leaf(out[row], feat, zero, one, weight, start, depth, values[tree, node])
                    continue
                split = features[tree, node]
                if missing[row, split]:
                    hot = default[tree, node]
                elif x[row, split] <= thresholds[tree, node]:
                    hot = left[tree, node]
                else:
                    hot = right[tree, node]
                cold = right[tree, node] if hot == left[tree, node] else left[tree, node]
                node_weight = weights[tree, node]
                incoming_zero, incoming_one = 1.0, 1.0
                index = 0
                while index <= depth and feat[start + index] != split:
                    index += 1
                if index != depth + 1:
                    incoming_zero, incoming_one = zero[start + index], one[start + index]
                    _unwind(feat, zero, one, weight, start, depth, index)
                    depth -= 1
                # Cold is pushed first so that the hot branch is explored first, as in C++.
                # A branch whose leaves are all 0 adds 0 to every feature (most of a
                # forest's, whose leaves are pure legitimate): it is not explored.
                if live[tree, cold]:
                    zero_fraction = weights[tree, cold] / node_weight * incoming_zero
                    top = _push(stack_int, stack_float, top, cold, depth + 1, start, split,
                                zero_fraction, 0.0)  # fmt: skip
                if live[tree, hot]:
                    zero_fraction = weights[tree, hot] / node_weight * incoming_zero
                    top = _push(stack_int, stack_float, top, hot, depth + 1, start, split,
                                zero_fraction, incoming_one)  # fmt: skip
