{{- define "rollguard.labels" -}}
app.kubernetes.io/name: rollguard
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
{{- define "rollguard.selector" -}}
app.kubernetes.io/name: rollguard
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
