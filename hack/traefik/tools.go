//go:build tools

// Package tools records the main package that hack/build-gateways.sh builds from this
// module, so that `go mod tidy` keeps its dependencies in go.mod/go.sum. The build tag
// keeps it out of every real build.
package tools

import (
	_ "github.com/traefik/traefik/v3/cmd/traefik"
)
