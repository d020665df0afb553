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
An image reference from an image block ({registry, image, repository, tag, digest}):
repository (or registry/image), then @digest when a digest is set, else :tag with the tag
defaulting to the chart's appVersion. Called with a dict: (dict "image" .Values.x.image
"ctx" $).
*/}}
{{- define "gangplank.imageRef" -}}
{{- $repository := .image.repository | default (printf "%s/%s" .image.registry .image.image) -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (.image.tag | default .ctx.Chart.AppVersion | toString) -}}
{{- end -}}
{{- end }}

{{/*
The Gangplank image (both containers of the controller Pod).
*/}}
{{- define "gangplank.image" -}}
{{- include "gangplank.imageRef" (dict "image" .Values.controller.image "ctx" .) -}}
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
The namespace the controller watches (--watch-namespace), or "" for every namespace.
Scoped when controller.scope.enabled or rbac.scope (namespaced RBAC cannot read the
whole cluster); the namespace defaults to the release namespace.
*/}}
{{- define "gangplank.watchNamespace" -}}
{{- if or .Values.controller.scope.enabled .Values.rbac.scope }}
{{- default .Release.Namespace .Values.controller.scope.namespace }}
{{- end }}
{{- end }}

{{/*
Name of the default backend's Deployment and Service, cut like the metrics Service's.
*/}}
{{- define "gangplank.defaultBackendName" -}}
{{- printf "%s-defaultbackend" (include "gangplank.fullname" . | trunc 48 | trimSuffix "-") }}
{{- end }}

{{/*
Command-line flags of a container, ingress-nginx style. Called with a dict:
  (dict "flags" (list (list "name" "value") ...) "extra" .Values.controller.extraArgs)
Each chart flag is rendered `--name=value` unless `extra` has the same key; then every
`extra` entry is rendered, sorted by key: `--key=value`, or `--key` alone when the value
is "". A chart flag whose value is "" is rendered `--name` alone. Flags are list items
indented by the caller (nindent).
*/}}
{{- define "gangplank.flags" -}}
{{- $extra := .extra | default dict }}
{{- range .flags }}
{{- $name := index . 0 }}
{{- $value := index . 1 | toString }}
{{- if not (hasKey $extra $name) }}
{{- if eq $value "" }}
- --{{ $name }}
{{- else }}
- --{{ $name }}={{ $value }}
{{- end }}
{{- end }}
{{- end }}
{{- range $name, $value := $extra }}
{{- if eq ($value | toString) "" }}
- --{{ $name }}
{{- else }}
- --{{ $name }}={{ $value }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Termination grace period: explicit, or preStop sleep + shutdown grace + 10 s of margin.
*/}}
{{- define "gangplank.terminationGracePeriodSeconds" -}}
{{- if .Values.controller.terminationGracePeriodSeconds }}
{{- .Values.controller.terminationGracePeriodSeconds | int }}
{{- else }}
{{- add (.Values.controller.proxy.preStopSleepSeconds | int) (.Values.controller.proxy.shutdownGraceSeconds | int) 10 }}
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

{{/*
RBAC rules for what the controller reads and writes in the namespaces it watches: the
ClusterRole's rules (every namespace), or, with rbac.scope, the Role's in the watched
namespace. Secrets: the TLS certificates and auth files Ingresses reference, in their
own namespace. Services and EndpointSlices: the upstreams. ConfigMaps: the global one
(--configmap) and those annotations reference.
*/}}
{{- define "gangplank.rbac.watchRules" -}}
- apiGroups: [""]
  resources: [services, secrets, configmaps]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, list, watch]
# The load-balancer address in Ingress status (leader only).
- apiGroups: [networking.k8s.io]
  resources: [ingresses/status]
  verbs: [update, patch]
# Warning Events about Ingresses (rejected annotations and the like), in both Event APIs.
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}
