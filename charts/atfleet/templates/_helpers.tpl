{{/* Names, labels and small shared pieces. */}}

{{- define "atfleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "atfleet.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "atfleet.operator.name" -}}{{ include "atfleet.fullname" . }}-operator{{- end -}}
{{- define "atfleet.directory.name" -}}{{ include "atfleet.fullname" . }}-directory{{- end -}}
{{- define "atfleet.postgres.name" -}}{{ include "atfleet.fullname" . }}-postgres{{- end -}}

{{- define "atfleet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: atfleet
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: (dict "ctx" $ "component" "operator"). */}}
{{- define "atfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "atfleet.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "atfleet.componentLabels" -}}
{{ include "atfleet.labels" .ctx }}
{{ include "atfleet.selectorLabels" . }}
{{- end -}}

{{- define "atfleet.image" -}}
{{- $tag := default .ctx.Chart.AppVersion .ctx.Values.image.tag -}}
{{- printf "%s/%s:%s" .ctx.Values.image.registry .name $tag -}}
{{- end -}}

{{- define "atfleet.operator.serviceAccount" -}}{{ include "atfleet.operator.name" . }}{{- end -}}

{{- define "atfleet.directory.tokenSecret" -}}
{{- default (printf "%s-api-token" (include "atfleet.directory.name" .)) .Values.directory.apiToken.existingSecret -}}
{{- end -}}

{{- define "atfleet.directory.tlsSecret" -}}
{{- default (printf "%s-tls" (include "atfleet.directory.name" .)) .Values.directory.tls.existingSecret -}}
{{- end -}}

{{- define "atfleet.database.secret" -}}
{{- if .Values.postgres.bundled -}}
{{- include "atfleet.postgres.name" . -}}
{{- else -}}
{{- required "postgres.external.existingSecret is required when postgres.bundled is false" .Values.postgres.external.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "atfleet.database.key" -}}
{{- if .Values.postgres.bundled -}}database-url{{- else -}}{{ .Values.postgres.external.key }}{{- end -}}
{{- end -}}

{{/* In-cluster DNS names of the directory Service. */}}
{{- define "atfleet.directory.dnsNames" -}}
{{- $svc := include "atfleet.directory.name" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.clusterDomain) | toJson -}}
{{- end -}}

{{- define "atfleet.directory.rootAddress" -}}
{{- printf "%s.%s.svc.%s:%v" (include "atfleet.directory.name" .) .Release.Namespace .Values.clusterDomain .Values.directory.service.rootPort -}}
{{- end -}}

{{/* Hardened container securityContext shared by every container the chart runs. */}}
{{- define "atfleet.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "atfleet.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1024
runAsGroup: 1024
fsGroup: 1024
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The Service carrying the registration API (the main one, unless the root protocol is exposed). */}}
{{- define "atfleet.directory.apiService" -}}
{{- if eq .Values.directory.service.type "ClusterIP" -}}
{{- include "atfleet.directory.name" . -}}
{{- else -}}
{{- include "atfleet.directory.name" . }}-api
{{- end -}}
{{- end -}}
