{{/* Names and labels shared by every template. */}}

{{- define "roster.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "roster.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "roster.selectorLabels" -}}
app.kubernetes.io/name: {{ include "roster.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "roster.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "roster.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: roster
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "roster.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "roster.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "roster.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
The rules of what the operator does in the namespaces it watches (src/controller/operator.ts):
informers list and watch the four kinds; finalizers and status are written by patch; Secrets are
read by name, never listed: those Connectors name get the finalizer roster.dev/connector-credentials
by patch while a Connector needs them, and GeneratedSecret credentials are created as Secrets owned
by the Employee (setting a controller ownerReference needs update on employees/finalizers); Events
are created and bumped.
Nothing is ever deleted, and CRDs are not touched at all.
*/}}
{{- define "roster.watchRules" -}}
- apiGroups: ["roster.dev"]
  resources: ["employees", "accesspolicies", "grouprules", "connectors"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["roster.dev"]
  resources: ["employees/status", "accesspolicies/status", "grouprules/status", "connectors/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["roster.dev"]
  resources: ["employees/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch", "get"]
{{- end -}}

{{/*
Cluster-wide only: a shard (operator.shardSelector) lists and watches Namespaces, names and labels,
to know which of them its selector matches.
*/}}
{{- define "roster.clusterRules" -}}
{{ include "roster.watchRules" . }}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end -}}

{{/* The Lease the replicas elect their leader on; a shard's own unless set. */}}
{{- define "roster.leaseName" -}}
{{- if .Values.operator.leaderElection.leaseName -}}
{{- .Values.operator.leaderElection.leaseName -}}
{{- else if .Values.operator.shardSelector -}}
{{- include "roster.fullname" . -}}
{{- else -}}
roster-operator
{{- end -}}
{{- end -}}
