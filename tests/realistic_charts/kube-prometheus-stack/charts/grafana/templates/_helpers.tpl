{{- define "grafana.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "grafana.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}
{{- define "grafana.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride -}}
{{- end }}
{{- define "grafana.selectorLabels" -}}
app.kubernetes.io/name: {{ include "grafana.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
{{- define "grafana.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{ include "grafana.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
{{- define "grafana.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "grafana.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}
{{/* dict: root, image (registry, repository, tag, sha) */}}
{{- define "grafana.imageRef" -}}
{{- $registry := .root.Values.global.imageRegistry | default .image.registry -}}
{{- $tag := .image.tag | default .root.Chart.AppVersion | toString -}}
{{- if .image.sha -}}
{{ printf "%s/%s:%s@sha256:%s" $registry .image.repository $tag .image.sha }}
{{- else -}}
{{ printf "%s/%s:%s" $registry .image.repository $tag }}
{{- end -}}
{{- end }}
{{/* The admin password: given, else the one the cluster holds (lookup), else a new random one. */}}
{{- define "grafana.password" -}}
{{- if .Values.adminPassword -}}
{{ .Values.adminPassword | b64enc | quote }}
{{- else -}}
{{- $secret := lookup "v1" "Secret" (include "grafana.namespace" .) (include "grafana.fullname" .) -}}
{{- if and $secret $secret.data (index $secret.data "admin-password") -}}
{{ index $secret.data "admin-password" | quote }}
{{- else -}}
{{ randAlphaNum 40 | b64enc | quote }}
{{- end -}}
{{- end -}}
{{- end }}
