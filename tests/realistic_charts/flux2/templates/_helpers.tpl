{{- define "template.image" -}}
{{- if eq (substr 0 7 .tag) "sha256:" -}}
{{- printf "%s@%s" .image .tag -}}
{{- else -}}
{{- printf "%s:%s" .image .tag -}}
{{- end -}}
{{- end -}}

{{- define "template.labels" -}}
app.kubernetes.io/instance: {{ .Release.Namespace | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: flux
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* One controller: Deployment and ServiceAccount. dict: ctx, key (values key), name, args, ports, healthPort */}}
{{- define "flux2.controller" -}}
{{- $ctx := .ctx -}}
{{- $v := index $ctx.Values .key -}}
{{- if $v.create }}
{{- if $v.serviceAccount.create }}
---
apiVersion: v1
kind: ServiceAccount
automountServiceAccountToken: {{ $v.serviceAccount.automount }}
metadata:
  name: {{ .name }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    app.kubernetes.io/component: {{ .name }}
    {{- include "template.labels" $ctx | nindent 4 }}
  {{- with $v.serviceAccount.annotations }}
  annotations: {{ toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    app.kubernetes.io/component: {{ .name }}
    {{- include "template.labels" $ctx | nindent 4 }}
    control-plane: controller
    {{- with $v.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {{ .name }}
  template:
    metadata:
      {{- with $v.annotations }}
      annotations: {{ toYaml . | nindent 8 }}
      {{- end }}
      labels:
        app: {{ .name }}
        {{- with $v.labels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      containers:
        - name: manager
          image: {{ include "template.image" $v }}
          {{- with $v.imagePullPolicy }}
          imagePullPolicy: {{ . }}
          {{- end }}
          args:
            {{- if $ctx.Values.multitenancy.enabled }}
            - --no-cross-namespace-refs=true
            {{- end }}
            {{- range .args }}
            - {{ . }}
            {{- end }}
            - --watch-all-namespaces={{ $ctx.Values.watchAllNamespaces }}
            - --log-level={{ $ctx.Values.logLevel | default "info" }}
            - --log-encoding=json
            - --enable-leader-election
            {{- range $v.container.additionalArgs }}
            - {{ . }}
            {{- end }}
          env:
            - name: RUNTIME_NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: healthz
          readinessProbe:
            httpGet:
              path: {{ .readyPath | default "/readyz" }}
              port: {{ .readyPort | default "healthz" }}
          ports:
            {{- range $name, $port := .ports }}
            - containerPort: {{ $port }}
              name: {{ $name }}
              protocol: TCP
            {{- end }}
            - containerPort: 8080
              name: http-prom
              protocol: TCP
            - containerPort: 9440
              name: healthz
              protocol: TCP
          {{- with $v.resources }}
          resources: {{ toYaml . | nindent 12 }}
          {{- end }}
          securityContext:
            allowPrivilegeEscalation: false
            capabilities:
              drop: [ALL]
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            seccompProfile:
              type: RuntimeDefault
          volumeMounts:
            - mountPath: /tmp
              name: temp
            {{- with $v.volumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      {{- with $ctx.Values.imagePullSecrets }}
      imagePullSecrets: {{ toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      securityContext:
        fsGroup: 1337
      serviceAccountName: {{ .name }}
      terminationGracePeriodSeconds: 10
      {{- with $v.nodeSelector }}
      nodeSelector: {{ toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity: {{ toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations: {{ toYaml . | nindent 8 }}
      {{- end }}
      volumes:
        - emptyDir: {}
          name: temp
        {{- with $v.volumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
{{- end }}
{{- end -}}
