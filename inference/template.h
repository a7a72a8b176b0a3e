/* Chat templates: the subset of Go's text/template that Ollama template layers
 * use, the built-in fallback templates, and the logic that turns an Ollama
 * generate/chat request into a prompt the way Ollama does.
 *
 * Supported: text and {{ }} actions with trim markers {{- -}}, comments,
 * if / else if / else / end, range (with `$i, $v :=`, else, break, continue),
 * with / else, variables ($x := / $x =, $ and $.Field), field chains on dot,
 * variables and parenthesised pipelines, pipelines with |, literals (strings,
 * raw strings, numbers, chars, true/false/nil), and the functions and, or,
 * not, len, index, slice, eq, ne, lt, le, gt, ge, print, printf, println,
 * json, currentDate, html, urlquery.
 *
 * Data is JSON (jansson). A Go-style field name is looked up as given, then in
 * snake_case (.ToolCalls -> "tool_calls", .Role -> "role"), so API request
 * objects can be passed as they arrive. A missing field is nil and renders as
 * "" (Ollama's data are structs, whose missing fields are zero values).
 * Objects render as JSON, as Ollama's Tool/ToolFunction/arguments types do
 * through their String methods; arrays render Go-style ("[a b]").
 *
 * Rendering is bounded (nesting depth, output size, steps), so a hostile
 * template gives an error message, never a crash or a hang.
 *
 * A tmpl_t is immutable after parsing and may be shared between threads. */
#ifndef OX_TEMPLATE_H
#define OX_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

typedef struct tmpl tmpl_t;

#define TMPL_MAX_OUTPUT ((size_t)32 << 20) /* bytes one render may produce */
#define TMPL_MAX_DEPTH 64                 /* nesting of blocks and parentheses */
#define TMPL_MAX_STEPS 5000000            /* evaluated nodes per render */

/* Parses src[0..len). Returns 0 with *out (caller frees with tmpl_free) or
 * OX_EFORMAT with a message ("template: line 3: unexpected {{end}}") in err,
 * or OX_ENOMEM. src is copied. */
int tmpl_parse(const char *src, size_t len, tmpl_t **out, char *err, size_t errlen);
void tmpl_free(tmpl_t *t);

/* Renders with data as dot and $ (borrowed). Appends to out. Returns 0,
 * OX_EINVAL (execution error, message in err; out may hold partial output),
 * OX_ETOOBIG (output or step limit) or OX_ENOMEM. */
int tmpl_render(const tmpl_t *t, json_t *data, ox_buf_t *out, char *err, size_t errlen);

/* True when the template refers to field name anywhere (Ollama decides
 * between the messages and the legacy prompt/response mode on "Messages"). */
bool tmpl_uses_field(const tmpl_t *t, const char *name);

/* Ollama's Template.Execute for a message list (array of API message objects
 * {role, content, tool_calls?, tool_name?, ...}, borrowed) and tools (array
 * or NULL, borrowed): consecutive messages of one role (except tool) are
 * collated with "\n\n", system messages are joined into .System; a template
 * that uses .Messages gets {System, Messages, Tools, Response:""}; an older
 * prompt/response template is run once per exchange and the last run is cut
 * right after {{ .Response }} so the prompt ends where the reply begins (a
 * final assistant message is a prefill). Tools are normalised to Ollama's
 * field order so `json`/printing matches Ollama byte for byte. */
int tmpl_render_messages(const tmpl_t *t, json_t *messages, json_t *tools, ox_buf_t *out,
                         char *err, size_t errlen);

/* Fill-in-the-middle: renders {Prompt, Suffix, Response:""}. */
int tmpl_render_suffix(const tmpl_t *t, const char *prompt, const char *suffix, ox_buf_t *out,
                       char *err, size_t errlen);

/* Message list Ollama builds for /api/chat: the model's messages (Modelfile
 * MESSAGE, may be NULL) then the request's; the model's system prompt (may be
 * NULL/"") goes first unless the request starts with a system message.
 * Returns a new array (caller json_decref) or NULL on OOM / bad input. */
json_t *tmpl_chat_messages(json_t *req_messages, const char *model_system,
                           json_t *model_messages);

/* Message list for /api/generate: system (request's, else the model's), the
 * model's messages unless a context is given, then the user prompt. Returns a
 * new array (caller json_decref) or NULL on OOM. */
json_t *tmpl_generate_messages(const char *prompt, const char *req_system,
                               const char *model_system, json_t *model_messages,
                               bool has_context);

/* Token counter used for truncation; returns the count or a negative code. */
typedef long (*tmpl_count_fn)(void *ctx, const char *text, size_t len);

/* Ollama's chatPrompt truncation: renders the newest messages that fit in
 * num_ctx tokens (always the last message, plus every system message before
 * the cut). count may be NULL (no truncation). */
int tmpl_render_messages_fit(const tmpl_t *t, json_t *messages, json_t *tools, long num_ctx,
                             tmpl_count_fn count, void *ctx, ox_buf_t *out, char *err,
                             size_t errlen);

/* Built-in fallback templates (Ollama's own texts for these families):
 * "llama3", "chatml" (qwen2), "mistral", "llama2", "raw" ({{ .Prompt }}).
 * Returns static text or NULL for an unknown name. */
const char *tmpl_builtin(const char *name);

/* Picks a built-in template name for a model without a template layer from
 * the GGUF's general.architecture and tokenizer.chat_template (either may be
 * NULL). Never NULL. */
const char *tmpl_builtin_for(const char *arch, const char *hf_chat_template);

#endif
