# Stand-in for python:3.11-slim where no container registry is reachable: Debian
# bookworm's Python 3.11 with venv and pip, on the base image that
# hack/kind/build-offline-images.sh makes with debootstrap. Like the official image it
# has `python` on PATH, `python -m venv` working, and a C.UTF-8 locale. pip trusts the
# system's CA store (which has the building machine's local CAs, see the build script)
# rather than its own bundle.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv python-is-python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >/etc/pip.conf
ENV LANG=C.UTF-8
CMD ["python3"]
