"""Settings: what a node was asked for, before anything about the machine or Ray is looked at.

Owns the table of settings (fields), resolving them from defaults < YAML file < KubeRay's command <
environment < flags (settings, kuberay), turning raw values into types (values), the addresses settings hold
(addresses), the errors no single value shows (checks), and reading the YAML files users write (yamlfile).

May import: errors, log. Nothing else of seedcore_boot: every layer above reads settings, so settings read none
of them (the layer rule, docs/development.md; setup.cfg's [importlinter] checks it).
"""
