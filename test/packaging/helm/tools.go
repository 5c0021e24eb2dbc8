//go:build tools

// Pins the helm CLI used by the packaging tests; build.sh builds helm.sh/helm/v3/cmd/helm from here.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
