# The intercept gateway as a container image.
#
#   docker build -t intercept .                    # HTTP upstreams only (distroless, ~30 MB)
#   docker build -t intercept:node --target node . # also stdio servers from npm (npx)
#
# See docs/gateway.md ("Docker") and deploy/compose.yaml.

FROM rust:1-bookworm AS build
WORKDIR /src
# Cargo reads every target the manifest names, benches included.
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin intercept

# For servers that run as a command: Node for npx-started MCP servers.
FROM node:20-bookworm-slim AS node
COPY --from=build /src/target/release/intercept /usr/local/bin/intercept
COPY policies /usr/share/intercept/policies
USER node
ENV INTERCEPT_AUDIT_DIR=/home/node/.intercept/events
EXPOSE 8080
ENTRYPOINT ["intercept"]
CMD ["serve", "/etc/intercept/gateway.yaml", "--bind", "0.0.0.0", "--port", "8080"]

# The default: the native binary alone, for servers reached by URL.
FROM gcr.io/distroless/cc-debian12:nonroot AS gateway
COPY --from=build /src/target/release/intercept /usr/local/bin/intercept
COPY policies /usr/share/intercept/policies
ENV INTERCEPT_AUDIT_DIR=/home/nonroot/.intercept/events
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/intercept"]
CMD ["serve", "/etc/intercept/gateway.yaml", "--bind", "0.0.0.0", "--port", "8080"]
