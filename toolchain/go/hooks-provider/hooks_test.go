package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

const urn = "urn:pulumi:s::astrago-deploy::astrago:local_release:LocalRelease$astrago-hooks:index:Hook::gpu-nodes"

func props(t *testing.T, values map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(values)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func gpuCheck(t *testing.T, trigger string) *structpb.Struct {
	return props(t, map[string]any{"release": "gpu-operator", "hook": "gpu-nodes", "when": "preInstall",
		"check": "node-label", "label": "nvidia.com/gpu.present=true", "delay_s": 0, "trigger": trigger})
}

func nodes(names ...string) nodeLister {
	return func(context.Context, string) ([]string, error) { return names, nil }
}

func TestCheckAcceptsTheCatalogsHooks(t *testing.T) {
	h := newHooks(nodes())
	delay := props(t, map[string]any{"release": "nfs-provisioner", "hook": "volumes-detach", "when": "preDelete",
		"check": nil, "label": nil, "delay_s": 30, "trigger": nil})
	for _, news := range []*structpb.Struct{gpuCheck(t, "abc"), delay} {
		res, err := h.Check(context.Background(), &pulumirpc.CheckRequest{Urn: urn, News: news})
		if err != nil || len(res.GetFailures()) != 0 {
			t.Fatalf("Check(%v) = %v, %v; want no failure", news, res.GetFailures(), err)
		}
	}
}

func TestCheckNamesEachBadPropertyAndTheAllowedValues(t *testing.T) {
	h := newHooks(nodes())
	cases := map[string]map[string]any{
		"when":    {"release": "r", "hook": "h", "when": "postInstall"},
		"check":   {"release": "r", "hook": "h", "when": "preInstall", "check": "disk-space"},
		"label":   {"release": "r", "hook": "h", "when": "preInstall", "check": "node-label", "label": "nvidia"},
		"delay_s": {"release": "r", "hook": "h", "when": "preDelete", "delay_s": 601},
		"release": {"hook": "h", "when": "preDelete"},
	}
	for property, values := range cases {
		res, err := h.Check(context.Background(), &pulumirpc.CheckRequest{Urn: urn, News: props(t, values)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.GetFailures()) != 1 || res.GetFailures()[0].GetProperty() != property {
			t.Errorf("Check(%v) failures = %v; want one on %q", values, res.GetFailures(), property)
		}
	}
	res, _ := h.Check(context.Background(), &pulumirpc.CheckRequest{Urn: urn, News: props(t, cases["when"])})
	if reason := res.GetFailures()[0].GetReason(); !strings.Contains(reason, "allowed: preInstall, preDelete") {
		t.Errorf("reason %q does not list the allowed values", reason)
	}
}

func TestCheckRefusesAnotherResourceType(t *testing.T) {
	_, err := newHooks(nodes()).Check(context.Background(), &pulumirpc.CheckRequest{
		Urn: "urn:pulumi:s::p::astrago-hooks:index:Other::x", News: gpuCheck(t, "a")})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("err = %v; want InvalidArgument", err)
	}
}

func TestANewTriggerReplacesTheCheckAndNamesWhy(t *testing.T) {
	res, err := newHooks(nodes()).Diff(context.Background(), &pulumirpc.DiffRequest{Urn: urn, OldInputs: gpuCheck(t, "a"), News: gpuCheck(t, "b")})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetChanges() != pulumirpc.DiffResponse_DIFF_SOME || strings.Join(res.GetReplaces(), ",") != "trigger" || !res.GetDeleteBeforeReplace() {
		t.Fatalf("Diff = %v; want a delete-before-replace on trigger", res)
	}
	if res.GetDetailedDiff()["trigger"].GetKind() != pulumirpc.PropertyDiff_UPDATE_REPLACE {
		t.Fatalf("detailed diff = %v", res.GetDetailedDiff())
	}
}

func TestTheSameInputsAreNoChangeAndNullEqualsMissing(t *testing.T) {
	old := props(t, map[string]any{"release": "r", "hook": "h", "when": "preDelete", "delay_s": 30, "trigger": nil})
	news := props(t, map[string]any{"release": "r", "hook": "h", "when": "preDelete", "delay_s": 30})
	res, err := newHooks(nodes()).Diff(context.Background(), &pulumirpc.DiffRequest{Urn: urn, Olds: old, News: news})
	if err != nil || res.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("Diff = %v, %v; want no change", res, err)
	}
}

func TestCreateFailsNamingTheMissingLabelWhenNoNodeHasIt(t *testing.T) {
	_, err := newHooks(nodes()).Create(context.Background(), &pulumirpc.CreateRequest{Urn: urn, Properties: gpuCheck(t, "a")})
	message := status.Convert(err).Message()
	for _, want := range []string{"hook gpu-operator/gpu-nodes", "no node carries the label nvidia.com/gpu.present=true",
		"kubectl label node <node> nvidia.com/gpu.present=true", "missing label: nvidia.com/gpu.present"} {
		if !strings.Contains(message, want) {
			t.Errorf("message %q lacks %q", message, want)
		}
	}
}

func TestCreatePassesWithALabelledNodeAndKeepsTheInputs(t *testing.T) {
	res, err := newHooks(nodes("node/gpu-0")).Create(context.Background(), &pulumirpc.CreateRequest{Urn: urn, Properties: gpuCheck(t, "a")})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetId() != "gpu-operator-gpu-nodes" || res.GetProperties().GetFields()["trigger"].GetStringValue() != "a" {
		t.Fatalf("Create = %v", res)
	}
}

func TestCreateReportsAClusterThatCannotBeAsked(t *testing.T) {
	failing := func(context.Context, string) ([]string, error) {
		return nil, errors.New("kubectl get nodes failed: connection refused")
	}
	_, err := newHooks(failing).Create(context.Background(), &pulumirpc.CreateRequest{Urn: urn, Properties: gpuCheck(t, "a")})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v", err)
	}
}

func TestDeleteWaitsItsDelayAndCancelEndsTheWait(t *testing.T) {
	h := newHooks(nodes())
	delay := props(t, map[string]any{"release": "nfs-provisioner", "hook": "volumes-detach", "when": "preDelete", "delay_s": 1})
	started := time.Now()
	if _, err := h.Delete(context.Background(), &pulumirpc.DeleteRequest{Urn: urn, Properties: delay}); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(started); waited < time.Second {
		t.Fatalf("Delete returned after %s; want the 1 s delay", waited)
	}
	long := props(t, map[string]any{"release": "nfs-provisioner", "hook": "volumes-detach", "when": "preDelete", "delay_s": 600})
	go func() { time.Sleep(50 * time.Millisecond); _, _ = h.Cancel(context.Background(), nil) }()
	started = time.Now()
	_, err := h.Delete(context.Background(), &pulumirpc.DeleteRequest{Urn: urn, Properties: long})
	if status.Code(err) != codes.Canceled || time.Since(started) > 10*time.Second {
		t.Fatalf("Delete after Cancel = %v after %s; want Canceled at once", err, time.Since(started))
	}
}

func TestKubectlNodesReadsNamesAndReportsFailures(t *testing.T) {
	bin := t.TempDir()
	script := "#!/bin/sh\nif [ \"$4\" = bad=label ]; then echo 'error: the server is down' >&2; exit 1; fi\necho node/gpu-0; echo node/gpu-1\n"
	if err := os.WriteFile(filepath.Join(bin, "kubectl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	got, err := kubectlNodes(context.Background(), "nvidia.com/gpu.present=true")
	if err != nil || strings.Join(got, ",") != "node/gpu-0,node/gpu-1" {
		t.Fatalf("kubectlNodes = %v, %v", got, err)
	}
	if _, err := kubectlNodes(context.Background(), "bad=label"); err == nil || !strings.Contains(err.Error(), "the server is down") {
		t.Fatalf("err = %v; want kubectl's message", err)
	}
}
