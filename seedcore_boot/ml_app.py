"""The default ML Serve application: a logistic-regression classifier whose parameters are the
deployment's `user_config`, so a redeploy with new parameters changes predictions without a restart.

    GET  /health   -> {"status": "ok", "ray_version": ..., "model": {...}, "replica": {...}}
    POST /predict  {"features": [[x1, x2, ...], ...]}
                   -> {"predictions": [{"label": ..., "probability": ...}], "model_version": ...}

probability = 1 / (1 + exp(-(weights . x + bias))); label = labels[1] if probability >= threshold else labels[0].
Malformed input gets a 422 with a message, never a 500. Only Serve replicas import this module.
"""

import json
import math

import ray
from fastapi import FastAPI, HTTPException, Request
from ray import serve

DEFAULT_PARAMS = {"weights": [1.0, -1.0], "bias": 0.0, "labels": ["negative", "positive"], "threshold": 0.5,
                  "version": "default"}

api = FastAPI(title="seedcore-boot sample classifier")


def check_params(config):
    """The model's parameters from user_config, validated; a bad config fails the deploy with this message."""
    params = dict(DEFAULT_PARAMS, **(config or {}))
    unknown = set(params) - set(DEFAULT_PARAMS)
    if unknown:
        raise ValueError(f"unknown user_config keys {sorted(unknown)}; known: {sorted(DEFAULT_PARAMS)}")
    weights = params["weights"]
    if not isinstance(weights, list) or not weights or \
            not all(isinstance(w, (int, float)) and math.isfinite(w) for w in weights):
        raise ValueError("user_config.weights must be a non-empty list of finite numbers")
    if not isinstance(params["bias"], (int, float)) or not math.isfinite(params["bias"]):
        raise ValueError("user_config.bias must be a finite number")
    labels = params["labels"]
    if not isinstance(labels, list) or len(labels) != 2 or not all(isinstance(l, str) for l in labels):
        raise ValueError("user_config.labels must be two strings: [label for 0, label for 1]")
    if not isinstance(params["threshold"], (int, float)) or not 0 <= params["threshold"] <= 1:
        raise ValueError("user_config.threshold must be a number from 0 to 1")
    params["weights"] = [float(w) for w in weights]
    params["version"] = str(params["version"])
    return params


def predict_one(params, x):
    z = sum(w * v for w, v in zip(params["weights"], x)) + params["bias"]
    if math.isnan(z):  # finite features whose products overflow both ways: inf - inf
        raise HTTPException(422, "the features are too large to score: their weighted sum is no number")
    # exp of a large negative z overflows; this form is stable on both sides
    p = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
    return {"label": params["labels"][1] if p >= params["threshold"] else params["labels"][0],
            "probability": round(p, 6)}


def parse_features(body, n):
    try:
        data = json.loads(body or b"null")
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; RecursionError: "[[[[..."
        raise HTTPException(422, 'body must be JSON: {"features": [[x1, x2, ...], ...]}') from None
    rows = data.get("features") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows:
        raise HTTPException(422, 'body must be {"features": [[x1, x2, ...], ...]} with at least one row')
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != n:
            raise HTTPException(422, f"row {i} must be a list of {n} numbers (the model takes {n} features)")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in row):
            raise HTTPException(422, f"row {i} has a value that is not a finite number")
    return [[float(v) for v in row] for row in rows]


# Helpers stay above this class: @serve.ingress pickles the routes by value, taking only the globals
# defined before it.
@serve.deployment(ray_actor_options={"num_cpus": 0})  # tiny: must schedule even on a head with num_cpus=0
@serve.ingress(api)
class Classifier:
    def __init__(self):
        self.params = check_params(None)

    def reconfigure(self, config):
        self.params = check_params(config)

    @api.get("/health")
    def health(self):
        ctx = serve.get_replica_context()
        return {"status": "ok", "ray_version": ray.__version__,
                "model": {"kind": "logistic_regression", "version": self.params["version"],
                          "n_features": len(self.params["weights"])},
                "replica": {"app": ctx.app_name, "deployment": ctx.deployment, "id": ctx.replica_tag}}

    @api.post("/predict")
    async def predict(self, request: Request):
        # Parsed by hand: any Content-Type is accepted (curl -d sends form-encoded), and every malformed
        # body gets a 422 that says what is wrong with it.
        rows = parse_features(await request.body(), len(self.params["weights"]))
        return {"predictions": [predict_one(self.params, row) for row in rows],
                "model_version": self.params["version"]}


app = Classifier.bind()
