# The mcpgw gateway as a container image: one static binary FROM scratch,
# run as an unprivileged user (65532), no shell, no package manager.
#
#   docker build -t mcpgw .
#   docker run --rm -p 127.0.0.1:8080:8080 -e MCPGW_TOKEN="$(openssl rand -hex 32)" mcpgw
#
# Without a config of your own it serves the built-in demo server at
# /mcp/demo for clients that send "Authorization: Bearer $MCPGW_TOKEN"
# (deploy/container.yaml). Mount your config over /etc/mcpgw/mcpgw.yaml.
#
# Container servers (runtime: container) need the engine's socket and its
# group, since the gateway does not run as root:
#
#   docker run … -v /var/run/docker.sock:/var/run/docker.sock \
#     --group-add "$(stat -c %g /var/run/docker.sock)" mcpgw
#
# Anyone who can use that socket is root on the host: give it only to a
# gateway you trust with that. Workspaces of container servers are mounted
# by the engine from the host's file system, so mount them into the gateway
# at the same path (-v /srv/projects:/srv/projects).
#
# BUILDER is the image with the Go toolchain; the build runs no shell, so
# any image with Go 1.26 or later on its PATH works. VERSION and REVISION
# end up in "mcpgw version" (the build context has no .git to read them
# from):
#
#   docker build --build-arg VERSION=v1.2.3 --build-arg REVISION="$(git rev-parse HEAD)" -t mcpgw .

ARG BUILDER=golang:1.26
FROM ${BUILDER} AS build
# Marks the build stage's images, so that they can be pruned:
#   docker image prune --filter label=io.github.mcpgw.stage=build
LABEL io.github.mcpgw.stage=build
WORKDIR /out/state
WORKDIR /out/tmp
WORKDIR /src
COPY go.mod go.sum ./
RUN ["go", "mod", "download"]
COPY cmd ./cmd
COPY internal ./internal
ARG VERSION=
ARG REVISION=
ENV CGO_ENABLED=0 \
    GOFLAGS="-trimpath -buildvcs=false \"-ldflags=-s -w -X=main.version=${VERSION} -X=main.revision=${REVISION}\""
RUN ["go", "build", "-o", "/out/mcpgw", "./cmd/mcpgw"]
RUN ["/out/mcpgw", "version"]

FROM scratch
LABEL org.opencontainers.image.title=mcpgw \
      org.opencontainers.image.description="Publishes stdio MCP servers to remote MCP clients over Streamable HTTP" \
      org.opencontainers.image.source=https://github.com/mcpgw/mcpgw
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/mcpgw /usr/local/bin/mcpgw
COPY --from=build --chown=65532:65532 /out/state /var/lib/mcpgw
COPY --from=build --chown=65532:65532 /out/tmp /tmp
COPY deploy/container.yaml /etc/mcpgw/mcpgw.yaml
# HOME is the state directory: the one place the gateway's user may write
# besides /tmp, and what native servers get as their HOME.
ENV HOME=/var/lib/mcpgw
WORKDIR /var/lib/mcpgw
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/mcpgw"]
CMD ["serve", "--config", "/etc/mcpgw/mcpgw.yaml"]
