# syntax=docker/dockerfile:1
# The payment service, the Stripe sandbox (`node dist/src/sandbox/cli.js`) and the refund worker
# (`ROLE=worker`) all run from this one image; docker-compose.yml shows how they fit together.
#
# Node 24 is the current LTS and inside package.json's engines (>=20.19.0 <25); build with
# `--build-arg NODE_VERSION=22` for the previous LTS. Every stage uses the same base image, so
# better-sqlite3's native binary is built for exactly the runtime it is copied into.
ARG NODE_VERSION=24

# ---- deps: every dependency, for the build ------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS deps
# better-sqlite3 compiles from source when no prebuilt binary matches the platform.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV SCARF_ANALYTICS=false
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

# ---- build: TypeScript to dist/, the service bundled into dist/src/main.bundle.cjs + its launcher ---------
FROM deps AS build
COPY tsconfig.json tsconfig.build.json openapi.yaml ./
COPY generated ./generated
COPY scripts/bundle.mjs ./scripts/bundle.mjs
COPY src ./src
COPY client ./client
RUN npm run build

# ---- prod-deps: runtime dependencies only ----------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS prod-deps
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV SCARF_ANALYTICS=false
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- runtime: no compilers, no dev dependencies, not root -------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# The live heap is ~40 MB under load; without a cap V8 lets old space grow to ~160 MB before a full GC.
ENV NODE_ENV=production \
    PORT=5000 \
    HOST=0.0.0.0 \
    NODE_OPTIONS="--max-old-space-size=128 --max-semi-space-size=8"
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# package.json's "type": "module" makes the launcher (dist/src/main.bundle.mjs) an ES module; it runs the
# CommonJS bundle beside it. The service reads openapi.yaml at run time (validator, /docs, /openapi.json) and
# serves generated/openapi-3.0.json.
COPY package.json openapi.yaml ./
COPY generated ./generated
# V8's code cache of the bundle, made under this stage's NODE_OPTIONS (V8 refuses one made under other flags):
# ~15% off every start (src/launch/code-cache.ts). Written while dist/ is still root's; the service only reads it.
RUN node dist/src/launch/prime.js
# SQLite's default location (DATABASE_URL=sqlite:./data/payments.db) must be writable by the service user.
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 5000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 5000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/src/main.bundle.mjs"]
