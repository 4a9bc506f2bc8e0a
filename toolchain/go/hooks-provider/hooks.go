package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"strings"
	"sync"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

const (
	// hookType is the only resource type of the package, as components/hook.py registers it.
	hookType = "astrago-hooks:index:Hook"
	// kubectlTimeout bounds the node listing: a hook must never hang an update.
	kubectlTimeout = 60 * time.Second
	// maxDelay is the catalog's own bound on delay_s (model/catalog.py); checked again here.
	maxDelay = 600
	// unknownValue is the engine's sentinel for a value not known before an update.
	unknownValue = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
)

// replaceKeys are the inputs whose change re-runs the hook: a new check, label, delay, or a new
// trigger (the release's chart digest, so a new chart is checked again). Other inputs are names.
var replaceKeys = []string{"check", "label", "delay_s", "trigger"}

// schema describes the package for the engine's schema requests; the Python side is written by hand.
const schema = `{"name":"astrago-hooks","displayName":"Astrago release hooks","resources":{"astrago-hooks:index:Hook":{` +
	`"description":"A step of a Helm release's lifecycle: a pre-install check or a pre-delete delay.",` +
	`"inputProperties":{"release":{"type":"string"},"hook":{"type":"string"},"when":{"type":"string"},` +
	`"check":{"type":"string"},"label":{"type":"string"},"delay_s":{"type":"integer"},"trigger":{"type":"string"}},` +
	`"requiredInputs":["release","hook","when"]}}}`

// nodeLister returns the names of the nodes carrying a label (key=value).
type nodeLister func(ctx context.Context, label string) ([]string, error)

// hooks implements pulumirpc.ResourceProviderServer for hookType.
type hooks struct {
	pulumirpc.UnimplementedResourceProviderServer
	nodes      nodeLister
	cancelOnce sync.Once
	canceled   chan struct{}
}

func newHooks(nodes nodeLister) *hooks {
	return &hooks{nodes: nodes, canceled: make(chan struct{})}
}

// spec is a hook's inputs, read and checked.
type spec struct {
	release, hook, when, check, label string
	delay                             time.Duration
}

func (s spec) where() string { return s.release + "/" + s.hook }

// parseSpec reads a hook's inputs; each problem names its property and the allowed values.
func parseSpec(props *structpb.Struct) (spec, []*pulumirpc.CheckFailure) {
	fields := props.GetFields()
	text := func(key string) string { return fields[key].GetStringValue() }
	s := spec{release: text("release"), hook: text("hook"), when: text("when"), check: text("check"), label: text("label")}
	var failures []*pulumirpc.CheckFailure
	fail := func(property, format string, args ...any) {
		failures = append(failures, &pulumirpc.CheckFailure{Property: property, Reason: fmt.Sprintf(format, args...)})
	}
	for _, key := range []string{"release", "hook"} {
		if text(key) == "" {
			fail(key, "%s must be a non-empty string", key)
		}
	}
	if s.when != "preInstall" && s.when != "preDelete" {
		fail("when", "when is %q; allowed: preInstall, preDelete", s.when)
	}
	switch s.check {
	case "":
	case "node-label":
		if s.label != unknownValue && !strings.Contains(s.label, "=") {
			fail("label", "the node-label check needs label: key=value, got %q", s.label)
		}
	default:
		fail("check", "check is %q; allowed: node-label (or none)", s.check)
	}
	if value, ok := fields["delay_s"]; ok && value.GetKind() != nil {
		if _, isNull := value.GetKind().(*structpb.Value_NullValue); !isNull {
			seconds := value.GetNumberValue()
			if _, isNumber := value.GetKind().(*structpb.Value_NumberValue); !isNumber || seconds != math.Trunc(seconds) || seconds < 0 || seconds > maxDelay {
				fail("delay_s", "delay_s must be whole seconds from 0 to %d", maxDelay)
			} else {
				s.delay = time.Duration(seconds) * time.Second
			}
		}
	}
	return s, failures
}

func (h *hooks) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (h *hooks) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: schema}, nil
}

// The provider takes no configuration.
func (h *hooks) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (h *hooks) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

// Configure says the engine need not call Create in a preview: hooks run only in updates.
func (h *hooks) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, AcceptResources: true, SupportsPreview: false}, nil
}

func (h *hooks) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	_, failures := parseSpec(req.GetNews())
	return &pulumirpc.CheckResponse{Inputs: req.GetNews(), Failures: failures}, nil
}

func (h *hooks) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds := req.GetOldInputs()
	if olds == nil {
		olds = req.GetOlds()
	}
	var changed []string
	detailed := map[string]*pulumirpc.PropertyDiff{}
	for _, key := range replaceKeys {
		before, after := olds.GetFields()[key], req.GetNews().GetFields()[key]
		if !sameValue(before, after) {
			changed = append(changed, key)
			detailed[key] = &pulumirpc.PropertyDiff{Kind: pulumirpc.PropertyDiff_UPDATE_REPLACE, InputDiff: true}
		}
	}
	if len(changed) == 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
	}
	// A check is replaced by running the new one; nothing needs the old one in between.
	return &pulumirpc.DiffResponse{
		Changes: pulumirpc.DiffResponse_DIFF_SOME, Replaces: changed, Diffs: changed,
		DetailedDiff: detailed, HasDetailedDiff: true, DeleteBeforeReplace: true,
	}, nil
}

// sameValue treats a missing property and a null one alike.
func sameValue(a, b *structpb.Value) bool {
	null := func(v *structpb.Value) bool {
		_, isNull := v.GetKind().(*structpb.Value_NullValue)
		return v == nil || v.GetKind() == nil || isNull
	}
	if null(a) || null(b) {
		return null(a) && null(b)
	}
	return proto.Equal(a, b)
}

// Create runs a pre-install check (a pre-delete hook does nothing until it is deleted).
func (h *hooks) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	s, failures := parseSpec(req.GetProperties())
	if len(failures) > 0 {
		return nil, status.Error(codes.InvalidArgument, failures[0].GetReason())
	}
	if s.check == "node-label" && !req.GetPreview() {
		if err := h.requireLabelledNode(ctx, s); err != nil {
			return nil, err
		}
	}
	return &pulumirpc.CreateResponse{Id: s.release + "-" + s.hook, Properties: req.GetProperties()}, nil
}

func (h *hooks) requireLabelledNode(ctx context.Context, s spec) error {
	nodes, err := h.nodes(ctx, s.label)
	if err != nil {
		return status.Errorf(codes.Unavailable, "hook %s: %v", s.where(), err)
	}
	if len(nodes) == 0 {
		key, _, _ := strings.Cut(s.label, "=")
		return status.Errorf(codes.FailedPrecondition,
			"hook %s: no node carries the label %s, so %s has nothing to run on. "+
				"Label the GPU nodes (`kubectl label node <node> %s`) or disable %s in this stack (missing label: %s)",
			s.where(), s.label, s.release, s.label, s.release, key)
	}
	return nil
}

// Read keeps what the state holds: a hook has nothing in the cluster to read back.
func (h *hooks) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

// Update records renamed inputs; every input that changes what a hook does replaces it instead.
func (h *hooks) Update(_ context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	return &pulumirpc.UpdateResponse{Properties: req.GetNews()}, nil
}

// Delete waits delay_s (pre-delete hooks); Cancel or the engine going away ends the wait early, as a failure,
// so the hook stays in the state and its wait runs again on the next destroy.
func (h *hooks) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	s, _ := parseSpec(req.GetProperties())
	if s.delay <= 0 {
		return &emptypb.Empty{}, nil
	}
	timer := time.NewTimer(s.delay)
	defer timer.Stop()
	select {
	case <-timer.C:
		return &emptypb.Empty{}, nil
	case <-h.canceled:
		return nil, status.Errorf(codes.Canceled, "hook %s: the %s wait before removal was cancelled", s.where(), s.delay)
	case <-ctx.Done():
		return nil, status.Errorf(codes.Canceled, "hook %s: the %s wait before removal was cancelled: %v", s.where(), s.delay, ctx.Err())
	}
}

func (h *hooks) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	h.cancelOnce.Do(func() { close(h.canceled) })
	return &emptypb.Empty{}, nil
}

func checkType(urn string) error {
	// urn:pulumi:<stack>::<project>::<parent types$>type::name
	parts := strings.Split(urn, "::")
	if len(parts) < 4 {
		return nil
	}
	types := strings.Split(parts[2], "$")
	if typ := types[len(types)-1]; typ != hookType {
		return status.Errorf(codes.InvalidArgument, "unknown resource type %q; this provider has only %s", typ, hookType)
	}
	return nil
}

// kubectlNodes lists the nodes carrying a label with the kubectl on PATH (the engine's environment:
// its KUBECONFIG, so the cluster of the stack's default provider).
func kubectlNodes(ctx context.Context, label string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, kubectlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", "get", "nodes", "-l", label, "-o", "name")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, fmt.Errorf("could not list nodes with kubectl: no answer within %s", kubectlTimeout)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return nil, fmt.Errorf("kubectl get nodes failed: %s", strings.TrimSpace(stderr.String()))
	}
	if err != nil {
		return nil, fmt.Errorf("could not list nodes with kubectl: %w", err)
	}
	return strings.Fields(string(out)), nil
}
