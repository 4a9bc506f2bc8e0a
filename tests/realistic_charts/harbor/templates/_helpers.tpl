{{- define "harbor.name" -}}
{{- default "harbor" .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "harbor.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default "harbor" .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "harbor.labels" -}}
heritage: {{ .Release.Service }}
release: {{ .Release.Name }}
chart: {{ .Chart.Name }}
app: "{{ template "harbor.name" . }}"
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/name: {{ include "harbor.name" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "harbor.name" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "harbor.matchLabels" -}}
release: {{ .Release.Name }}
app: "{{ template "harbor.name" . }}"
{{- end -}}

{{- define "harbor.core" -}}{{- printf "%s-core" (include "harbor.fullname" .) -}}{{- end -}}
{{- define "harbor.portal" -}}{{- printf "%s-portal" (include "harbor.fullname" .) -}}{{- end -}}
{{- define "harbor.jobservice" -}}{{- printf "%s-jobservice" (include "harbor.fullname" .) -}}{{- end -}}
{{- define "harbor.registry" -}}{{- printf "%s-registry" (include "harbor.fullname" .) -}}{{- end -}}
{{- define "harbor.registryCtl" -}}{{- printf "%s-registryctl" (include "harbor.fullname" .) -}}{{- end -}}
{{- define "harbor.database" -}}{{- printf "%s-database" (include "harbor.fullname" .) -}}{{- end -}}
{{- define "harbor.redis" -}}{{- printf "%s-redis" (include "harbor.fullname" .) -}}{{- end -}}
{{- define "harbor.trivy" -}}{{- printf "%s-trivy" (include "harbor.fullname" .) -}}{{- end -}}
{{- define "harbor.nginx" -}}{{- printf "%s-nginx" (include "harbor.fullname" .) -}}{{- end -}}
{{- define "harbor.exporter" -}}{{- printf "%s-exporter" (include "harbor.fullname" .) -}}{{- end -}}
{{- define "harbor.ingress" -}}{{- printf "%s-ingress" (include "harbor.fullname" .) -}}{{- end -}}

{{- define "harbor.autoGenCert" -}}
{{- if and .Values.expose.tls.enabled (eq .Values.expose.tls.certSource "auto") -}}true{{- else -}}false{{- end -}}
{{- end -}}
{{- define "harbor.autoGenCertForIngress" -}}
{{- if and (eq (include "harbor.autoGenCert" .) "true") (eq .Values.expose.type "ingress") -}}true{{- else -}}false{{- end -}}
{{- end -}}
{{- define "harbor.autoGenCertForNginx" -}}
{{- if and (eq (include "harbor.autoGenCert" .) "true") (ne .Values.expose.type "ingress") -}}true{{- else -}}false{{- end -}}
{{- end -}}

{{- define "harbor.database.host" -}}
{{- if eq .Values.database.type "internal" -}}{{ template "harbor.database" . }}{{- else -}}{{ .Values.database.external.host }}{{- end -}}
{{- end -}}
{{- define "harbor.database.port" -}}
{{- if eq .Values.database.type "internal" -}}5432{{- else -}}{{ .Values.database.external.port }}{{- end -}}
{{- end -}}
{{- define "harbor.database.username" -}}
{{- if eq .Values.database.type "internal" -}}postgres{{- else -}}{{ .Values.database.external.username }}{{- end -}}
{{- end -}}
{{- define "harbor.database.rawPassword" -}}
{{- if eq .Values.database.type "internal" -}}{{ .Values.database.internal.password }}{{- else -}}{{ .Values.database.external.password }}{{- end -}}
{{- end -}}
{{- define "harbor.database.encryptedPassword" -}}
{{- include "harbor.database.rawPassword" . | b64enc | quote -}}
{{- end -}}
{{- define "harbor.database.coreDatabase" -}}
{{- if eq .Values.database.type "internal" -}}registry{{- else -}}{{ .Values.database.external.coreDatabase }}{{- end -}}
{{- end -}}
{{- define "harbor.database.sslmode" -}}
{{- if eq .Values.database.type "internal" -}}disable{{- else -}}{{ .Values.database.external.sslmode }}{{- end -}}
{{- end -}}

{{- define "harbor.redis.scheme" -}}
{{- ternary "redis+sentinel" "redis" (and (eq .Values.redis.type "external") (not (not .Values.redis.external.sentinelMasterSet))) -}}
{{- end -}}
{{- define "harbor.redis.addr" -}}
{{- if eq .Values.redis.type "internal" -}}{{ template "harbor.redis" . }}:6379{{- else -}}{{ .Values.redis.external.addr }}{{- end -}}
{{- end -}}
{{- define "harbor.redis.url" -}}
{{- $index := .index -}}
{{- with .ctx -}}
{{- printf "%s://%s/%s?idle_timeout_seconds=30" (include "harbor.redis.scheme" .) (include "harbor.redis.addr" .) $index -}}
{{- end -}}
{{- end -}}
{{- define "harbor.redis.urlForCore" -}}{{- include "harbor.redis.url" (dict "ctx" . "index" (ternary "0" .Values.redis.external.coreDatabaseIndex (eq .Values.redis.type "internal"))) -}}{{- end -}}
{{- define "harbor.redis.urlForJobservice" -}}{{- include "harbor.redis.url" (dict "ctx" . "index" (ternary .Values.redis.internal.jobserviceDatabaseIndex .Values.redis.external.jobserviceDatabaseIndex (eq .Values.redis.type "internal"))) -}}{{- end -}}
{{- define "harbor.redis.urlForRegistry" -}}{{- include "harbor.redis.url" (dict "ctx" . "index" (ternary .Values.redis.internal.registryDatabaseIndex .Values.redis.external.registryDatabaseIndex (eq .Values.redis.type "internal"))) -}}{{- end -}}
{{- define "harbor.redis.urlForTrivy" -}}{{- include "harbor.redis.url" (dict "ctx" . "index" (ternary .Values.redis.internal.trivyAdapterIndex .Values.redis.external.trivyAdapterIndex (eq .Values.redis.type "internal"))) -}}{{- end -}}

{{- define "harbor.portalURL" -}}http://{{ template "harbor.portal" . }}{{- end -}}
{{- define "harbor.coreURL" -}}http://{{ template "harbor.core" . }}{{- end -}}
{{- define "harbor.jobserviceURL" -}}http://{{ template "harbor.jobservice" . }}{{- end -}}
{{- define "harbor.registryURL" -}}http://{{ template "harbor.registry" . }}:5000{{- end -}}
{{- define "harbor.registryControllerURL" -}}http://{{ template "harbor.registry" . }}:8080{{- end -}}
{{- define "harbor.tokenServiceURL" -}}{{ template "harbor.coreURL" . }}/service/token{{- end -}}
{{- define "harbor.trivyAdapterURL" -}}http://{{ template "harbor.trivy" . }}:8080{{- end -}}

{{/* A key of an existing Secret's data (from lookup), or nothing. dict: data, key */}}
{{- define "harbor.secretKeyHelper" -}}
{{- if and .data (hasKey .data .key) -}}{{ index .data .key | b64dec }}{{- end -}}
{{- end -}}

{{- define "harbor.noProxy" -}}
{{- printf "%s,%s,%s,%s,%s,%s,%s,%s" (include "harbor.core" .) (include "harbor.jobservice" .) (include "harbor.database" .) (include "harbor.registry" .) (include "harbor.portal" .) (include "harbor.trivy" .) (include "harbor.exporter" .) .Values.proxy.noProxy -}}
{{- end -}}

{{- define "harbor.persistence.claim" -}}
{{- /* dict: ctx, pvc (values of the claim), name */ -}}
{{- .pvc.existingClaim | default .name -}}
{{- end -}}

{{/* A StatefulSet's volumeClaimTemplates entry from a persistence.persistentVolumeClaim.<x> block. dict: ctx, pvc, name */}}
{{- define "harbor.volumeClaimTemplate" -}}
volumeClaimTemplates:
  - metadata:
      name: {{ .name }}
      labels:
{{ include "harbor.labels" .ctx | indent 8 }}
      annotations:
      {{- range $key, $value := .pvc.annotations }}
        {{ $key }}: {{ $value | quote }}
      {{- end }}
    spec:
      accessModes: [{{ .pvc.accessMode | quote }}]
      {{- if .pvc.storageClass }}
      {{- if eq "-" .pvc.storageClass }}
      storageClassName: ""
      {{- else }}
      storageClassName: "{{ .pvc.storageClass }}"
      {{- end }}
      {{- end }}
      resources:
        requests:
          storage: {{ .pvc.size | quote }}
{{- end -}}
