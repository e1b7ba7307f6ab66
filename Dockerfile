# Static binary on a distroless nonroot base: no shell, no package manager.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/cassandra-tls-agent/cassandra-tls-agent/internal/version.Version=${VERSION} -X github.com/cassandra-tls-agent/cassandra-tls-agent/internal/version.Commit=${COMMIT}" \
      -o /out/cassandra-tls-agent ./cmd/cassandra-tls-agent

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/cassandra-tls-agent /usr/local/bin/cassandra-tls-agent
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/cassandra-tls-agent"]
