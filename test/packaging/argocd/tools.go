//go:build tools

// Pins the argocd CLI used by the packaging tests; build.sh builds
// github.com/argoproj/argo-cd/v3/cmd from here (the one binary Argo CD ships, run as `argocd`).
package tools

import (
	_ "github.com/argoproj/argo-cd/v3/cmd"
)
