"""The candidates' pipelines and fits: convergence reports, the PCA cap, warm starts."""

import numpy as np
import pytest
from sklearn.datasets import make_classification

from fsdl_lib.candidates import CANDIDATES, REDUCED_DIM, build_pipeline, fit, warm_start


@pytest.fixture(scope="module")
def blobs():
    """Six classes in 300 dimensions with widely varying feature scales, like ResNet features."""
    x, y = make_classification(
        n_samples=900, n_features=300, n_informative=40, n_classes=6, n_clusters_per_class=1, random_state=3
    )
    x = x * np.random.default_rng(0).uniform(0.1, 20, size=300) + 5
    return x.astype(np.float32), np.array(["abcdef"[i] for i in y])


@pytest.mark.parametrize("name", list(CANDIDATES))
def test_every_candidate_scales_reduces_and_classifies(blobs, name):
    x, y = blobs
    pipeline = build_pipeline(CANDIDATES[name])
    assert [step for step, _ in pipeline.steps] == ["scale", "reduce", "classify"]
    fit(pipeline, x, y)
    assert pipeline.named_steps["reduce"].n_components_ == REDUCED_DIM
    assert pipeline.predict_proba(x[:3]).shape == (3, 6)


def test_the_pca_keeps_no_more_components_than_there_are_images(blobs):
    x, y = blobs
    pipeline = build_pipeline(CANDIDATES["logreg_c1"])
    fit(pipeline, x[:90], y[:90])
    assert pipeline.named_steps["reduce"].n_components_ == 90
    assert set(pipeline.predict(x[90:100])) <= set(y)


def test_a_fit_reports_its_iterations_and_convergence(blobs):
    x, y = blobs
    report = fit(build_pipeline(CANDIDATES["logreg_c1"]), x, y)
    assert report.converged
    assert 1 < report.iterations < 3000
    assert report.seconds > 0


def test_a_solver_stopped_at_its_limit_is_reported_not_converged(blobs, caplog):
    x, y = blobs
    pipeline = build_pipeline(CANDIDATES["logreg_c1"])
    pipeline[-1].set_params(max_iter=3)
    report = fit(pipeline, x, y)
    assert not report.converged
    assert report.iterations == 3
    assert "iteration limit" in caplog.text


def test_estimators_without_iterations_report_none(blobs):
    x, y = blobs
    report = fit(build_pipeline(CANDIDATES["knn_3"]), x, y)
    assert report.iterations is None
    assert report.converged


def test_a_warm_start_decides_exactly_as_the_previous_model_before_it_is_fit(blobs):
    x, y = blobs
    previous = build_pipeline(CANDIDATES["logreg_c1"])
    fit(previous, x[:600], y[:600])
    pipeline = warm_start(CANDIDATES["logreg_c1"], previous, y)
    assert not isinstance(pipeline, str), pipeline
    transformed = pipeline[:-1].transform(x)
    logits = transformed @ pipeline[-1].coef_.T + pipeline[-1].intercept_
    np.testing.assert_allclose(logits, previous.decision_function(x), rtol=1e-5, atol=1e-4)
    # Fitting it leaves the previous model as it was.
    before = previous[-1].coef_.copy()
    fit(pipeline, x, y, classifier_only=True)
    np.testing.assert_array_equal(previous[-1].coef_, before)


def test_a_warm_started_refit_reaches_the_model_a_cold_fit_reaches_faster(blobs):
    """Convex problem: where the solver starts changes its path, not where it ends."""
    x, y = blobs
    previous = build_pipeline(CANDIDATES["logreg_c1"])
    fit(previous, x[:870], y[:870])
    warm = warm_start(CANDIDATES["logreg_c1"], previous, y)
    warm_report = fit(warm, x, y, classifier_only=True)
    # The same problem from scratch: the served scaler and PCA, the classifier cold.
    cold = warm_start(CANDIDATES["logreg_c1"], previous, y)
    cold[-1].set_params(warm_start=False)
    cold_report = fit(cold, x, y, classifier_only=True)
    assert warm_report.converged
    assert cold_report.converged
    assert warm_report.iterations < cold_report.iterations
    assert np.mean(warm.predict(x) == cold.predict(x)) >= 0.99


@pytest.mark.parametrize("name", ["svm_rbf", "knn_3"])
def test_estimators_that_cannot_warm_start_say_why(blobs, name):
    x, y = blobs
    previous = build_pipeline(CANDIDATES[name])
    fit(previous, x, y)
    reason = warm_start(CANDIDATES[name], previous, y)
    assert isinstance(reason, str)
    assert "cannot start from a previous solution" in reason


def test_a_previous_model_of_other_steps_or_classes_is_not_used(blobs):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = blobs
    previous = build_pipeline(CANDIDATES["logreg_c1"])
    fit(previous, x, y)
    other_classes = np.where(y == "a", "z", y)
    assert "other classes" in warm_start(CANDIDATES["logreg_c1"], previous, other_classes)
    older = Pipeline([("scale", StandardScaler()), ("classify", LogisticRegression(max_iter=50))]).fit(x, y)
    assert "not a fitted pipeline" in warm_start(CANDIDATES["logreg_c1"], older, y)
    assert "not a fitted pipeline" in warm_start(CANDIDATES["logreg_c1"], object(), y)


@pytest.mark.parametrize("name", ["knn_3", "knn_7"])
def test_knn_searches_by_brute_force_and_predicts_what_auto_did(blobs, name):
    """No KD-tree in the model (the safe loader trusts none), and the same neighbours as the
    'auto' search found on these dimensions: the models, and their scores, are unchanged."""
    import skops.io

    x, y = blobs
    brute = build_pipeline(CANDIDATES[name])
    fit(brute, x, y)
    auto = build_pipeline(CANDIDATES[name])
    auto.set_params(classify__algorithm="auto")
    fit(auto, x, y)
    assert brute.named_steps["classify"]._fit_method == "brute"
    assert skops.io.get_untrusted_types(data=skops.io.dumps(brute)) == []
    np.testing.assert_array_equal(brute.predict_proba(x[:200]), auto.predict_proba(x[:200]))
