"""The compiled TreeSHAP equals shap's, whatever the threads, missing values included."""

from __future__ import annotations

import numpy as np
import pytest
import shap
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from fraudkit.science.treeshap import TreeArrays, tree_shap


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """Six features, two of them tied to the label, 3 % missing values, rare positives."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3_000, 6))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=len(x)) > 2.2).astype(int)
    x[rng.random(x.shape) < 0.03] = np.nan
    return x, y


def forest(x: np.ndarray, y: np.ndarray) -> RandomForestClassifier:
    # The kit's forest imputes before it fits (scikit-learn forests accept NaN too).
    return RandomForestClassifier(
        n_estimators=20, max_depth=8, min_samples_leaf=5, random_state=0
    ).fit(x, y)


def boosting(x: np.ndarray, y: np.ndarray) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(x, y)


@pytest.mark.parametrize(("build", "output"), [(forest, 1), (forest, 0), (boosting, 0)])
def test_values_equal_shaps_with_missing_values(data, build, output: int) -> None:
    x, y = data
    explainer = shap.TreeExplainer(build(x, y), feature_perturbation="tree_path_dependent")
    expected = np.asarray(explainer.shap_values(x, check_additivity=False))
    if expected.ndim == 3:
        expected = expected[:, :, output]
    values = tree_shap(TreeArrays.from_shap(explainer, output), x)
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-12)
    # Additive: the values and the expected output give the model's own output.
    raw = np.ravel(explainer.expected_value)[output] + values.sum(axis=1)
    model_output = explainer.model.predict(x)
    model_output = model_output[:, output] if model_output.ndim == 2 else model_output
    np.testing.assert_allclose(raw, model_output, rtol=0, atol=1e-9)


def test_the_values_do_not_depend_on_the_threads(data) -> None:
    x, y = data
    trees = TreeArrays.from_shap(shap.TreeExplainer(forest(x, y)), 1)
    one = tree_shap(trees, x, threads=1)
    for threads in (2, 3, 7):
        assert np.array_equal(tree_shap(trees, x, threads=threads), one)


def test_branches_of_zero_leaves_are_skipped_not_lost(data) -> None:
    """Most forest leaves hold no fraud; the branches under only such leaves are pruned."""
    x, y = data
    trees = TreeArrays.from_shap(shap.TreeExplainer(forest(x, y)), 1)
    leaves = trees.right < 0
    assert (leaves & (trees.values == 0) & (trees.weights > 0)).any()
    # Every live internal node has a live child; every dead one has none below it.
    internal = ~leaves & (trees.weights > 0)
    tree, node = np.nonzero(internal)
    children_live = (
        trees.live[tree, trees.left[tree, node]] | trees.live[tree, trees.right[tree, node]]
    )
    assert np.array_equal(children_live, trees.live[tree, node])
    left_dead = ~trees.live[tree, trees.left[tree, node]]
    right_dead = ~trees.live[tree, trees.right[tree, node]]
    assert (left_dead | right_dead).mean() > 0.3  # the values above are exact even so


def test_no_rows_give_no_values(data) -> None:
    x, y = data
    trees = TreeArrays.from_shap(shap.TreeExplainer(boosting(x, y)), 0)
    assert tree_shap(trees, x[:0]).shape == (0, x.shape[1])
