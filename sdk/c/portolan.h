/*
 * Helpers for Portolan plugins written in C.
 *
 * The bindings themselves are generated from wit/ by `wit-bindgen c` on every
 * build (scripts/build-guest.sh), one header per world: scorecard_check.h,
 * action.h, catalog_source.h or scaffold_generator.h. The build defines
 * PORTOLAN_WORLD (e.g. scorecard_check) and PORTOLAN_WORLD_HEADER, so this
 * header includes the right one and names its string type portolan_string_t.
 *
 * Memory: every call runs in a fresh instance that is thrown away after the
 * call, so a plugin may leave what it allocates. Strings handed to the host
 * (in a returned record) must be heap-allocated: the generated code frees
 * them after the host has copied them. These helpers always allocate.
 */
#ifndef PORTOLAN_H
#define PORTOLAN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include PORTOLAN_WORLD_HEADER

#define PORTOLAN_CAT_(a, b) a##b
#define PORTOLAN_CAT(a, b) PORTOLAN_CAT_(a, b)
/* A name of the generated world header: PORTOLAN_W(_string_t). */
#define PORTOLAN_W(suffix) PORTOLAN_CAT(PORTOLAN_WORLD, suffix)

typedef PORTOLAN_W(_string_t) portolan_string_t;

/* A heap copy of the C string `s`. */
static inline portolan_string_t portolan_str(const char *s) {
  portolan_string_t out;
  PORTOLAN_W(_string_dup)(&out, s);
  return out;
}

/* A heap string formatted like printf. */
__attribute__((format(printf, 1, 2)))
static inline portolan_string_t portolan_strf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  portolan_string_t out = {(uint8_t *)malloc((size_t)n + 1), (size_t)n};
  va_start(ap, fmt);
  vsnprintf((char *)out.ptr, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return out;
}

/* A NUL-terminated heap copy of `s`, for the C library's functions. */
static inline char *portolan_cstr(const portolan_string_t *s) {
  char *out = (char *)malloc(s->len + 1);
  memcpy(out, s->ptr, s->len);
  out[s->len] = '\0';
  return out;
}

/* Whether `s` holds exactly the C string `c`. */
static inline bool portolan_eq(const portolan_string_t *s, const char *c) {
  size_t n = strlen(c);
  return s->len == n && memcmp(s->ptr, c, n) == 0;
}

/* Whether `s` equals `c`, ignoring ASCII case. */
static inline bool portolan_eq_ignore_case(const portolan_string_t *s, const char *c) {
  size_t n = strlen(c);
  if (s->len != n) return false;
  for (size_t i = 0; i < n; i++) {
    char a = (char)s->ptr[i], b = c[i];
    if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = (char)(b - 'A' + 'a');
    if (a != b) return false;
  }
  return true;
}

/* `s` without leading and trailing ASCII whitespace (space, tab, CR, LF);
 * a view into `s`, not a copy. */
static inline portolan_string_t portolan_trim(const portolan_string_t *s) {
  size_t start = 0, end = s->len;
  while (start < end && strchr(" \t\r\n", s->ptr[start]) && s->ptr[start]) start++;
  while (end > start && strchr(" \t\r\n", s->ptr[end - 1]) && s->ptr[end - 1]) end--;
  portolan_string_t out = {s->ptr + start, end - start};
  return out;
}

/* The number of Unicode code points of UTF-8 text (bytes that do not
 * continue a sequence). */
static inline size_t portolan_chars(const portolan_string_t *s) {
  size_t n = 0;
  for (size_t i = 0; i < s->len; i++) n += (s->ptr[i] & 0xC0) != 0x80;
  return n;
}

/* Whether `s` has an upper-case ASCII letter. */
static inline bool portolan_has_upper(const portolan_string_t *s) {
  for (size_t i = 0; i < s->len; i++)
    if (s->ptr[i] >= 'A' && s->ptr[i] <= 'Z') return true;
  return false;
}

/* The integer value of `key` in a flat JSON object such as a rule's
 * parameters (`{"minLength": 12}`), or `fallback` when the key is absent or
 * not an integer. A small scanner, not a JSON parser: it finds the first
 * occurrence of "key" followed by a colon, so use it on flat objects whose
 * schema the host has already validated. */
static inline long portolan_json_int(const portolan_string_t *json, const char *key, long fallback) {
  char *text = portolan_cstr(json);
  size_t klen = strlen(key);
  long value = fallback;
  for (char *p = text; (p = strchr(p, '"')) != NULL; p++) {
    if (strncmp(p + 1, key, klen) != 0 || p[1 + klen] != '"') continue;
    char *q = p + 2 + klen;
    while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') q++;
    if (*q != ':') continue;
    q++;
    char *end;
    long v = strtol(q, &end, 10);
    if (end != q && (*end == ',' || *end == '}' || *end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
      value = v;
    break;
  }
  free(text);
  return value;
}

/* `s` as a JSON string literal (quotes and escapes added), on the heap. */
static inline char *portolan_json_quote(const char *s) {
  size_t n = 2;
  for (const char *p = s; *p; p++) n += ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\') ? 6 : 1;
  char *out = (char *)malloc(n + 1), *o = out;
  *o++ = '"';
  for (const char *p = s; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == '"' || c == '\\') { *o++ = '\\'; *o++ = (char)c; }
    else if (c < 0x20) o += sprintf(o, "\\u%04x", c);
    else *o++ = (char)c;
  }
  *o++ = '"';
  *o = '\0';
  return out;
}

typedef PORTOLAN_W(_option_string_t) portolan_option_string_t;

/* `some(copy of s)`, or `none` when `s` is NULL. */
static inline portolan_option_string_t portolan_some(const char *s) {
  portolan_option_string_t out = {0};
  if (s) { out.is_some = true; out.val = portolan_str(s); }
  return out;
}

/* A catalog entity with the fields most sources fill in; `description` may be
 * NULL, `spec_json` is a JSON object as text (NULL for `{}`). Labels,
 * annotations, tags and links start empty: set them on the result. */
static inline portolan_plugin_types_entity_t portolan_entity(const char *kind, const char *name,
                                                             const char *description, const char *spec_json) {
  portolan_plugin_types_entity_t e;
  memset(&e, 0, sizeof e);
  e.api_version = portolan_str("backstage.io/v1alpha1");
  e.kind = portolan_str(kind);
  e.namespace_ = portolan_str("default");
  e.name = portolan_str(name);
  e.description = portolan_some(description);
  e.spec = portolan_str(spec_json ? spec_json : "{}");
  return e;
}

/* Appends a line to the call's log (printf-style). `level` is one of
 * PORTOLAN_PLUGIN_HOST_LOG_LEVEL_{TRACE,DEBUG,INFO,WARN,ERROR}. */
__attribute__((format(printf, 2, 3)))
static inline void portolan_log(portolan_plugin_host_log_level_t level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *text = (char *)malloc((size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(text, (size_t)n + 1, fmt, ap);
  va_end(ap);
  portolan_string_t message = {(uint8_t *)text, (size_t)n};
  portolan_plugin_host_log(level, &message);
  free(text);
}
#define portolan_info(...) portolan_log(PORTOLAN_PLUGIN_HOST_LOG_LEVEL_INFO, __VA_ARGS__)
#define portolan_warn(...) portolan_log(PORTOLAN_PLUGIN_HOST_LOG_LEVEL_WARN, __VA_ARGS__)

/* A setting of the sidecar's [settings] as a NUL-terminated heap string, or
 * NULL when it is not set. */
static inline char *portolan_setting(const char *key) {
  portolan_string_t k = {(uint8_t *)key, strlen(key)};
  portolan_string_t value;
  if (!portolan_plugin_host_setting(&k, &value)) return NULL;
  return portolan_cstr(&value);
}

#endif /* PORTOLAN_H */
