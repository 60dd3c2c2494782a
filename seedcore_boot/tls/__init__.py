"""Mutual TLS across the cluster from one CA: certificates (certs), a node's TLS files, the checks before Ray
starts and the variables Ray reads (nodetls), and the `seedcore-boot tls` commands (tlscmd).

May import: host, ray, config, errors, log. Not serve (the two concerns are independent), not node.
"""
