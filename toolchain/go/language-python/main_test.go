package main

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
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

// pluginMain stands in for a policy pack: like pulumi-policy it writes its port without a flush
// and then serves until SIGINT. PLUGIN_MODE=exit makes it fail at once; PLUGIN_MODE=stubborn makes
// it ignore SIGINT, so only the kill after the grace period ends it.
const pluginMain = `import os, signal, sys, time
mode = os.environ.get("PLUGIN_MODE", "")
if mode == "exit":
    print("cannot start", file=sys.stderr)
    sys.exit(3)
if mode == "stubborn":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
sys.stdout.buffer.write(b"4242\n")
print("cwd=" + os.getcwd())
print("args=" + ",".join(sys.argv[1:]))
print("mark=" + os.environ.get("MARK", "") + " venv=" + os.environ.get("VIRTUAL_ENV", ""))
print("to-stderr", file=sys.stderr)
with open(os.environ["PIDFILE"] + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(os.environ["PIDFILE"] + ".tmp", os.environ["PIDFILE"])
try:
    time.sleep(600)
except KeyboardInterrupt:
    open(os.environ["PIDFILE"] + ".interrupted", "w").close()
`

// pluginRun is one RunPlugin call as the engine makes it, with what came back so far.
type pluginRun struct {
	stream         grpc.ServerStreamingClient[pulumirpc.RunPluginResponse]
	cancel         context.CancelFunc
	stdout, stderr strings.Builder
	exitCode       *int32
	err            error // the stream's end: io.EOF, or the RPC error
}

// recvUntil reads messages until done() holds or the stream ends; the call's 30 s deadline
// (see start) ends a Recv that waits too long.
func (r *pluginRun) recvUntil(t *testing.T, done func() bool) {
	t.Helper()
	for !done() && r.err == nil && r.exitCode == nil {
		msg, err := r.stream.Recv()
		if err != nil {
			r.err = err
			return
		}
		switch out := msg.GetOutput().(type) {
		case *pulumirpc.RunPluginResponse_Stdout:
			r.stdout.Write(out.Stdout)
		case *pulumirpc.RunPluginResponse_Stderr:
			r.stderr.Write(out.Stderr)
		case *pulumirpc.RunPluginResponse_Exitcode:
			code := out.Exitcode
			r.exitCode = &code
		}
	}
}

// waitGone waits (at most 20 s) until the process with the pid in pidFile no longer exists; the
// host reaps its child, so a dead plugin leaves no zombie for kill(pid, 0) to find.
func waitGone(t *testing.T, pidFile string) {
	t.Helper()
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
	}
	t.Fatalf("plugin process %d still runs 20 s after it was stopped", pid)
}

// TestRunPlugin runs a stand-in policy pack through a real gRPC server and client, as the engine
// does: the port line arrives while the plugin runs (streamed, unbuffered), the plugin runs in
// Pwd with the engine's args and env and its virtualenv activated, a failing plugin's exit code
// comes back, and the child ends (SIGINT, or SIGKILL after the grace period) when the engine
// cancels the call or the host shuts down. Setup errors name the pack.
func TestRunPlugin(t *testing.T) {
	python3, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is not on PATH; the language host tests run a stand-in plugin with it")
	}
	// A virtualenv as IsVirtualEnv sees one: bin/python.
	venv := t.TempDir()
	if err := os.MkdirAll(filepath.Join(venv, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(python3, filepath.Join(venv, "bin", "python")); err != nil {
		t.Fatal(err)
	}
	pack := t.TempDir()
	writeFile(t, pack, "__main__.py", pluginMain)
	project := t.TempDir()
	options, err := structpb.NewStruct(map[string]any{"virtualenv": venv})
	if err != nil {
		t.Fatal(err)
	}

	stopped := make(chan struct{})
	h := &host{stopped: stopped}
	srv := grpc.NewServer()
	pulumirpc.RegisterLanguageRuntimeServer(srv, h)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pulumirpc.NewLanguageRuntimeClient(conn)
	pluginStopGrace = 500 * time.Millisecond

	start := func(t *testing.T, dir string, opts *structpb.Struct, env ...string) *pluginRun {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		stream, err := client.RunPlugin(ctx, &pulumirpc.RunPluginRequest{
			Pwd:  project,
			Args: []string{"--tracing", "http://127.0.0.1:9/trace", "127.0.0.1:1"},
			Env:  append([]string{"PATH=" + os.Getenv("PATH"), "MARK=from-engine", "VIRTUAL_ENV=/elsewhere"}, env...),
			Info: &pulumirpc.ProgramInfo{RootDirectory: dir, ProgramDirectory: dir, EntryPoint: ".", Options: opts},
			Kind: "analyzer",
		})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		return &pluginRun{stream: stream, cancel: cancel}
	}
	running := func(t *testing.T, env ...string) (*pluginRun, string) {
		t.Helper()
		pidFile := filepath.Join(t.TempDir(), "pid")
		run := start(t, pack, options, append(env, "PIDFILE="+pidFile)...)
		// stdout and stderr travel separately: wait for the last line of each, then the pid file.
		run.recvUntil(t, func() bool {
			return strings.Contains(run.stdout.String(), "mark=") && strings.Contains(run.stderr.String(), "to-stderr")
		})
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(pidFile); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the plugin wrote no pid file within 20 s")
			}
		}
		if run.err != nil || run.exitCode != nil {
			t.Fatalf("plugin ended early (%v, code %v): %s", run.err, run.exitCode, run.stderr.String())
		}
		return run, pidFile
	}

	t.Run("streams output and stops when the engine cancels", func(t *testing.T) {
		run, pidFile := running(t)
		first, _, _ := strings.Cut(run.stdout.String(), "\n")
		if first != "4242" {
			t.Fatalf("first stdout line = %q, want the port 4242", first)
		}
		for _, want := range []string{
			"cwd=" + project, "args=--tracing,http://127.0.0.1:9/trace,127.0.0.1:1", "mark=from-engine venv=" + venv,
		} {
			if !strings.Contains(run.stdout.String(), want) {
				t.Errorf("stdout %q lacks %q", run.stdout.String(), want)
			}
		}
		run.cancel()
		waitGone(t, pidFile)
		if _, err := os.Stat(pidFile + ".interrupted"); err != nil {
			t.Fatal("the plugin was not interrupted (SIGINT) before it ended")
		}
	})

	t.Run("kills a plugin that ignores SIGINT", func(t *testing.T) {
		run, pidFile := running(t, "PLUGIN_MODE=stubborn")
		run.cancel()
		waitGone(t, pidFile)
	})

	t.Run("reports the exit code", func(t *testing.T) {
		run := start(t, pack, options, "PLUGIN_MODE=exit", "PIDFILE=/nonexistent")
		defer run.cancel()
		run.recvUntil(t, func() bool { return false })
		if run.exitCode == nil || *run.exitCode != 3 {
			t.Fatalf("exit code = %v (stream end %v), want 3", run.exitCode, run.err)
		}
		if !strings.Contains(run.stderr.String(), "cannot start") {
			t.Fatalf("stderr %q lacks the plugin's message", run.stderr.String())
		}
	})

	t.Run("names the pack when it cannot run", func(t *testing.T) {
		empty := t.TempDir()
		missingVenv, err := structpb.NewStruct(map[string]any{"virtualenv": filepath.Join(empty, "no-venv")})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			dir  string
			opts *structpb.Struct
			want string
		}{
			{empty, options, "has no __main__.py"},
			{pack, missingVenv, "no-venv"},
			{pack, nil, filepath.Join(pack, "venv")}, // upstream's default: venv in the pack
		} {
			run := start(t, c.dir, c.opts)
			run.recvUntil(t, func() bool { return false })
			run.cancel()
			if status.Code(run.err) != codes.FailedPrecondition || !strings.Contains(run.err.Error(), c.dir) ||
				!strings.Contains(run.err.Error(), c.want) {
				t.Errorf("RunPlugin(%s) ended with %v, want FailedPrecondition naming %s and %q", c.dir, run.err, c.dir, c.want)
			}
		}
	})

	// Last: the host stays stopped afterwards.
	t.Run("ends the plugin when the host shuts down", func(t *testing.T) {
		run, pidFile := running(t)
		defer run.cancel()
		close(stopped)
		waitGone(t, pidFile)
		run.recvUntil(t, func() bool { return false })
		if status.Code(run.err) != codes.Canceled {
			t.Fatalf("stream ended with %v, want Canceled", run.err)
		}
	})
}

// About answers from the program's virtualenv interpreter with one process: its real
// executable path and its version, without running pip.
func TestAbout(t *testing.T) {
	python3, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is not on PATH; TestAbout asks a real interpreter")
	}
	venv := t.TempDir()
	if err := os.MkdirAll(filepath.Join(venv, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A wrapper that logs its arguments, so the test sees which commands About ran.
	log := filepath.Join(venv, "calls.log")
	writeFile(t, venv, "bin/python", "#!/bin/sh\necho \"$@\" >> "+log+"\nexec "+python3+" \"$@\"\n")
	if err := os.Chmod(filepath.Join(venv, "bin", "python"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, venv, "pyvenv.cfg", "home = "+filepath.Dir(python3)+"\n")
	options, err := structpb.NewStruct(map[string]any{"virtualenv": venv})
	if err != nil {
		t.Fatal(err)
	}
	project := t.TempDir()
	resp, err := (&host{}).About(t.Context(), &pulumirpc.AboutRequest{Info: &pulumirpc.ProgramInfo{
		RootDirectory: project, ProgramDirectory: project, EntryPoint: ".", Options: options,
	}})
	if err != nil {
		t.Fatal(err)
	}
	want, err := exec.Command(python3, "-c", "import platform, sys; print(sys.executable); print(platform.python_version())").Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(want)), "\n")
	if resp.GetVersion() != lines[1] || resp.GetExecutable() == "" {
		t.Fatalf("About = %q %q, want version %q and an executable", resp.GetExecutable(), resp.GetVersion(), lines[1])
	}
	calls, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(calls), "\n"); got != 1 || strings.Contains(string(calls), "pip") {
		t.Fatalf("About ran %d interpreter commands (%q), want one and no pip", got, calls)
	}
}
