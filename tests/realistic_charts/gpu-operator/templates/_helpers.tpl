{{- define "gpu-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gpu-operator.fullname" -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gpu-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gpu-operator.labels" -}}
app.kubernetes.io/name: {{ include "gpu-operator.name" . }}
helm.sh/chart: {{ include "gpu-operator.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- if .Values.operator.labels }}
{{ toYaml .Values.operator.labels }}
{{- end }}
{{- end -}}

{{- define "gpu-operator.operand-labels" -}}
helm.sh/chart: {{ include "gpu-operator.chart" . }}
app.kubernetes.io/managed-by: {{ include "gpu-operator.name" . }}
{{- end -}}

{{/* repository/image:version of a triple; the version defaults to the chart's appVersion. */}}
{{- define "gpu-operator.fullimage" -}}
{{- $tag := printf "%s" .Chart.AppVersion }}
{{- if .Values.operator.version }}{{- $tag = printf "%s" .Values.operator.version }}{{- end }}
{{- $image := printf "%s/%s:%s" .Values.operator.repository .Values.operator.image $tag -}}
{{- $image -}}
{{- end -}}

{{- define "driver-manager.fullimage" -}}
{{- printf "%s/%s:%s" .Values.driver.manager.repository .Values.driver.manager.image .Values.driver.manager.version -}}
{{- end -}}
