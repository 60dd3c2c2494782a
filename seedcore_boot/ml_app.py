"""`seedcore_boot.ml_app:app`: the sample Serve application under the import path users' Serve configs and the
docs name (default_serve.yaml, deploy/kuberay/). The application itself is serve/ml_app.py."""

from .serve.ml_app import app  # noqa: F401
