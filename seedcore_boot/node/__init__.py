"""One node's lifecycle, head or worker: its plan (plan, rayenv), the flow from preflight to stop (flow) around
one supervisor of `ray start` (supervisor), a worker's wait for its head and its watch of it (headwait,
headwatch), a worker's drain (drain), `--dry-run`'s checks (dryrun) and `seedcore-boot status` (status).

May import: serve, tls, host, ray, config, errors, log. Only the CLI (and docgen) import node.
"""
