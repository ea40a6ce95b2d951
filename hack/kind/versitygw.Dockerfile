# The S3 store of `make e2e-kind`: the Versity S3 gateway (the static binary of
# hack/build-versity.sh) serving the posix directory /data, an emptyDir in its pod.
# Its root credentials come from the environment: ROOT_ACCESS_KEY, ROOT_SECRET_KEY.
# hack/e2e-kind.sh builds it from a context holding only the binary:
#   docker build -f hack/kind/versitygw.Dockerfile --build-arg BASE_IMAGE=... CONTEXT
# BASE_IMAGE: any Debian-like image; without a registry, the Debian base that
# hack/kind/build-offline-images.sh makes (KIND_OFFLINE_BASE_IMAGE).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
COPY versitygw /usr/local/bin/versitygw
USER 65532:65532
EXPOSE 7070
ENTRYPOINT ["/usr/local/bin/versitygw"]
CMD ["--port", ":7070", "posix", "/data"]
