{{/* Names: as upstream, the fullname is cut at 26 characters so derived names stay under 63. */}}
{{- define "kube-prometheus-stack.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 50 | trimSuffix "-" -}}
{{- end }}

{{- define "kube-prometheus-stack.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 26 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 26 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 26 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end }}

{{- define "kube-prometheus-stack.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride -}}
{{- end }}

{{- define "kube-prometheus-stack.operator.fullname" -}}
{{- if .Values.prometheusOperator.fullnameOverride -}}
{{- .Values.prometheusOperator.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-operator" (include "kube-prometheus-stack.fullname" .) -}}
{{- end -}}
{{- end }}

{{- define "kube-prometheus-stack.prometheus.crname" -}}
{{- if .Values.cleanPrometheusOperatorObjectNames -}}{{ include "kube-prometheus-stack.fullname" . }}{{- else -}}{{ include "kube-prometheus-stack.fullname" . }}-prometheus{{- end -}}
{{- end }}

{{- define "kube-prometheus-stack.alertmanager.crname" -}}
{{- if .Values.cleanPrometheusOperatorObjectNames -}}{{ include "kube-prometheus-stack.fullname" . }}{{- else -}}{{ include "kube-prometheus-stack.fullname" . }}-alertmanager{{- end -}}
{{- end }}

{{- define "kube-prometheus-stack.chartref" -}}
{{- replace "+" "_" .Chart.Version | printf "%s-%s" .Chart.Name -}}
{{- end }}

{{- define "kube-prometheus-stack.labels" -}}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.Version | quote }}
app.kubernetes.io/part-of: {{ template "kube-prometheus-stack.name" . }}
chart: {{ template "kube-prometheus-stack.chartref" . }}
release: {{ $.Release.Name | quote }}
heritage: {{ $.Release.Service | quote }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The Kubernetes version the templates adapt to (override for offline rendering). */}}
{{- define "kube-prometheus-stack.kubeVersion" -}}
{{- default .Capabilities.KubeVersion.Version .Values.kubeTargetVersionOverride -}}
{{- end }}

{{/* registry/repository:tag[@sha] with global.imageRegistry taking precedence. */}}
{{- define "kube-prometheus-stack.image" -}}
{{- $registry := .context.Values.global.imageRegistry | default .image.registry -}}
{{- $tag := .image.tag | default .context.Chart.AppVersion | toString -}}
{{- if .image.sha -}}
{{- printf "%s/%s:%s@sha256:%s" $registry .image.repository $tag .image.sha -}}
{{- else -}}
{{- printf "%s/%s:%s" $registry .image.repository $tag -}}
{{- end -}}
{{- end }}

{{- define "kube-prometheus-stack.operator.serviceAccountName" -}}
{{- if .Values.prometheusOperator.serviceAccount.create -}}
{{ default (include "kube-prometheus-stack.operator.fullname" .) .Values.prometheusOperator.serviceAccount.name }}
{{- else -}}
{{ default "default" .Values.prometheusOperator.serviceAccount.name }}
{{- end -}}
{{- end }}

{{- define "kube-prometheus-stack.prometheus.serviceAccountName" -}}
{{- if .Values.prometheus.serviceAccount.create -}}
{{ default (printf "%s-prometheus" (include "kube-prometheus-stack.fullname" .)) .Values.prometheus.serviceAccount.name }}
{{- else -}}
{{ default "default" .Values.prometheus.serviceAccount.name }}
{{- end -}}
{{- end }}

{{- define "kube-prometheus-stack.alertmanager.serviceAccountName" -}}
{{- if .Values.alertmanager.serviceAccount.create -}}
{{ default (printf "%s-alertmanager" (include "kube-prometheus-stack.fullname" .)) .Values.alertmanager.serviceAccount.name }}
{{- else -}}
{{ default "default" .Values.alertmanager.serviceAccount.name }}
{{- end -}}
{{- end }}

{{/* The kube-system Service plus ServiceMonitor of one control-plane component.
     dict: ctx, key (values key), name (object suffix), component (selector), port, targetPort, scheme */}}
{{- define "kube-prometheus-stack.exporter" -}}
{{- $ctx := .ctx -}}
{{- $v := index $ctx.Values .key -}}
{{- if and $v.enabled $ctx.Values.kubernetesServiceMonitors.enabled }}
{{- if $v.service.enabled }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "kube-prometheus-stack.fullname" $ctx }}-{{ .name }}
  labels:
    app: {{ include "kube-prometheus-stack.name" $ctx }}-{{ .name }}
    jobLabel: {{ .name }}
{{ include "kube-prometheus-stack.labels" $ctx | indent 4 }}
  namespace: kube-system
spec:
  clusterIP: None
  ports:
    - name: {{ $v.serviceMonitor.port | default "http-metrics" }}
      port: {{ .port }}
      protocol: TCP
      targetPort: {{ .targetPort }}
{{- if $v.endpoints }}{{ else }}
  selector:
    component: {{ .component }}
{{- end }}
  type: ClusterIP
{{- if $v.endpoints }}
---
apiVersion: v1
kind: Endpoints
metadata:
  name: {{ include "kube-prometheus-stack.fullname" $ctx }}-{{ .name }}
  labels:
    app: {{ include "kube-prometheus-stack.name" $ctx }}-{{ .name }}
{{ include "kube-prometheus-stack.labels" $ctx | indent 4 }}
  namespace: kube-system
subsets:
  - addresses:
      {{- range $v.endpoints }}
      - ip: {{ . }}
      {{- end }}
    ports:
      - name: {{ $v.serviceMonitor.port | default "http-metrics" }}
        port: {{ .targetPort }}
        protocol: TCP
{{- end }}
{{- end }}
{{- if $v.serviceMonitor.enabled }}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "kube-prometheus-stack.fullname" $ctx }}-{{ .name }}
  namespace: {{ include "kube-prometheus-stack.namespace" $ctx }}
  labels:
    app: {{ include "kube-prometheus-stack.name" $ctx }}-{{ .name }}
{{ include "kube-prometheus-stack.labels" $ctx | indent 4 }}
{{- with $v.serviceMonitor.additionalLabels }}
{{ toYaml . | indent 4 }}
{{- end }}
spec:
  jobLabel: {{ $v.serviceMonitor.jobLabel }}
  {{- if $v.serviceMonitor.sampleLimit }}
  sampleLimit: {{ $v.serviceMonitor.sampleLimit }}
  {{- end }}
  selector:
    {{- if $v.serviceMonitor.selector }}
{{ toYaml $v.serviceMonitor.selector | indent 4 }}
    {{- else }}
    matchLabels:
      app: {{ include "kube-prometheus-stack.name" $ctx }}-{{ .name }}
      release: {{ $ctx.Release.Name | quote }}
    {{- end }}
  namespaceSelector:
    matchNames:
      - kube-system
  endpoints:
    - port: {{ $v.serviceMonitor.port | default "http-metrics" }}
      {{- with $v.serviceMonitor.interval }}
      interval: {{ . }}
      {{- end }}
      {{- if eq .scheme "https" }}
      bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
      scheme: https
      tlsConfig:
        caFile: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
        insecureSkipVerify: {{ if kindIs "invalid" $v.serviceMonitor.insecureSkipVerify }}true{{ else }}{{ $v.serviceMonitor.insecureSkipVerify }}{{ end }}
      {{- end }}
      {{- with $v.serviceMonitor.metricRelabelings }}
      metricRelabelings:
{{ tpl (toYaml .) $ctx | indent 8 }}
      {{- end }}
      {{- with $v.serviceMonitor.relabelings }}
      relabelings:
{{ toYaml . | indent 8 }}
      {{- end }}
{{- end }}
{{- end }}
{{- end }}
