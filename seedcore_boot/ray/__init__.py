"""The adapters to Ray 2.20 itself: what we know of Ray and how we talk to it, with no policy of our own.

Owns the `ray start` argv (raycmd) and Ray's own CLI minus some waits (raycli), Ray's components in the
process table (components), the GCS calls we make without importing ray (gcsprobe, protowire, and tlsprobe
for a failed handshake), the health probes of a node's endpoints (health), how long a head takes to declare a
node dead (raydeath), where a node's Ray keeps its files (raytemp), GCS fault tolerance with Redis (redisft),
and the tails of Ray's logs (raylogs).

May import: config, errors, log.
"""
