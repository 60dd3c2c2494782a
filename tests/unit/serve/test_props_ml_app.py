"""The sample Serve app's request bodies (ml_app.parse_features, predict_one): whatever a client POSTs gets
predictions with a probability, or a 422 that says what is wrong; never a 500."""

import json
import math

from fastapi import HTTPException
from hypothesis import given, strategies as st

from seedcore_boot import ml_app
from tests.props import nested

finite = st.floats(allow_nan=False, allow_infinity=False)
rows = st.lists(st.lists(st.one_of(finite, st.integers(-2**80, 2**80), nested), min_size=1, max_size=3), max_size=3)
bodies = st.one_of(
    st.binary(max_size=40),
    rows.map(lambda r: json.dumps({"features": r}, default=str).encode()),
    nested.map(lambda v: json.dumps(v, default=str).encode()),
    st.just(b"[" * 100000),
)
params = st.builds(lambda w, b: ml_app.check_params({"weights": w, "bias": b}),
                   st.lists(finite, min_size=1, max_size=3), finite)


@given(bodies, params)
def test_any_body_is_predicted_or_a_422(body, p):
    try:
        parsed = ml_app.parse_features(body, len(p["weights"]))
        predictions = [ml_app.predict_one(p, row) for row in parsed]
    except HTTPException as exc:
        assert exc.status_code == 422 and exc.detail
        return
    for prediction in predictions:
        assert 0 <= prediction["probability"] <= 1 and prediction["label"] in p["labels"]
        json.dumps(prediction, allow_nan=False)


def test_features_whose_weighted_sum_overflows_both_ways_are_a_422():
    p = ml_app.check_params({"weights": [1e308, -1e308], "bias": 0})
    try:
        ml_app.predict_one(p, [1e308, 1e308])  # inf - inf: a NaN probability, which JSON cannot carry
    except HTTPException as exc:
        assert exc.status_code == 422
    else:
        raise AssertionError("no 422")
    assert math.isfinite(ml_app.predict_one(p, [1.0, 0.5])["probability"])
