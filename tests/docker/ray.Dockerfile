# Stand-in for rayproject/ray:2.20.0-py310, built offline by standins.sh (context: the wheelhouse).
# Laid out like the upstream image: user ray (uid 1000, group users), Python in /home/ray/anaconda3 on PATH.
# Debian bookworm's Python is 3.11 where upstream's is 3.10; Ray 2.20.0 is the same.
ARG BASE
FROM ${BASE}
RUN useradd --create-home --uid 1000 --gid users --shell /bin/bash ray
COPY . /opt/wheelhouse
RUN python3 -m venv /home/ray/anaconda3 \
 && /home/ray/anaconda3/bin/pip install --no-cache-dir --no-index --find-links /opt/wheelhouse \
      "ray[default,serve]==2.20.0" \
 && chown -R ray:users /home/ray \
 && echo 'export PATH=/home/ray/anaconda3/bin:$PATH' > /etc/profile.d/ray-venv.sh
# KubeRay runs wait-gcs-ready (and, without the overwrite annotation, the Ray container) with `bash -lc`:
# Debian's /etc/profile resets PATH, so the venv goes back on it there (Ubuntu's, in the real image, keeps it).
# pip in images built FROM this one installs from the wheelhouse: there is no network in these builds.
ENV PATH=/home/ray/anaconda3/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/home/ray PIP_NO_INDEX=1 PIP_FIND_LINKS=/opt/wheelhouse
USER ray
WORKDIR /home/ray
CMD ["/bin/bash"]
