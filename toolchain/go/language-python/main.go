// Command pulumi-language-python is this project's Pulumi language host for Python.
//
// Upstream's host lives in a module the site's Go proxy does not serve, and the
// CLI cannot run a Python program without one. This host does the small part
// the project needs: it runs programs through the exec shim that ships in the
// pulumi/sdk/v3 module (copied next to this binary at build time), reports the
// resource plugins of the packages installed in the program's virtualenv, runs
// Python plugins (policy packs), and answers the few other RPCs the CLI and the
// Automation API make. Everything else returns codes.Unimplemented.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

const (
	// execShim is the Python script that configures the SDK from its flags and runs the program.
	execShim = "pulumi-language-python-exec"
	// exitAlreadyReported is the shim's exit code after it logged the error to the engine itself;
	// the host then only tells the engine to stop (bail) instead of adding a second message.
	exitAlreadyReported = 32
	// sdkModule is the module whose version this host reports, so the go.mod pin is the one source.
	sdkModule = "github.com/pulumi/pulumi/sdk/v3"
)

// pluginStopGrace is how long a plugin has to exit after SIGINT before it is killed: the engine
// gives its own plugins the same 5 s (plugin.Plugin's kill) before SIGKILL. A var for the tests.
var pluginStopGrace = 5 * time.Second

func main() {
	// The CLI starts language plugins as `<bin> [--logtostderr] [-v=N] [--tracing URL] <engine address>`;
	// -v and -logtostderr are registered by glog, which the logging package imports.
	tracing := flag.String("tracing", "", "emit tracing to a Zipkin-compatible endpoint (also passed to the program)")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println("v" + pluginVersion())
		return
	}
	logging.InitLogging(false, 0, false)
	cmdutil.InitTracing("pulumi-language-python", "pulumi-language-python", *tracing)

	self, err := os.Executable()
	if err != nil {
		cmdutil.Exit(fmt.Errorf("locating the language host binary: %w", err))
	}
	shim := filepath.Join(filepath.Dir(self), execShim)
	if _, err := os.Stat(shim); err != nil {
		cmdutil.Exit(fmt.Errorf("missing %s next to the language host (run `make setup`): %w", execShim, err))
	}

	// The engine address is the last positional argument. It is absent when the host is started by
	// hand for PULUMI_DEBUG_LANGUAGES; the engine then sends it in Handshake.
	h := &host{shim: shim, tracing: *tracing}
	h.engine.Store(flag.Arg(0))

	// Stop on Ctrl-C, and when the engine stops answering health checks, so no orphan outlives it.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	if flag.Arg(0) != "" {
		if err := rpcutil.Healthcheck(ctx, flag.Arg(0), 5*time.Minute, cancel); err != nil {
			cmdutil.Exit(fmt.Errorf("starting the engine health check: %w", err))
		}
	}
	// Plugins started by RunPlugin end with the host: the server's graceful stop waits for
	// running RPCs, and a policy pack never returns by itself.
	h.stopped = ctx.Done()
	stop := make(chan bool)
	go func() { <-ctx.Done(); close(stop) }()

	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: stop,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, h)
			return nil
		},
		Options: rpcutil.TracingServerInterceptorOptions(nil),
	})
	if err != nil {
		cmdutil.Exit(fmt.Errorf("starting the language host RPC server: %w", err))
	}
	// The CLI reads the port from the first line of stdout.
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		cmdutil.Exit(fmt.Errorf("language host RPC server stopped: %w", err))
	}
}

// pluginVersion is the version of the sdk/v3 module this binary was built from: the go.mod pin,
// which is also the CLI's version, so no -X stamp can drift from it.
func pluginVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == sdkModule {
				return strings.TrimPrefix(dep.Version, "v")
			}
		}
	}
	return "0.0.0"
}

// host implements pulumirpc.LanguageRuntimeServer.
type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	shim    string // absolute path of pulumi-language-python-exec
	tracing string // tracing endpoint forwarded to the program

	engine atomic.Value // engine gRPC address (string); set at start or by Handshake

	stopped <-chan struct{} // closed when the host shuts down; nil (never) in tests
}

func (h *host) engineAddress() string {
	addr, _ := h.engine.Load().(string)
	return addr
}

// Handshake receives the engine address when the CLI attached to an already running host.
func (h *host) Handshake(_ context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	if addr := req.GetEngineAddress(); addr != "" {
		h.engine.Store(addr)
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: pluginVersion()}, nil
}

// python resolves the interpreter for a program from its Pulumi.yaml runtime options:
// `virtualenv` (relative to the project root, or absolute) and `toolchain` (pip, uv or poetry;
// default pip, since the project's venv is a plain one made by `make setup`).
func python(info *pulumirpc.ProgramInfo) (toolchain.Toolchain, error) {
	opts := info.GetOptions().AsMap()
	venv, ok := opts["virtualenv"].(string)
	if !ok && opts["virtualenv"] != nil {
		return nil, errors.New("the 'virtualenv' runtime option in Pulumi.yaml must be a string")
	}
	po := toolchain.PythonOptions{
		Root: info.GetRootDirectory(), ProgramDir: info.GetProgramDirectory(), Virtualenv: venv, Toolchain: toolchain.Pip,
	}
	if opts["typechecker"] != nil { // type checks run in `make test`, not on every preview
		return nil, errors.New("the 'typechecker' runtime option is not supported by this language host")
	}
	switch tc := opts["toolchain"]; tc {
	case nil, "pip":
	case "uv":
		po.Toolchain = toolchain.Uv
	case "poetry":
		po.Toolchain = toolchain.Poetry
	default:
		return nil, fmt.Errorf("unsupported 'toolchain' runtime option %v (want pip, uv or poetry)", tc)
	}
	return toolchain.ResolveToolchain(po)
}

// validPython is python() plus a check that the virtualenv exists, with upstream's how-to-fix text.
func validPython(ctx context.Context, info *pulumirpc.ProgramInfo) (toolchain.Toolchain, error) {
	tc, err := python(info)
	if err != nil {
		return nil, err
	}
	return tc, tc.ValidateVenv(ctx)
}

// Run executes the program: `<venv python> -u pulumi-language-python-exec <flags> <entry point> <args>`
// in the program directory, with config passed in the environment variables the SDK reads.
func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	info := req.GetInfo()
	if info == nil { // engines before ProgramInfo only sent pwd and program
		info = &pulumirpc.ProgramInfo{RootDirectory: req.GetPwd(), ProgramDirectory: req.GetPwd(), EntryPoint: req.GetProgram()}
	}
	tc, err := validPython(ctx, info)
	if err != nil { // a user-facing problem: report it as the run's error, not as an RPC failure
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}

	// Flags as the shim's argparse defines them. --parallel and --dry_run are always sent: the
	// shim converts them unconditionally.
	args := []string{h.shim, "--monitor", req.GetMonitorAddress(), "--engine", h.engineAddress(),
		"--project", req.GetProject(), "--stack", req.GetStack(),
		"--pwd", info.GetProgramDirectory(), "--root_directory", info.GetRootDirectory(),
		"--dry_run", strconv.FormatBool(req.GetDryRun()), "--parallel", strconv.Itoa(int(req.GetParallel()))}
	if org := req.GetOrganization(); org != "" {
		args = append(args, "--organization", org)
	}
	if h.tracing != "" {
		args = append(args, "--tracing", h.tracing)
	}
	entry := info.GetEntryPoint()
	if entry == "" {
		entry = "." // the program directory's __main__.py
	}
	args = append(append(args, entry), req.GetArgs()...)

	// With `--attach-debugger` the program runs under debugpy (a dependency of the venv), and the
	// engine is told where to attach once the process is up.
	debugPort := 0
	if req.GetAttachDebugger() {
		if debugPort, err = freePort(); err != nil {
			return nil, err
		}
		// Frozen stdlib modules make debugpy warn that breakpoints may be missed.
		args = append([]string{"-Xfrozen_modules=off", "-m", "debugpy", "--listen", fmt.Sprintf("127.0.0.1:%d", debugPort), "--wait-for-client"}, args...)
	}

	cmd, err := tc.Command(ctx, append([]string{"-u"}, args...)...)
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	config := req.GetConfig()
	if config == nil { // the shim iterates over it: send {} rather than null
		config = map[string]string{}
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	secretKeys, err := json.Marshal(append([]string{}, req.GetConfigSecretKeys()...)) // [] rather than null
	if err != nil {
		return nil, fmt.Errorf("encoding config secret keys: %w", err)
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, "PULUMI_CONFIG="+string(configJSON), "PULUMI_CONFIG_SECRET_KEYS="+string(secretKeys))
	cmd.Dir = info.GetProgramDirectory()
	// The engine shows the host's stdout/stderr as the program's output.
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	logging.V(5).Infof("running %s %s", cmd.Path, strings.Join(cmd.Args[1:], " "))

	if err := cmd.Start(); err != nil {
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("could not start Python (%s): %v", cmd.Path, err)}, nil
	}
	if debugPort != 0 {
		if err := h.startDebugging(ctx, req.GetProject(), debugPort); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, err
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return &pulumirpc.RunResponse{}, nil
	case errors.As(err, &exit) && exit.ExitCode() == exitAlreadyReported:
		return &pulumirpc.RunResponse{Bail: true}, nil
	case errors.As(err, &exit) && exit.ExitCode() > 0:
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Python program exited with code %d", exit.ExitCode())}, nil
	default:
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Python program did not finish: %v", err)}, nil
	}
}

// freePort asks the kernel for an unused TCP port for debugpy to listen on.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startDebugging tells the engine a debugpy server waits on port, in the DAP attach form IDEs use.
func (h *host) startDebugging(ctx context.Context, project string, port int) error {
	conn, err := grpc.NewClient(h.engineAddress(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connecting to the engine: %w", err)
	}
	defer conn.Close()
	config, err := structpb.NewStruct(map[string]any{
		"name": project, "type": "python", "request": "attach",
		"connect": map[string]any{"host": "127.0.0.1", "port": port},
	})
	if err != nil {
		return err
	}
	_, err = pulumirpc.NewEngineClient(conn).StartDebugging(ctx, &pulumirpc.StartDebuggingRequest{
		Config:  config,
		Message: fmt.Sprintf("on port %d", port),
	})
	return err
}

// RunPlugin runs a plugin written in Python: for this project, a policy pack (PulumiPolicy.yaml
// with `runtime: python`). The engine starts such a pack through its runtime's language host
// (pkg/resource/plugin.ExecPlugin in v3.259.0): Info is the pack's folder (root and program
// directory) with PulumiPolicy.yaml's runtime options, Pwd is the engine's working directory (the
// Pulumi project), Env is the engine's whole environment, and Args are the engine's address after
// any --logtostderr, -v and --tracing flags. As upstream's host does for a folder with a
// __main__.py, it runs `<python> -u <pack folder> <args>` in Pwd. The engine reads the plugin's
// gRPC port from the first line of stdout, so stdout and stderr are streamed back as they are
// written (-u: pulumi-policy writes the port without a flush), then the exit code. The child
// gets SIGINT, then SIGKILL after pluginStopGrace, when the engine cancels the call (it does so
// to stop the plugin) or goes away, and when this host shuts down.
func (h *host) RunPlugin(req *pulumirpc.RunPluginRequest,
	server grpc.ServerStreamingServer[pulumirpc.RunPluginResponse],
) error {
	info := req.GetInfo()
	if info == nil || info.GetProgramDirectory() == "" {
		return status.Error(codes.InvalidArgument, "RunPlugin needs the plugin's ProgramInfo (its folder and runtime options)")
	}
	if req.GetAttachDebugger() {
		return status.Error(codes.Unimplemented, "this language host cannot start a plugin under a debugger")
	}
	dir := info.GetProgramDirectory()
	// Upstream also runs buildable packages through `pulumi.run.plugin`; a pack here is a folder.
	if _, err := os.Stat(filepath.Join(dir, "__main__.py")); err != nil {
		return status.Errorf(codes.FailedPrecondition, "plugin %s has no __main__.py, which this language host runs: %v", dir, err)
	}

	// Like upstream, a plugin runs in a virtualenv, `venv` in its folder unless its runtime options
	// name one (this project's pack names the project's: ../.venv); never in the ambient Python.
	opts := info.GetOptions().AsMap()
	if opts["virtualenv"] == nil && (opts["toolchain"] == nil || opts["toolchain"] == "pip") {
		opts["virtualenv"] = "venv"
	}
	withVenv, err := structpb.NewStruct(opts)
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "plugin runtime options: %v", err)
	}
	tc, err := validPython(server.Context(), &pulumirpc.ProgramInfo{
		RootDirectory: info.GetRootDirectory(), ProgramDirectory: dir, EntryPoint: ".", Options: withVenv,
	})
	if err != nil {
		return status.Errorf(codes.FailedPrecondition, "plugin %s: %v", dir, err)
	}

	ctx, cancel := context.WithCancel(server.Context())
	defer cancel()
	go func() {
		select {
		case <-h.stopped:
			cancel()
		case <-ctx.Done():
		}
	}()
	cmd, err := tc.Command(ctx, append([]string{"-u", dir}, req.GetArgs()...)...)
	if err != nil {
		return err
	}
	// SIGINT first: pulumi-policy stops its server on KeyboardInterrupt. WaitDelay bounds both the
	// wait after it and the wait for pipes a leftover grandchild might hold open.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = pluginStopGrace

	// The engine's environment, with the virtualenv activated on top (its PATH first). Entries
	// without "=" are dropped: ActivateVirtualEnv asserts on them, which would crash the host.
	env := make([]string, 0, len(req.GetEnv())+2)
	for _, kv := range req.GetEnv() {
		if strings.Contains(kv, "=") {
			env = append(env, kv)
		}
	}
	if len(req.GetEnv()) == 0 {
		env = os.Environ()
	}
	if venv, err := tc.VirtualEnvPath(ctx); err == nil && venv != "" {
		env = toolchain.ActivateVirtualEnv(env, venv)
	}
	cmd.Env = env
	cmd.Dir = req.GetPwd()

	// exec copies stdout and stderr in two goroutines, and a gRPC stream takes one sender at a time.
	var sendMu sync.Mutex
	send := func(msg *pulumirpc.RunPluginResponse) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return server.Send(msg)
	}
	cmd.Stdout = streamWriter(func(b []byte) error {
		return send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stdout{Stdout: b}})
	})
	cmd.Stderr = streamWriter(func(b []byte) error {
		return send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stderr{Stderr: b}})
	})
	logging.V(5).Infof("running plugin %s %s in %s", cmd.Path, strings.Join(cmd.Args[1:], " "), cmd.Dir)

	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		// Stopped on purpose: the engine no longer reads this stream, or the host is going away.
		return status.FromContextError(ctx.Err()).Err()
	case err == nil:
		return send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: 0}})
	case errors.As(err, &exit):
		// ExitCode is -1 for a child ended by a signal; the engine reports any non-zero code.
		return send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: int32(exit.ExitCode())}})
	default:
		return status.Errorf(codes.Internal, "could not run plugin %s with %s: %v", dir, cmd.Path, err)
	}
}

// streamWriter is an io.Writer that sends each write as one message (exec hands it what the
// child wrote, in order); a failed send (the engine went away) fails the write.
type streamWriter func([]byte) error

func (w streamWriter) Write(b []byte) (int, error) {
	if err := w(b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// pluginDep is one resource plugin declared by an installed package's pulumi-plugin.json.
type pluginDep struct {
	Name, Version, Server string
	Parameterization      *plugin.PulumiParameterizationJSON
	Extension             *plugin.PulumiParameterizationJSON
}

// requiredPlugins lists the resource plugins of the packages the program's Python can import.
func requiredPlugins(ctx context.Context, info *pulumirpc.ProgramInfo) ([]pluginDep, error) {
	tc, err := validPython(ctx, info)
	if err != nil {
		return nil, err
	}
	// sys.path is what `import` searches: the venv's site-packages, plus any editable installs.
	cmd, err := tc.Command(ctx, "-c", "import json, sys; print(json.dumps([p for p in sys.path if p]))")
	if err != nil {
		return nil, err
	}
	cmd.Dir = info.GetProgramDirectory()
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("listing Python's sys.path with %s: %w", cmd.Path, err)
	}
	var dirs []string
	if err := json.Unmarshal(out, &dirs); err != nil {
		return nil, fmt.Errorf("reading Python's sys.path: %w", err)
	}
	return scanPlugins(dirs)
}

// scanPlugins reads <dir>/<package>/pulumi-plugin.json in each dir (pulumiplugin.json is the
// older name) and returns the packages that declare a resource plugin, sorted and deduplicated.
// A missing name is derived from the package folder (pulumi_foo -> foo); versions get the "v"
// prefix the engine's plugin descriptors use.
func scanPlugins(dirs []string) ([]pluginDep, error) {
	var deps []pluginDep
	seen := map[string]bool{}
	for _, dir := range dirs {
		for _, file := range []string{"pulumi-plugin.json", "pulumiplugin.json"} {
			paths, err := filepath.Glob(filepath.Join(dir, "*", file))
			if err != nil {
				return nil, err
			}
			for _, path := range paths {
				meta, err := plugin.LoadPulumiPluginJSON(path)
				if err != nil {
					return nil, fmt.Errorf("reading %s: %w", path, err)
				}
				if !meta.Resource {
					continue
				}
				dep := pluginDep{Name: meta.Name, Version: meta.Version, Server: meta.Server,
					Parameterization: meta.Parameterization, Extension: meta.ExtensionParameterization}
				if dep.Name == "" {
					pkg := filepath.Base(filepath.Dir(path))
					dep.Name = strings.ReplaceAll(strings.TrimPrefix(pkg, "pulumi_"), "_", "-")
				}
				if dep.Version != "" && !strings.HasPrefix(dep.Version, "v") {
					dep.Version = "v" + dep.Version
				}
				key := dep.Name + "@" + dep.Version
				if dep.Parameterization != nil {
					key += "/" + dep.Parameterization.Name + "@" + dep.Parameterization.Version
				}
				if !seen[key] {
					seen[key] = true
					deps = append(deps, dep)
				}
			}
		}
	}
	slices.SortFunc(deps, func(a, b pluginDep) int {
		return strings.Compare(a.Name+"@"+a.Version, b.Name+"@"+b.Version)
	})
	return deps, nil
}

func parameterization(p *plugin.PulumiParameterizationJSON) *pulumirpc.PackageParameterization {
	if p == nil {
		return nil
	}
	return &pulumirpc.PackageParameterization{Name: p.Name, Version: p.Version, Value: p.Value}
}

func (h *host) GetRequiredPackages(ctx context.Context, req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	deps, err := requiredPlugins(ctx, req.GetInfo())
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.GetRequiredPackagesResponse{}
	for _, d := range deps {
		resp.Packages = append(resp.Packages, &pulumirpc.PackageDependency{
			Name: d.Name, Kind: "resource", Version: d.Version, Server: d.Server,
			Parameterization: parameterization(d.Parameterization), Extension: parameterization(d.Extension),
		})
	}
	return resp, nil
}

// GetRequiredPlugins is the pre-parameterization form of GetRequiredPackages: plain plugins only.
func (h *host) GetRequiredPlugins(ctx context.Context, req *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	deps, err := requiredPlugins(ctx, req.GetInfo())
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.GetRequiredPluginsResponse{}
	for _, d := range deps {
		if d.Parameterization == nil && d.Extension == nil {
			resp.Plugins = append(resp.Plugins, &pulumirpc.PluginDependency{
				Name: d.Name, Kind: "resource", Version: d.Version, Server: d.Server,
			})
		}
	}
	return resp, nil
}

// InstallDependencies does not install anything: the venv is pinned and built by `make setup`.
// It only checks that the venv exists, so `pulumi install` and `pulumi up` fail early with a hint.
func (h *host) InstallDependencies(req *pulumirpc.InstallDependenciesRequest,
	stream grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse],
) error {
	if _, err := validPython(stream.Context(), req.GetInfo()); err != nil {
		return fmt.Errorf("%w (the virtualenv is created by `make setup`)", err)
	}
	return stream.Send(&pulumirpc.InstallDependenciesResponse{
		Stdout: []byte("Python dependencies are managed by `make setup`; nothing to install.\n"),
	})
}

// About reports the interpreter, shown by `pulumi about` and stored in the metadata of every
// update. One `python -c` answers both fields: upstream's toolchain About runs three processes,
// one of them `python -m pip --version` (about 0.35 s of CPU, before every preview and update
// starts: bench/README.md) for a toolchain version this response has no field for.
func (h *host) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	tc, err := python(req.GetInfo())
	if err != nil {
		return nil, err
	}
	cmd, err := tc.Command(ctx, "-c", "import platform, sys; print(sys.executable); print(platform.python_version())")
	if err != nil {
		return nil, err
	}
	cmd.Dir = req.GetInfo().GetProgramDirectory()
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("asking %s for its executable and version: %w", cmd.Path, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || lines[0] == "" || lines[1] == "" {
		return nil, fmt.Errorf("unexpected answer from %s about its executable and version: %q", cmd.Path, out)
	}
	return &pulumirpc.AboutResponse{Executable: lines[0], Version: lines[1]}, nil
}
