# Stand-in for prom/prometheus:v2.42.0 (Debian bookworm ships 2.42.0), laid out like the upstream image:
# /bin/prometheus as entrypoint, config in /etc/prometheus, data in /prometheus, running as nobody.
ARG BASE
FROM ${BASE}
RUN ln -s /usr/bin/prometheus /bin/prometheus 2>/dev/null || true \
 && mkdir -p /etc/prometheus /prometheus /usr/share/prometheus \
 && cp /etc/prometheus/prometheus.yml /etc/prometheus/prometheus.yml.debian 2>/dev/null || true \
 && chown -R nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
