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

{{/* The topic the reader consumes: config.kafka.topic, or the flavor's default. */}}
{{- define "ctpr.kafkaTopic" -}}
{{- default (printf "collaboration_integrations_%s" (include "ctpr.flavor" .)) .Values.config.kafka.topic -}}
{{- end -}}

{{/* The reader's consumer group and offset reset policy (the reader's defaults when unset). */}}
{{- define "ctpr.kafkaGroupId" -}}
{{- default "case-management" .Values.config.kafka.group_id -}}
{{- end -}}
{{- define "ctpr.kafkaOffsetReset" -}}
{{- lower (default "latest" .Values.config.kafka.auto_offset_reset) -}}
{{- end -}}

{{/* The bootstrap servers, comma-separated without blanks. */}}
{{- define "ctpr.kafkaBrokers" -}}
{{- regexReplaceAll "\\s+" (required "config.kafka.brokers must be set for autoscaling" .Values.config.kafka.brokers) "" -}}
{{- end -}}

{{/* autoscaling.maxReplicas, or the partition count when unset. */}}
{{- define "ctpr.autoscalingMaxReplicas" -}}
{{- if kindIs "invalid" .Values.autoscaling.maxReplicas -}}
{{- int .Values.autoscaling.partitions -}}
{{- else -}}
{{- int .Values.autoscaling.maxReplicas -}}
{{- end -}}
{{- end -}}

{{/*
Autoscaling's values: the mode, the partition count, bounds within it (replicas beyond the
partition count would sit idle), the thresholds; and no environment override of the Kafka
settings the autoscaler reads from values (it would scale on another topic or group).
*/}}
{{- define "ctpr.checkAutoscaling" -}}
{{- $as := .Values.autoscaling -}}
{{- if not (has $as.mode (list "keda" "hpa")) -}}
{{- fail (printf "autoscaling.mode must be keda or hpa, not %q" (toString $as.mode)) -}}
{{- end -}}
{{- $topic := include "ctpr.kafkaTopic" . -}}
{{- if or (kindIs "invalid" $as.partitions) (lt (int $as.partitions) 1) -}}
{{- fail (printf "autoscaling.partitions must be set to the partition count of topic %s: replicas beyond it would sit idle" $topic) -}}
{{- end -}}
{{- $partitions := int $as.partitions -}}
{{- $max := int (include "ctpr.autoscalingMaxReplicas" .) -}}
{{- if gt $max $partitions -}}
{{- fail (printf "autoscaling.maxReplicas (%d) exceeds autoscaling.partitions (%d): each partition of topic %s goes to one consumer of the group, so replicas beyond %d would sit idle" $max $partitions $topic $partitions) -}}
{{- end -}}
{{- if lt $max 1 -}}
{{- fail (printf "autoscaling.maxReplicas must be at least 1, not %d" $max) -}}
{{- end -}}
{{- if kindIs "invalid" $as.minReplicas -}}
{{- fail "autoscaling.minReplicas must be set" -}}
{{- end -}}
{{- $min := int $as.minReplicas -}}
{{- if gt $min $max -}}
{{- fail (printf "autoscaling.minReplicas (%d) exceeds autoscaling.maxReplicas (%d)" $min $max) -}}
{{- end -}}
{{- if and (eq $as.mode "hpa") (lt $min 1) -}}
{{- fail (printf "autoscaling.minReplicas must be at least 1 with mode hpa, not %d (a HorizontalPodAutoscaler does not scale to zero; mode keda does)" $min) -}}
{{- end -}}
{{- if lt $min 0 -}}
{{- fail (printf "autoscaling.minReplicas must not be negative, not %d" $min) -}}
{{- end -}}
{{- if lt (int $as.lagThreshold) 1 -}}
{{- fail (printf "autoscaling.lagThreshold must be at least 1 message per replica, not %v" $as.lagThreshold) -}}
{{- end -}}
{{- if and (eq $as.mode "keda") (lt (int $as.keda.activationLagThreshold) 0) -}}
{{- fail (printf "autoscaling.keda.activationLagThreshold must not be negative, not %v" $as.keda.activationLagThreshold) -}}
{{- end -}}
{{- if not (has (include "ctpr.kafkaOffsetReset" .) (list "latest" "earliest")) -}}
{{- fail (printf "config.kafka.auto_offset_reset must be latest or earliest, not %q" (include "ctpr.kafkaOffsetReset" .)) -}}
{{- end -}}
{{- range .Values.extraEnv -}}
{{- if has (upper .name) (list "CTPR_KAFKA__BROKERS" "CTPR_KAFKA__TOPIC" "CTPR_KAFKA__GROUP_ID" "CTPR_KAFKA__AUTO_OFFSET_RESET") -}}
{{- fail (printf "extraEnv %s: with autoscaling, set config.kafka in values, not the environment (the autoscaler reads the topic, group and brokers from values)" .name) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
What KEDA's Kafka scaler needs of the reader's [kafka.security], as YAML: `metadata` (the
trigger's tls and sasl), `username` (SASL, not a secret: served from a ConfigMap) and
`secretRefs` (parameter and key in the kafkaSecurity Secret: password, ca, cert, key,
keyPassword), the same Secret keys the reader mounts as files.
*/}}
{{- define "ctpr.kedaKafkaSecurity" -}}
{{- $sec := default (dict) .Values.config.kafka.security -}}
{{- $protocol := lower (default "plaintext" $sec.protocol) -}}
{{- $mount := trimSuffix "/" .Values.kafkaSecurity.mountPath -}}
{{- $secretName := .Values.kafkaSecurity.secretName -}}
{{- $metadata := dict -}}
{{- $refs := list -}}
{{- $username := "" -}}
{{- $files := list -}}
{{- if has $protocol (list "ssl" "sasl_ssl") -}}
{{- $_ := set $metadata "tls" "enable" -}}
{{- $files = list (list "ca" "ca_file") (list "cert" "certificate_file") (list "key" "key_file") (list "keyPassword" "key_password_file") -}}
{{- end -}}
{{- if has $protocol (list "sasl_plaintext" "sasl_ssl") -}}
{{- $mechanism := lower (toString $sec.mechanism) -}}
{{- $modes := dict "plain" "plaintext" "scram-sha-256" "scram_sha256" "scram-sha-512" "scram_sha512" -}}
{{- if not (hasKey $modes $mechanism) -}}
{{- fail (printf "autoscaling.mode keda: KEDA's Kafka scaler cannot use SASL mechanism %q as the reader does (for oauthbearer it fetches tokens itself from an OAuth endpoint, not from a token file): use autoscaling.mode hpa" $mechanism) -}}
{{- end -}}
{{- $_ := set $metadata "sasl" (get $modes $mechanism) -}}
{{- $username = required "autoscaling.mode keda: SASL needs config.kafka.security.username" $sec.username -}}
{{- $files = append $files (list "password" "password_file") -}}
{{- end -}}
{{- range $files -}}
{{- $param := index . 0 -}}
{{- $field := index . 1 -}}
{{- with (get $sec $field) -}}
{{- $key := trimPrefix (printf "%s/" $mount) . -}}
{{- if or (not $secretName) (not (hasPrefix (printf "%s/" $mount) .)) (contains "/" $key) -}}
{{- fail (printf "autoscaling.mode keda: config.kafka.security.%s (%s) must be a key of the kafkaSecurity Secret, directly under kafkaSecurity.mountPath (%s): KEDA reads the same Secret" $field . $mount) -}}
{{- end -}}
{{- $refs = append $refs (dict "parameter" $param "key" $key) -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "metadata" $metadata "username" $username "secretRefs" $refs) -}}
{{- end -}}
