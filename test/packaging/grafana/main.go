// dashboard-check FILE...: decodes each Grafana dashboard JSON strictly against Grafana's
// dashboard schema (github.com/grafana/grafana-foundation-sdk: unknown fields, wrong types and
// missing required fields are errors, panel options and fieldConfig are checked per panel
// plugin), then runs the schema's validations. Prints one line per problem; exits 1 if any.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dashboard-check FILE...")
		os.Exit(2)
	}
	plugins.RegisterDefaultPlugins()
	failed := false
	for _, path := range os.Args[1:] {
		raw, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		var d dashboard.Dashboard
		found := problems(d.UnmarshalJSONStrict(raw))
		if len(found) == 0 {
			found = problems(d.Validate())
		}
		for _, p := range found {
			fmt.Printf("%s: %s\n", path, p)
		}
		if len(found) > 0 {
			failed = true
			continue
		}
		fmt.Printf("%s: ok, %d panels, schemaVersion %d\n", path, len(d.Panels), d.SchemaVersion)
	}
	if failed {
		os.Exit(1)
	}
}

// problems lists an error's messages; the generated code returns an empty cog.BuildErrors (a
// non-nil error) when there is nothing wrong.
func problems(err error) []string {
	if err == nil {
		return nil
	}
	var build cog.BuildErrors
	if !errors.As(err, &build) {
		return []string{err.Error()}
	}
	out := make([]string, 0, len(build))
	for _, e := range build {
		out = append(out, e.Path+": "+e.Message)
	}
	return out
}
