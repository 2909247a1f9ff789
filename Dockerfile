# syntax=docker/dockerfile:1
# usher in a container: built with the dev dependencies (TypeScript), run with the production
# ones only, as an unprivileged user, with the config mounted read-only at /etc/usher.
#
#   docker build -t usher .
#   docker run -d --name usher --read-only --tmpfs /tmp -p 80:80 -p 443:443 \
#     -v "$PWD/config:/etc/usher:ro" -v usher-state:/var/lib/usher usher
#   docker kill -s HUP usher     # reload the config (so does saving the file)
#   docker kill -s USR1 usher    # reopen the access log file
#   docker stop -t 30 usher      # SIGTERM: drain (give it more than timeouts.graceful_shutdown)
#
# Mount the config *directory*: usher watches it, and an editor that replaces the file would
# leave a single-file bind mount pointing at the old one.

ARG NODE_VERSION=24

# ---- build: compile src/ to dist/src/ -------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY scripts/build.js scripts/
COPY bin/ bin/
COPY src/ src/
RUN npm run build --silent && find dist/src -name "*.map" -delete

# ---- production dependencies only -----------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts

# ---- runtime --------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# tini as PID 1: forwards SIGTERM, SIGHUP and SIGUSR1 to usher (which drains, reloads and
# reopens its logs on them) and reaps any orphaned child. `docker run --init` would do the same.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system usher \
 && useradd --system --gid usher --home-dir /var/lib/usher --no-create-home --shell /usr/sbin/nologin usher \
 && mkdir -p /etc/usher /var/lib/usher \
 && chown usher:usher /var/lib/usher \
 && chmod 0700 /var/lib/usher
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules/ node_modules/
COPY package.json ./
COPY bin/ bin/
COPY --from=build /src/dist/src/ dist/src/
COPY deploy/healthcheck.js deploy/
USER usher
# The ACME storage (acme.storage: /var/lib/usher/acme) and a disk cache belong on this volume.
VOLUME ["/var/lib/usher"]
# HTTP and HTTPS as the config's listeners say; Docker (20.10+) lets an unprivileged process bind
# ports below 1024 inside a container (net.ipv4.ip_unprivileged_port_start=0).
EXPOSE 80 443
# GET /status of the admin API on loopback, inside the container (admin: { address: 127.0.0.1:9901 });
# USHER_HEALTHCHECK_URL points it elsewhere (a route such as /healthz), USHER_HEALTHCHECK_TOKEN
# carries the admin token. Without an admin listener, set the URL or run with --no-healthcheck.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 CMD ["node", "/app/deploy/healthcheck.js"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/bin/usher.js"]
CMD ["serve", "--config", "/etc/usher/usher.yaml"]
