{{/* Full image reference; global.imageRegistry replaces every registry (air-gapped sites). */}}
{{- define "astrago.image" -}}
{{- $registry := .image.registry -}}
{{- if .global.imageRegistry }}{{ $registry = .global.imageRegistry }}{{ end -}}
{{- printf "%s/%s:%s" $registry .image.repository .image.tag -}}
{{- end -}}

{{- define "astrago.labels" -}}
app.kubernetes.io/name: astrago
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
