{{- define "hook-sidecar-policy.module" -}}
{{- $tag := .Values.policy.module.tag | default (printf "v%s" .Chart.AppVersion) -}}
registry://{{ .Values.registry | trimSuffix "/" }}/{{ .Values.policy.module.repository }}:{{ $tag }}
{{- end -}}

{{- define "hook-sidecar-policy.syncImage" -}}
{{- $image := .Values.sync.image -}}
{{- $ref := printf "%s/%s" (.Values.registry | trimSuffix "/") $image.repository -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $ref $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref ($image.tag | default (printf "v%s" .Chart.AppVersion)) -}}
{{- end -}}
{{- end -}}

{{- define "hook-sidecar-policy.syncName" -}}
{{- printf "%s-sync" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hook-sidecar-policy.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "hook-sidecar-policy.syncSelector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: sync
{{- end -}}

{{/* The policy's rules, mutating and backgroundAudit come from policy-metadata.yml (a symlink to
     the repository's file), so the chart cannot drift from the module's metadata. */}}
{{- define "hook-sidecar-policy.metadata" -}}
{{- $metadata := .Files.Get "policy-metadata.yml" | fromYaml -}}
{{- if not $metadata.rules -}}
{{- fail "policy-metadata.yml has no rules: the chart must be packaged with it (a symlink to the repository's file)" -}}
{{- end -}}
{{- toYaml $metadata -}}
{{- end -}}

{{/* The ClusterAdmissionPolicy's settings: the chart's values, plus the Setting to read in
     context-aware mode. allowedImages is the sync job's. */}}
{{- define "hook-sidecar-policy.settings" -}}
{{- $settings := deepCopy .Values.policy.settings -}}
{{- if hasKey $settings "allowedImages" -}}
{{- fail "policy.settings.allowedImages: the sync job owns allowedImages (from the Setting); list sidecars in the Setting whitelisted-sidecars instead" -}}
{{- end -}}
{{- if .Values.policy.contextAware.enabled -}}
{{- $_ := set $settings "harvesterSetting" (dict "name" .Values.policy.contextAware.setting "listMode" .Values.policy.contextAware.listMode) -}}
{{- end -}}
{{- toYaml $settings -}}
{{- end -}}

{{/* What the policies read through policy-server: the Setting in context-aware mode, ConfigMaps
     when allowedScripts lists scripts (each sidecar's ConfigMap, in the VM's namespace). */}}
{{- define "hook-sidecar-policy.contextAwareResources" -}}
{{- if .Values.policy.contextAware.enabled }}
- apiVersion: harvesterhci.io/v1beta1
  kind: Setting
{{- end }}
{{- if .Values.policy.settings.allowedScripts }}
- apiVersion: v1
  kind: ConfigMap
{{- end }}
{{- end -}}
