{{- define "streamhouse.fullname" -}}
{{- printf "%s-streamhouse" .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "streamhouse.labels" -}}
app.kubernetes.io/name: streamhouse-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "streamhouse.selector" -}}
app.kubernetes.io/name: streamhouse-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "streamhouse.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}

{{- define "streamhouse.webhookSecret" -}}
{{- if .Values.webhook.certSecret -}}
{{ .Values.webhook.certSecret }}
{{- else -}}
{{ include "streamhouse.fullname" . }}-webhook-tls
{{- end -}}
{{- end -}}

{{- /* The ValidatingWebhookConfiguration the chart creates and the operator keeps current. */ -}}
{{- define "streamhouse.webhookName" -}}
{{ printf "%s.streamhouse.io" (include "streamhouse.fullname" .) }}
{{- end -}}
