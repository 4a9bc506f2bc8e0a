// Command kubernetes-provider is the Pulumi Kubernetes resource provider
// (installed as pulumi-resource-kubernetes). Upstream's own main package
// embeds two files that its `go generate` step writes next to it, and those
// files are not in the module zip, so that package cannot be built from the
// module cache. This one embeds the same two files, written into this folder
// by `go run ./gen` (see gen/main.go), and starts the provider the same way.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

// Both files are generated and git-ignored; `go build` fails until gen ran.
var (
	//go:embed schema-embed.json
	schemaJSON []byte

	//go:embed terraform-mapping-embed.json
	terraformMappingJSON []byte
)

func main() {
	// version.Version is set at link time with -X, as upstream's Makefile does.
	provider.Serve("kubernetes", version.Version, schemaJSON, terraformMappingJSON)
}
