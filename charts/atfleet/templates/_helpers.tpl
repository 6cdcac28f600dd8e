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

{{/* The common labels and a component's selector labels, each key once (atfleet.labels already has
app.kubernetes.io/instance; a repeated key is refused by strict YAML parsers such as kubectl's). */}}
{{- define "atfleet.componentLabels" -}}
{{ include "atfleet.labels" .ctx }}
app.kubernetes.io/name: {{ include "atfleet.name" .ctx }}
app.kubernetes.io/component: {{ .component }}
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

{{/* The bundled PostgreSQL's Secret (user, password, database, database-url): generated or existing. */}}
{{- define "atfleet.postgres.secret" -}}
{{- default (include "atfleet.postgres.name" .) .Values.postgres.existingSecret -}}
{{- end -}}

{{- define "atfleet.database.secret" -}}
{{- if .Values.postgres.bundled -}}
{{- include "atfleet.postgres.secret" . -}}
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

{{/* The ConfigMap holding the default AtServerClass the operator applies. */}}
{{- define "atfleet.defaultClass.configMap" -}}{{ include "atfleet.fullname" . }}-default-class{{- end -}}

{{/* The default AtServerClass manifest (the operator applies it; see defaultclass.yaml). */}}
{{- define "atfleet.defaultClass.manifest" -}}
apiVersion: atfleet.dev/v1alpha1
kind: AtServerClass
metadata:
  name: {{ .Values.defaultClass.name }}
  labels:
    app.kubernetes.io/managed-by: atfleet-operator
    app.kubernetes.io/part-of: atfleet
spec:
  {{- toYaml .Values.defaultClass.spec | nindent 2 }}
{{- end -}}

{{/* gitOps.enabled: the chart is rendered without a cluster (helm template, Argo CD, Flux), where
lookup returns nothing, so anything generated would be generated anew on every render. The chart then
generates no secret and requires the existing ones, naming each missing value. */}}
{{- define "atfleet.gitOps.validate" -}}
{{- if .Values.gitOps.enabled -}}
{{- $missing := list -}}
{{- if not .Values.directory.apiToken.existingSecret -}}
{{- $missing = append $missing "directory.apiToken.existingSecret (a Secret with key token: the registration API's bearer token)" -}}
{{- end -}}
{{- if not (or .Values.directory.tls.existingSecret .Values.directory.tls.certManager.issuerRef) -}}
{{- $missing = append $missing "directory.tls.existingSecret or directory.tls.certManager.issuerRef (the chart would generate a new CA on every render)" -}}
{{- end -}}
{{- if not (trim .Values.trustBundle.extraCAs) -}}
{{- $missing = append $missing "trustBundle.extraCAs (the directory's CA: the chart cannot read it from the cluster at render time)" -}}
{{- end -}}
{{- if and .Values.postgres.bundled (not .Values.postgres.existingSecret) -}}
{{- $missing = append $missing "postgres.existingSecret (keys user, password, database, database-url) or postgres.bundled=false with postgres.external.existingSecret" -}}
{{- end -}}
{{- if $missing -}}
{{- fail (printf "gitOps.enabled: the chart generates no secrets when rendered without a cluster; set %s" (join "; " $missing)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
