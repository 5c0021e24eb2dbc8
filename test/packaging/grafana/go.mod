// Checks Grafana dashboards against Grafana's dashboard schema, as the Grafana Foundation SDK
// generates it (types and strict decoding from Grafana's own schema, panel options per plugin).
module roster.dev/test/packaging/grafana

go 1.24.0

require github.com/grafana/grafana-foundation-sdk/go v0.0.22
