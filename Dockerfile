# syntax=docker/dockerfile:1
# Build stage: compile TypeScript to dist/.
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN ./node_modules/.bin/tsc -p tsconfig.build.json

# Runtime stage: production dependencies only, non-root, read-only root filesystem friendly.
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY bin ./bin
COPY crds ./crds
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["node", "/app/bin/roster.js"]
CMD ["operator"]
