{{/*
Chart name, overridable with nameOverride.
*/}}
{{- define "gangplank.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the prefix of every object name. "<release>-gangplank", or "<release>" when the
release name already contains the chart name. Truncated to 63 characters (DNS label).
*/}}
{{- define "gangplank.fullname" -}}
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

{{/*
Name of the metrics Service: the full name cut to leave room for "-metrics", so it stays
a valid 63-character DNS label and never collides with the traffic Service.
*/}}
{{- define "gangplank.metricsServiceName" -}}
{{- printf "%s-metrics" (include "gangplank.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "gangplank.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels. Called with a dict: (dict "ctx" $ "component" "controller").
These must never change between chart versions: Deployment selectors are immutable.
*/}}
{{- define "gangplank.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gangplank.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Common labels: the selector labels plus version and management labels.
Called with a dict: (dict "ctx" $ "component" "controller").
*/}}
{{- define "gangplank.labels" -}}
helm.sh/chart: {{ include "gangplank.chart" .ctx }}
{{ include "gangplank.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: gangplank
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The image reference: repository@digest when a digest is set, else repository:tag with the
tag defaulting to the chart's appVersion.
*/}}
{{- define "gangplank.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "gangplank.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gangplank.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of the leader-election Lease.
*/}}
{{- define "gangplank.electionID" -}}
{{- default (printf "%s-leader" (include "gangplank.fullname" .)) .Values.controller.electionID }}
{{- end }}

{{/*
"namespace/name" of the Service whose address goes into Ingress status.
*/}}
{{- define "gangplank.publishService" -}}
{{- default (printf "%s/%s" .Release.Namespace (include "gangplank.fullname" .)) .Values.controller.publishService.pathOverride }}
{{- end }}

{{/*
Termination grace period: explicit, or preStop sleep + shutdown grace + 10 s of margin.
*/}}
{{- define "gangplank.terminationGracePeriodSeconds" -}}
{{- if .Values.terminationGracePeriodSeconds }}
{{- .Values.terminationGracePeriodSeconds | int }}
{{- else }}
{{- add (.Values.proxy.preStopSleepSeconds | int) (.Values.proxy.shutdownGraceSeconds | int) 10 }}
{{- end }}
{{- end }}

{{/*
Where the shared emptyDir is mounted, and the admin socket inside it.
*/}}
{{- define "gangplank.runDir" -}}
/run/gangplank
{{- end }}

{{- define "gangplank.adminSocket" -}}
{{- include "gangplank.runDir" . }}/admin.sock
{{- end }}

{{/*
A host:port listen address. IPv6 hosts are written with their brackets in values
("[::]"), so this is plain concatenation.
*/}}
{{- define "gangplank.listen" -}}
{{- printf "%s:%d" .host (.port | int) }}
{{- end }}
