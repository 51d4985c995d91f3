{{/*
Names and labels, defined once. Kubernetes names are at most 63 characters, so every
name is truncated there (and a trailing "-" left by the cut is removed).
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "topcoins.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The fully qualified app name: "<release>-<chart>", just "<release>" when the release
name already contains the chart name, or fullnameOverride.
*/}}
{{- define "topcoins.fullname" -}}
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

{{/* "<chart>-<version>" for the helm.sh/chart label. */}}
{{- define "topcoins.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "topcoins.labels" -}}
helm.sh/chart: {{ include "topcoins.chart" . }}
{{ include "topcoins.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/part-of: topcoins
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The labels that identify this release's pods (never change them: selectors are immutable). */}}
{{- define "topcoins.selectorLabels" -}}
app.kubernetes.io/name: {{ include "topcoins.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
"<fullname>-<suffix>", cutting the fullname rather than the suffix so that two names
never collide when the fullname is long. Takes (dict "context" $ "suffix" "web").
*/}}
{{- define "topcoins.suffixedName" -}}
{{- $prefix := include "topcoins.fullname" .context | trunc (int (sub 62 (len .suffix))) | trimSuffix "-" }}
{{- printf "%s-%s" $prefix .suffix }}
{{- end }}

{{/*
Per-component names and labels, on top of the shared ones. Each takes
(dict "context" $ "component" "web"); the component names are the ones the processes
log (pricing-producer, ranking-producer, stream-worker, web).
*/}}
{{- define "topcoins.componentFullname" -}}
{{- include "topcoins.suffixedName" (dict "context" .context "suffix" .component) }}
{{- end }}

{{- define "topcoins.componentLabels" -}}
{{ include "topcoins.labels" .context }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "topcoins.componentSelectorLabels" -}}
{{ include "topcoins.selectorLabels" .context }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The name of the ConfigMap with the shared, non-secret settings. */}}
{{- define "topcoins.configName" -}}
{{- include "topcoins.suffixedName" (dict "context" . "suffix" "config") }}
{{- end }}

{{/* The image reference; the tag defaults to the chart's appVersion. */}}
{{- define "topcoins.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
Pod annotations: a checksum of the shared ConfigMap (so a settings change rolls the
pods), the Prometheus scrape annotations, then the component's own.
Takes (dict "context" $ "values" .Values.web).
*/}}
{{- define "topcoins.podAnnotations" -}}
checksum/config: {{ include (print .context.Template.BasePath "/configmap.yaml") .context | sha256sum }}
{{- if .context.Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .values.opsPort | default .values.port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- with .values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The user's environment variables: extraEnv, then the component's env over it, in name
order. A value is a string or an object with valueFrom.
Takes (dict "context" $ "values" .Values.web).
*/}}
{{- define "topcoins.userEnv" -}}
{{- $env := mergeOverwrite (deepCopy .context.Values.extraEnv) (deepCopy .values.env) }}
{{- range $name := keys $env | sortAlpha }}
{{- $value := get $env $name }}
- name: {{ $name }}
{{- if kindIs "map" $value }}
  {{- toYaml $value | nindent 2 }}
{{- else }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
An API key from the existing Secret, never a value.
Takes (dict "context" $ "env" "CMC_API_KEY" "key" .Values.providers.cmc.apiKeySecretKey).
*/}}
{{- define "topcoins.apiKeyEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ required "providers.existingSecret is required: the Secret holding the provider API keys" .context.Values.providers.existingSecret }}
      key: {{ .key }}
{{- end }}

{{/*
The non-secret Kafka security settings (ConfigMap data): the protocol, the mechanism, and
the paths of the PEM files mounted from kafka.security.tls.existingSecret.
*/}}
{{- define "topcoins.kafkaSecurityConfig" -}}
{{- $security := .Values.kafka.security }}
{{- $tls := $security.tls }}
KAFKA_SECURITY_PROTOCOL: {{ $security.protocol | quote }}
{{- if hasPrefix "SASL_" $security.protocol }}
KAFKA_SASL_MECHANISM: {{ $security.sasl.mechanism | quote }}
{{- end }}
KAFKA_SSL_CHECK_HOSTNAME: {{ $tls.checkHostname | quote }}
{{- if and (or $tls.certKey $tls.keyKey) (not (and $tls.certKey $tls.keyKey)) }}
{{- fail "kafka.security.tls.certKey and keyKey go together: a client certificate needs its key" }}
{{- end }}
{{- if $tls.existingSecret }}
{{- if $tls.caKey }}
KAFKA_SSL_CA_FILE: {{ printf "%s/%s" (include "topcoins.kafkaTlsDir" .) $tls.caKey | quote }}
{{- end }}
{{- if $tls.certKey }}
KAFKA_SSL_CERT_FILE: {{ printf "%s/%s" (include "topcoins.kafkaTlsDir" .) $tls.certKey | quote }}
KAFKA_SSL_KEY_FILE: {{ printf "%s/%s" (include "topcoins.kafkaTlsDir" .) $tls.keyKey | quote }}
{{- end }}
{{- else if $tls.certKey }}
{{- fail "kafka.security.tls.existingSecret is required with certKey: the Secret holding the client certificate and key" }}
{{- end }}
{{- end }}

{{/* Where the Kafka TLS Secret is mounted (read-only). */}}
{{- define "topcoins.kafkaTlsDir" -}}
/etc/topcoins/kafka-tls
{{- end }}

{{/*
The SASL user name and password from their existing Secret (never values); nothing
unless kafka.security.protocol is SASL_PLAINTEXT or SASL_SSL.
*/}}
{{- define "topcoins.kafkaSaslEnv" -}}
{{- $security := .Values.kafka.security }}
{{- if hasPrefix "SASL_" $security.protocol }}
- name: KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ required "kafka.security.sasl.existingSecret is required with a SASL_* protocol: the Secret holding the SASL user name and password" $security.sasl.existingSecret }}
      key: {{ $security.sasl.usernameKey }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $security.sasl.existingSecret }}
      key: {{ $security.sasl.passwordKey }}
{{- end }}
{{- end }}

{{/* The read-only mount of kafka.security.tls.existingSecret, if any (a volumeMounts item). */}}
{{- define "topcoins.kafkaTlsMount" -}}
{{- if .Values.kafka.security.tls.existingSecret }}
- name: kafka-tls
  mountPath: {{ include "topcoins.kafkaTlsDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/* The volume of kafka.security.tls.existingSecret, if any (a volumes item). */}}
{{- define "topcoins.kafkaTlsVolume" -}}
{{- if .Values.kafka.security.tls.existingSecret }}
- name: kafka-tls
  secret:
    secretName: {{ .Values.kafka.security.tls.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- end }}

{{/*
Startup and liveness probes on /healthz, the readiness probe on /readyz, all on the
container port named by "port". Takes (dict "values" .Values.web "port" "http").
*/}}
{{- define "topcoins.probes" -}}
startupProbe:
  httpGet:
    path: /healthz
    port: {{ .port }}
  {{- toYaml .values.startupProbe | nindent 2 }}
livenessProbe:
  httpGet:
    path: /healthz
    port: {{ .port }}
  {{- toYaml .values.livenessProbe | nindent 2 }}
readinessProbe:
  httpGet:
    path: /readyz
    port: {{ .port }}
  {{- toYaml .values.readinessProbe | nindent 2 }}
{{- end }}

{{/*
The optional pod fields every component shares: image pull secrets and scheduling. Takes (dict "context" $ "values" .Values.web).
*/}}
{{- define "topcoins.podOptions" -}}
{{- with .context.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
