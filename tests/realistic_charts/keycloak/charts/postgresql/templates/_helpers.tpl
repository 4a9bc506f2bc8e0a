{{- define "postgresql.v1.primary.fullname" -}}
{{- if eq .Values.architecture "replication" -}}
{{- printf "%s-%s" (include "common.names.fullname" .) .Values.primary.name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- include "common.names.fullname" . -}}
{{- end -}}
{{- end -}}

{{- define "postgresql.v1.image" -}}
{{ include "common.images.image" (dict "imageRoot" .Values.image "global" .Values.global) }}
{{- end -}}

{{- define "postgresql.v1.volumePermissions.image" -}}
{{ include "common.images.image" (dict "imageRoot" .Values.volumePermissions.image "global" .Values.global) }}
{{- end -}}

{{/* Values under global.postgresql win over the chart's own (how a parent chart sets them). */}}
{{- define "postgresql.v1.username" -}}
{{- if .Values.global.postgresql.auth.username -}}{{- .Values.global.postgresql.auth.username -}}{{- else -}}{{- .Values.auth.username -}}{{- end -}}
{{- end -}}
{{- define "postgresql.v1.database" -}}
{{- if .Values.global.postgresql.auth.database -}}{{- .Values.global.postgresql.auth.database -}}{{- else if .Values.auth.database -}}{{- .Values.auth.database -}}{{- end -}}
{{- end -}}
{{- define "postgresql.v1.secretName" -}}
{{- if .Values.global.postgresql.auth.existingSecret -}}{{- tpl .Values.global.postgresql.auth.existingSecret $ -}}
{{- else if .Values.auth.existingSecret -}}{{- tpl .Values.auth.existingSecret $ -}}
{{- else -}}{{- include "common.names.fullname" . -}}{{- end -}}
{{- end -}}
{{- define "postgresql.v1.adminPasswordKey" -}}
{{- .Values.global.postgresql.auth.secretKeys.adminPasswordKey | default .Values.auth.secretKeys.adminPasswordKey -}}
{{- end -}}
{{- define "postgresql.v1.userPasswordKey" -}}
{{- .Values.global.postgresql.auth.secretKeys.userPasswordKey | default .Values.auth.secretKeys.userPasswordKey -}}
{{- end -}}
{{- define "postgresql.v1.createSecret" -}}
{{- if not (or .Values.global.postgresql.auth.existingSecret .Values.auth.existingSecret) -}}true{{- end -}}
{{- end -}}
{{- define "postgresql.v1.service.port" -}}
{{- .Values.global.postgresql.service.ports.postgresql | default .Values.primary.service.ports.postgresql -}}
{{- end -}}
{{- define "postgresql.v1.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ default (include "common.names.fullname" .) .Values.serviceAccount.name }}
{{- else -}}
{{ default "default" .Values.serviceAccount.name }}
{{- end -}}
{{- end -}}
