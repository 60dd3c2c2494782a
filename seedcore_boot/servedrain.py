"""`seedcore_boot.servedrain.install`: the worker setup hook path a head hands to Ray (serve/servedrain.py HOOK,
set in the head's environment by node/rayenv.py). Heads of every seedcore-boot version hand this one path, so it
must import on every version, or a head and its workers of different versions no longer drain together.
The hook itself is serve/servedrain.py."""

from .serve.servedrain import install  # noqa: F401
