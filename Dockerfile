# syntax=docker/dockerfile:1
# Updraft image: `docker build -t updraft .`, or `docker compose build`.
# Default command: `updraft standalone` (SQLite, everything in one process); docker-compose.yaml
# runs `updraft scheduler|webserver|worker` against PostgreSQL instead.

FROM rust:1-bookworm AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cache mounts keep the crate registry and build outputs between builds of a changed tree; the
# binaries are copied out because the target dir is not part of the image layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release \
    && mkdir -p /out \
    && cp target/release/updraft target/release/updraft-bench /out/

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates bash \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /out/updraft /out/updraft-bench /usr/local/bin/
WORKDIR /opt/updraft
COPY dags/ /opt/updraft/dags/
COPY templates/ /opt/updraft/templates/
COPY migrations/ /opt/updraft/migrations/
ENV UPDRAFT_HOME=/opt/updraft/home \
    UPDRAFT_DAGS_FOLDER=/opt/updraft/dags \
    UPDRAFT_WEB_PORT=8080
EXPOSE 8080
ENTRYPOINT ["updraft"]
CMD ["standalone"]
