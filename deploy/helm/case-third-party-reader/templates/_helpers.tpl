{{/* The flavor, required: jira, servicenow or github. */}}
{{- define "ctpr.flavor" -}}
{{- $flavor := required "flavor must be set: -f values/flavors/<flavor>.yaml" .Values.flavor -}}
{{- if not (has $flavor (list "jira" "servicenow" "github")) -}}
{{- fail (printf "flavor must be jira, servicenow or github, not %q" $flavor) -}}
{{- end -}}
{{- $flavor -}}
{{- end -}}

{{/* case-third-party-reader-<flavor>, or fullnameOverride. */}}
{{- define "ctpr.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Chart.Name (include "ctpr.flavor" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ctpr.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: {{ include "ctpr.flavor" . }}
{{- end -}}

{{- define "ctpr.labels" -}}
{{ include "ctpr.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.tenant }}
case-third-party-reader/tenant: {{ . }}
{{- end }}
{{- end -}}

{{- define "ctpr.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ctpr.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* <registry>/<name>-<flavor>:<tag>; a FIPS tenant must use a FIPS image. */}}
{{- define "ctpr.image" -}}
{{- $name := required "image.name must be set" .Values.image.name -}}
{{- if and .Values.fips (not (hasSuffix "fips" $name)) -}}
{{- fail (printf "fips: true needs the FIPS image (casethirdpartyreaderfips), not %q" $name) -}}
{{- end -}}
{{- if and (not .Values.fips) (hasSuffix "fips" $name) -}}
{{- fail (printf "image %q is a FIPS image: set fips: true" $name) -}}
{{- end -}}
{{- $repo := printf "%s-%s" $name (include "ctpr.flavor" .) -}}
{{- with .Values.image.registry -}}
{{- $repo = printf "%s/%s" (trimSuffix "/" .) $repo -}}
{{- end -}}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The reader's config as a dict: values' config with [health] listen from healthPort. */}}
{{- define "ctpr.configDict" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $health := default (dict) $cfg.health -}}
{{- $_ := set $health "listen" (printf "0.0.0.0:%d" (int .Values.healthPort)) -}}
{{- $_ := set $cfg "health" $health -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* A TOML key: bare when it can be, quoted otherwise. */}}
{{- define "ctpr.tomlKey" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . -}}{{ . }}{{- else -}}{{ toJson . }}{{- end -}}
{{- end -}}

{{/*
One TOML table: scalars and arrays first (JSON encoding is valid TOML for strings, numbers,
booleans and arrays of them), then sub-tables. Null values are left out. Args: path, table.
*/}}
{{- define "ctpr.tomlTable" -}}
{{- $path := .path -}}
{{- $table := .table -}}
[{{ $path }}]
{{- range $key, $value := $table }}
{{- if and (not (kindIs "map" $value)) (not (kindIs "invalid" $value)) }}
{{ include "ctpr.tomlKey" $key }} = {{ toJson $value }}
{{- end }}
{{- end }}
{{- range $key, $value := $table }}
{{- if kindIs "map" $value }}

{{ include "ctpr.tomlTable" (dict "path" (printf "%s.%s" $path (include "ctpr.tomlKey" $key)) "table" $value) }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The TOML config, every section but [skip] (which the reader reloads without a restart). */}}
{{- define "ctpr.configToml" -}}
{{- $cfg := include "ctpr.configDict" . | fromYaml -}}
{{- range $section, $table := $cfg }}
{{- if and (ne $section "skip") (kindIs "map" $table) }}

{{ include "ctpr.tomlTable" (dict "path" (include "ctpr.tomlKey" $section) "table" $table) }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The [skip] section: the operator skip list. */}}
{{- define "ctpr.skipToml" -}}
{{- $skip := default (dict) .Values.config.skip -}}
[skip]
messages = {{ toJson (default (list) $skip.messages) }}
{{- end -}}

{{/*
Kafka security: every secret file (SASL password, OAUTHBEARER token, TLS client key and its
passphrase) must come from the mounted kafkaSecurity Secret, and no environment variable may
set a [kafka.security] field (an override could point elsewhere or switch TLS off).
*/}}
{{- define "ctpr.checkKafkaSecurity" -}}
{{- $sec := default (dict) .Values.config.kafka.security -}}
{{- $mount := trimSuffix "/" .Values.kafkaSecurity.mountPath -}}
{{- range $field := list "password_file" "token_file" "key_file" "key_password_file" -}}
{{- with (get $sec $field) -}}
{{- if not $.Values.kafkaSecurity.secretName -}}
{{- fail (printf "config.kafka.security.%s needs kafkaSecurity.secretName: secrets are mounted from a Secret" $field) -}}
{{- end -}}
{{- if not (hasPrefix (printf "%s/" $mount) .) -}}
{{- fail (printf "config.kafka.security.%s (%s) must be under kafkaSecurity.mountPath (%s)" $field . $mount) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range .Values.extraEnv -}}
{{- if hasPrefix "CTPR_KAFKA__SECURITY__" (upper .name) -}}
{{- fail (printf "extraEnv %s: set config.kafka.security in values, not the environment" .name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
