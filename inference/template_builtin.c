/* Built-in fallback templates, in Ollama's template language, for models
 * whose manifest has no template layer. The texts follow the templates the
 * Ollama library ships for these families. */
#include "inference/template.h"

#include <string.h>

static const char llama3_tmpl[] =
    "<|start_header_id|>system<|end_header_id|>\n"
    "\n"
    "Cutting Knowledge Date: December 2023\n"
    "\n"
    "{{ if .System }}{{ .System }}\n"
    "{{- end }}\n"
    "{{- if .Tools }}When you receive a tool call response, use the output to format an answer "
    "to the orginal user question.\n"
    "\n"
    "You are a helpful assistant with tool calling capabilities.\n"
    "{{- end }}<|eot_id|>\n"
    "{{- range $i, $_ := .Messages }}\n"
    "{{- $last := eq (len (slice $.Messages $i)) 1 }}\n"
    "{{- if eq .Role \"user\" }}<|start_header_id|>user<|end_header_id|>\n"
    "{{- if and $.Tools $last }}\n"
    "\n"
    "Given the following functions, please respond with a JSON for a function call with its "
    "proper arguments that best answers the given prompt.\n"
    "\n"
    "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name "
    "and its value}. Do not use variables.\n"
    "\n"
    "{{ range $.Tools }}\n"
    "{{- . }}\n"
    "{{ end }}\n"
    "{{ .Content }}<|eot_id|>\n"
    "{{- else }}\n"
    "\n"
    "{{ .Content }}<|eot_id|>\n"
    "{{- end }}{{ if $last }}<|start_header_id|>assistant<|end_header_id|>\n"
    "\n"
    "{{ end }}\n"
    "{{- else if eq .Role \"assistant\" }}<|start_header_id|>assistant<|end_header_id|>\n"
    "{{- if .ToolCalls }}\n"
    "{{ range .ToolCalls }}\n"
    "{\"name\": \"{{ .Function.Name }}\", \"parameters\": {{ .Function.Arguments }}}{{ end }}\n"
    "{{- else }}\n"
    "\n"
    "{{ .Content }}\n"
    "{{- end }}{{ if not $last }}<|eot_id|>{{ end }}\n"
    "{{- else if eq .Role \"tool\" }}<|start_header_id|>ipython<|end_header_id|>\n"
    "\n"
    "{{ .Content }}<|eot_id|>{{ if $last }}<|start_header_id|>assistant<|end_header_id|>\n"
    "\n"
    "{{ end }}\n"
    "{{- end }}\n"
    "{{- end }}";

static const char chatml_tmpl[] =
    "{{- if .Messages }}\n"
    "{{- if or .System .Tools }}<|im_start|>system\n"
    "{{- if .System }}\n"
    "{{ .System }}\n"
    "{{- end }}\n"
    "{{- if .Tools }}\n"
    "\n"
    "# Tools\n"
    "\n"
    "You may call one or more functions to assist with the user query.\n"
    "\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n"
    "<tools>\n"
    "{{- range .Tools }}\n"
    "{\"type\": \"function\", \"function\": {{ .Function }}}\n"
    "{{- end }}\n"
    "</tools>\n"
    "\n"
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n"
    "<tool_call>\n"
    "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n"
    "</tool_call>\n"
    "{{- end }}<|im_end|>\n"
    "{{ end }}\n"
    "{{- range $i, $_ := .Messages }}\n"
    "{{- $last := eq (len (slice $.Messages $i)) 1 -}}\n"
    "{{- if eq .Role \"user\" }}<|im_start|>user\n"
    "{{ .Content }}<|im_end|>\n"
    "{{ else if eq .Role \"assistant\" }}<|im_start|>assistant\n"
    "{{ if .Content }}{{ .Content }}\n"
    "{{- else if .ToolCalls }}<tool_call>\n"
    "{{ range .ToolCalls }}{\"name\": \"{{ .Function.Name }}\", \"arguments\": "
    "{{ .Function.Arguments }}}\n"
    "{{ end }}</tool_call>\n"
    "{{- end }}{{ if not $last }}<|im_end|>\n"
    "{{ end }}\n"
    "{{- else if eq .Role \"tool\" }}<|im_start|>user\n"
    "<tool_response>\n"
    "{{ .Content }}\n"
    "</tool_response><|im_end|>\n"
    "{{ end }}\n"
    "{{- if and (ne .Role \"assistant\") $last }}<|im_start|>assistant\n"
    "{{ end }}\n"
    "{{- end }}\n"
    "{{- else }}\n"
    "{{- if .System }}<|im_start|>system\n"
    "{{ .System }}<|im_end|>\n"
    "{{ end }}{{ if .Prompt }}<|im_start|>user\n"
    "{{ .Prompt }}<|im_end|>\n"
    "{{ end }}<|im_start|>assistant\n"
    "{{ end }}{{ .Response }}{{ if .Response }}<|im_end|>{{ end }}";

static const char mistral_tmpl[] =
    "{{- if .Messages }}\n"
    "{{- range $index, $_ := .Messages }}\n"
    "{{- if eq .Role \"user\" }}\n"
    "{{- if and (eq (len (slice $.Messages $index)) 1) $.Tools }}[AVAILABLE_TOOLS] "
    "{{ $.Tools }}[/AVAILABLE_TOOLS]\n"
    "{{- end }}[INST] {{ if and $.System (eq (len (slice $.Messages $index)) 1) }}{{ $.System }}\n"
    "\n"
    "{{ end }}{{ .Content }}[/INST]\n"
    "{{- else if eq .Role \"assistant\" }}\n"
    "{{- if .Content }} {{ .Content }}\n"
    "{{- else if .ToolCalls }}[TOOL_CALLS] [\n"
    "{{- range .ToolCalls }}{\"name\": \"{{ .Function.Name }}\", \"arguments\": "
    "{{ .Function.Arguments }}}\n"
    "{{- end }}]\n"
    "{{- end }}</s>\n"
    "{{- else if eq .Role \"tool\" }}[TOOL_RESULTS] {\"content\": {{ .Content }}} "
    "[/TOOL_RESULTS]\n"
    "{{- end }}\n"
    "{{- end }}\n"
    "{{- else }}[INST] {{ if .System }}{{ .System }}\n"
    "\n"
    "{{ end }}{{ .Prompt }}[/INST]\n"
    "{{- end }}{{ .Response }}\n"
    "{{- if .Response }}</s>\n"
    "{{- end }}";

static const char llama2_tmpl[] =
    "{{- if .Messages }}\n"
    "{{- range $index, $_ := .Messages }}\n"
    "{{- if eq .Role \"user\" }}[INST] {{ if and (eq $index 0) $.System }}<<SYS>>{{ $.System }}"
    "<</SYS>>\n"
    "\n"
    "{{ end }}{{ .Content }}\n"
    "{{- else if eq .Role \"assistant\" }} [/INST] {{ .Content }}</s><s>\n"
    "{{- end }}\n"
    "{{- end }} [/INST]\n"
    "{{- else }}[INST] {{ if .System }}<<SYS>>{{ .System }}<</SYS>>\n"
    "\n"
    "{{ end }}{{ .Prompt }} [/INST]\n"
    "{{- end }}";

static const char raw_tmpl[] = "{{ .Prompt }}";

const char *tmpl_builtin(const char *name)
{
    if (!name)
        return NULL;
    if (strcmp(name, "llama3") == 0)
        return llama3_tmpl;
    if (strcmp(name, "chatml") == 0 || strcmp(name, "qwen2") == 0)
        return chatml_tmpl;
    if (strcmp(name, "mistral") == 0)
        return mistral_tmpl;
    if (strcmp(name, "llama2") == 0)
        return llama2_tmpl;
    if (strcmp(name, "raw") == 0)
        return raw_tmpl;
    return NULL;
}

const char *tmpl_builtin_for(const char *arch, const char *hf)
{
    if (hf && *hf) {
        if (strstr(hf, "<|start_header_id|>"))
            return "llama3";
        if (strstr(hf, "<|im_start|>"))
            return "chatml";
        if (strstr(hf, "<<SYS>>"))
            return "llama2";
        if (strstr(hf, "[INST]"))
            return "mistral";
    }
    if (arch && (strncmp(arch, "qwen", 4) == 0))
        return "chatml";
    return "raw";
}
