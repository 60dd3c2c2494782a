"""The machine a node runs on, before and around Ray: what is checked, claimed or found on it.

Owns the host's checks (hostcheck, objectstore), the port plan and its preflight (ports) and the claims on it
(portclaim), the address the node advertises (nodeaddr), each port's facts (reach) for the firewall list
(firewall) and the exposure report (exposure), the node's files in the state dir (state), and the processes a
node leaves when its supervisor is gone (leftovers).

May import: ray, config, errors, log.
"""
