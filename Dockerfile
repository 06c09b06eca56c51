# The gitops controller image: `gitops run` on Python 3.11 with git and ssh.
#
#   docker build -t registry.example.com/platform/gitops:0.1.0 .
#
# Two stages: the build stage installs the project into a virtualenv; the runtime stage copies
# only that virtualenv onto the same slim base, with git and openssh-client (the fleet
# repository is fetched with the git command line) and no compiler, pip cache or sources.
# Everything is pinned: the base image by its full version, the Debian packages by version
# (bump them together with the base image: Debian keeps only the current point release).
# The process runs as the numeric non-root user 65532, which deploy/base/deployment.yaml
# names in its securityContext, on a read-only root filesystem (HOME and --cache-dir are
# emptyDir volumes).

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gitops ./gitops
RUN python -m venv /opt/gitops \
    && /opt/gitops/bin/pip install --no-compile . \
    && /opt/gitops/bin/python -m compileall -q /opt/gitops/lib

FROM ${PYTHON_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        git=1:2.39.5-0+deb12u3 \
        openssh-client=1:9.2p1-2+deb12u10 \
        ca-certificates=20230311+deb12u1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/gitops /opt/gitops
ENV PATH=/opt/gitops/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/opt/gitops/bin/gitops"]
CMD ["run", "--help"]
