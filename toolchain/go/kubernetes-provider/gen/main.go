// Command gen writes the two files main.go embeds, from the schema.json and
// terraform-mapping.json that ship in the provider module's
// cmd/pulumi-resource-kubernetes folder, the way upstream's generate.go does:
//   - schema-embed.json: the schema decoded into pulumi's schema.PackageSpec,
//     its version field set, and encoded again with encoding/json (compact,
//     fields in struct order, map keys sorted, unknown fields dropped);
//   - terraform-mapping-embed.json: the mapping decoded into a generic value
//     and encoded again with encoding/json (compact, keys sorted).
//
// Going through the same Go types and encoder (not e.g. Python's json) keeps
// the bytes identical to what an upstream build embeds.
//
// Usage, from the module folder: go run ./gen -version 4.25.0
package main

import (
	"encoding/json"
	"flag"
	"log"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

const providerModule = "github.com/pulumi/pulumi-kubernetes/provider/v4"

func main() {
	version := flag.String("version", os.Getenv("VERSION"), "provider version written into the schema (upstream: VERSION)")
	out := flag.String("out", ".", "folder to write the embed files to")
	flag.Parse()
	if *version == "" {
		log.Fatal("gen: no version: pass -version or set VERSION")
	}

	src := filepath.Join(moduleDir(), "cmd", "pulumi-resource-kubernetes")

	var spec schema.PackageSpec
	readJSON(filepath.Join(src, "schema.json"), &spec)
	spec.Version = *version
	writeJSON(filepath.Join(*out, "schema-embed.json"), spec)

	var mapping any
	readJSON(filepath.Join(src, "terraform-mapping.json"), &mapping)
	writeJSON(filepath.Join(*out, "terraform-mapping-embed.json"), mapping)
}

// moduleDir returns where the go command keeps the provider module at the
// version this go.mod selects (downloading it if the cache lacks it), so the
// inputs always match the code being built.
func moduleDir() string {
	cmd := exec.Command("go", "mod", "download", "-json", providerModule)
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		log.Fatalf("gen: go mod download %s: %v", providerModule, err)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(raw, &info); err != nil || info.Dir == "" {
		log.Fatalf("gen: no module folder for %s: %v %s", providerModule, err, info.Error)
	}
	return info.Dir
}

func readJSON(path string, v any) {
	raw, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		log.Fatalf("gen: decode %s: %v", path, err)
	}
}

func writeJSON(path string, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		log.Fatalf("gen: encode %s: %v", path, err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		log.Fatal(err)
	}
}
