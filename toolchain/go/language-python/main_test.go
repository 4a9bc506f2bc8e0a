package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"
)

// writeFile creates dir/rel with content, making parent folders.
func writeFile(t *testing.T, dir, rel, content string) {
	t.Helper()
	path := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestScanPlugins checks the site-packages scan on a fake layout: resource plugins are reported
// with a "v" version and their server, `resource: false` and plain packages are skipped, a missing
// name comes from the folder, and a package seen through two sys.path entries is reported once.
func TestScanPlugins(t *testing.T) {
	site := t.TempDir()
	writeFile(t, site, "pulumi_kubernetes/pulumi-plugin.json", `{"resource": true, "name": "kubernetes", "version": "4.32.0"}`)
	writeFile(t, site, "pulumi_acme_corp/pulumi-plugin.json",
		`{"resource": true, "version": "v1.0.0", "server": "https://example.invalid/plugins"}`)
	writeFile(t, site, "pulumi_policy/pulumi-plugin.json", `{"resource": false}`)
	writeFile(t, site, "pulumi/__init__.py", "")
	writeFile(t, site, "pulumi_old/pulumiplugin.json", `{"resource": true, "name": "old"}`)
	other := t.TempDir()
	writeFile(t, other, "pulumi_kubernetes/pulumi-plugin.json", `{"resource": true, "name": "kubernetes", "version": "4.32.0"}`)

	got, err := scanPlugins([]string{site, filepath.Join(site, "missing"), other})
	if err != nil {
		t.Fatal(err)
	}
	want := []pluginDep{
		{Name: "acme-corp", Version: "v1.0.0", Server: "https://example.invalid/plugins"},
		{Name: "kubernetes", Version: "v4.32.0"},
		{Name: "old"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("scanPlugins:\n got %+v\nwant %+v", got, want)
	}

	writeFile(t, site, "pulumi_broken/pulumi-plugin.json", `{not json`)
	if _, err := scanPlugins([]string{site}); err == nil {
		t.Fatal("scanPlugins accepted a malformed pulumi-plugin.json")
	}
}

// TestPythonOptions checks how Pulumi.yaml runtime options select the interpreter.
func TestPythonOptions(t *testing.T) {
	root := t.TempDir()
	info := func(opts map[string]any) *pulumirpc.ProgramInfo {
		s, err := structpb.NewStruct(opts)
		if err != nil {
			t.Fatal(err)
		}
		return &pulumirpc.ProgramInfo{RootDirectory: root, ProgramDirectory: root, EntryPoint: ".", Options: s}
	}

	// A relative virtualenv resolves against the project root.
	tc, err := python(info(map[string]any{"virtualenv": "venv"}))
	if err != nil {
		t.Fatal(err)
	}
	if path, _ := tc.VirtualEnvPath(t.Context()); path != filepath.Join(root, "venv") {
		t.Fatalf("virtualenv path = %q, want %q", path, filepath.Join(root, "venv"))
	}
	if err := tc.ValidateVenv(t.Context()); err == nil {
		t.Fatal("ValidateVenv accepted a missing virtualenv")
	}

	for _, bad := range []map[string]any{{"virtualenv": 3.0}, {"toolchain": "conda"}} {
		if _, err := python(info(bad)); err == nil {
			t.Fatalf("options %v were accepted", bad)
		}
	}
}
