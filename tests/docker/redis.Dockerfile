# Stand-in for redis:7 (Debian bookworm ships 7.0): redis-server on 6379, data in /data, as user redis.
ARG BASE
FROM ${BASE}
RUN mkdir -p /data && chown redis:redis /data
USER redis
WORKDIR /data
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no", "--bind", "0.0.0.0", "--dir", "/data"]
