{{- define "nfs.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "nfs.labels" -}}
app.kubernetes.io/instance: "{{ .Release.Name }}"
app.kubernetes.io/managed-by: "{{ .Release.Service }}"
app.kubernetes.io/name: "{{ template "nfs.name" . }}"
app.kubernetes.io/version: "{{ .Chart.AppVersion }}"
helm.sh/chart: "{{ .Chart.Name }}-{{ .Chart.Version }}"
{{- with .Values.customLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* An image: a repository starting with "/" is put after image.baseRepo (the chart's way to move every image to one registry). */}}
{{- define "csi-driver-nfs.image" -}}
{{- $root := index . 0 -}}{{- $image := index . 1 -}}
{{- if hasPrefix "/" $image.repository -}}{{ $root.Values.image.baseRepo }}{{- end -}}{{ $image.repository }}:{{ $image.tag }}
{{- end -}}
