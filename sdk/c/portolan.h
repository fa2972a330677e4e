/*
 * Helpers for Portolan plugins written in C.
 *
 * The bindings themselves are generated from wit/ by `wit-bindgen c` on every
 * build (scripts/build-guest.sh), one header per world: scorecard_check.h,
 * action.h, catalog_source.h or scaffold_generator.h. The build defines
 * PORTOLAN_WORLD (e.g. scorecard_check) and PORTOLAN_WORLD_HEADER, so this
 * header includes the right one and names its string type portolan_string_t.
 *
 * Besides strings, logging and settings, it reads fields of JSON text (an
 * entity's spec, a rule's parameters) and wraps the catalog lookup of
 * contract 0.3.0 (portolan_catalog_lookup).
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

/* ---- Reading JSON text: a rule's parameters, an entity's spec. ----
 *
 * Small scanners over one JSON object's top level, not a JSON library:
 * enough to read a field of a spec or of parameters the host has already
 * validated against the check's schema (nested values are skipped whole,
 * so a key inside them never matches). */

static inline const char *portolan_json_ws_(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

/* The end of the JSON string that starts at `p` (a quote), or NULL. */
static inline const char *portolan_json_skip_string_(const char *p, const char *end) {
  for (p++; p < end; p++) {
    if (*p == '\\') { p++; continue; }
    if (*p == '"') return p + 1;
  }
  return NULL;
}

/* The end of the JSON value that starts at `p`, or NULL if malformed. */
static inline const char *portolan_json_skip_(const char *p, const char *end) {
  p = portolan_json_ws_(p, end);
  if (p >= end) return NULL;
  if (*p == '"') return portolan_json_skip_string_(p, end);
  if (*p == '{' || *p == '[') {
    int depth = 0;
    while (p < end) {
      if (*p == '"') {
        p = portolan_json_skip_string_(p, end);
        if (!p) return NULL;
        continue;
      }
      if (*p == '{' || *p == '[') depth++;
      else if (*p == '}' || *p == ']') {
        if (--depth == 0) return p + 1;
      }
      p++;
    }
    return NULL;
  }
  const char *start = p;
  while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') p++;
  return p > start ? p : NULL;
}

/* Finds the top-level field `key` of the JSON object `json`; on success
 * `*value` views its value's JSON text (inside `json`, not a copy). */
static inline bool portolan_json_field(const portolan_string_t *json, const char *key, portolan_string_t *value) {
  const char *p = (const char *)json->ptr, *end = p + json->len;
  size_t klen = strlen(key);
  p = portolan_json_ws_(p, end);
  if (p >= end || *p != '{') return false;
  p++;
  for (;;) {
    p = portolan_json_ws_(p, end);
    if (p >= end || *p != '"') return false;
    const char *kstart = p + 1, *kend = portolan_json_skip_string_(p, end);
    if (!kend) return false;
    bool match = (size_t)(kend - 1 - kstart) == klen && memcmp(kstart, key, klen) == 0;
    p = portolan_json_ws_(kend, end);
    if (p >= end || *p != ':') return false;
    const char *vstart = portolan_json_ws_(p + 1, end), *vend = portolan_json_skip_(vstart, end);
    if (!vend) return false;
    if (match) {
      value->ptr = (uint8_t *)vstart;
      value->len = (size_t)(vend - vstart);
      return true;
    }
    p = portolan_json_ws_(vend, end);
    if (p >= end || *p != ',') return false;
    p++;
  }
}

/* The JSON string literal `raw` (quotes included) decoded into a
 * NUL-terminated heap string, or NULL when `raw` is not a string. */
static inline char *portolan_json_unquote(const portolan_string_t *raw) {
  if (raw->len < 2 || raw->ptr[0] != '"' || raw->ptr[raw->len - 1] != '"') return NULL;
  char *out = (char *)malloc(raw->len * 3 + 1), *o = out;
  for (size_t i = 1; i + 1 < raw->len; i++) {
    char c = (char)raw->ptr[i];
    if (c != '\\') { *o++ = c; continue; }
    if (++i + 1 >= raw->len) break;
    switch (raw->ptr[i]) {
      case 'n': *o++ = '\n'; break;
      case 't': *o++ = '\t'; break;
      case 'r': *o++ = '\r'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'u': {
        unsigned cp = 0;
        for (int k = 0; k < 4 && i + 1 < raw->len - 1; k++) {
          char h = (char)raw->ptr[++i];
          cp = cp * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
        }
        /* UTF-8; a lone surrogate half becomes U+FFFD. */
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
        if (cp < 0x80) *o++ = (char)cp;
        else if (cp < 0x800) { *o++ = (char)(0xC0 | (cp >> 6)); *o++ = (char)(0x80 | (cp & 0x3F)); }
        else { *o++ = (char)(0xE0 | (cp >> 12)); *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *o++ = (char)(0x80 | (cp & 0x3F)); }
        break;
      }
      default: *o++ = (char)raw->ptr[i]; break; /* \" \\ \/ */
    }
  }
  *o = '\0';
  return out;
}

/* The top-level string field `key` of the JSON object `json` as a
 * NUL-terminated heap string, or NULL when it is absent or not a string. */
static inline char *portolan_json_string(const portolan_string_t *json, const char *key) {
  portolan_string_t raw;
  return portolan_json_field(json, key, &raw) ? portolan_json_unquote(&raw) : NULL;
}

/* The top-level boolean field `key`, or `fallback` when it is absent or
 * not a boolean. */
static inline bool portolan_json_bool(const portolan_string_t *json, const char *key, bool fallback) {
  portolan_string_t raw;
  if (!portolan_json_field(json, key, &raw)) return fallback;
  if (raw.len == 4 && memcmp(raw.ptr, "true", 4) == 0) return true;
  if (raw.len == 5 && memcmp(raw.ptr, "false", 5) == 0) return false;
  return fallback;
}

/* Whether the JSON array `raw` has the string `value` among its items. */
static inline bool portolan_json_array_has(const portolan_string_t *raw, const char *value) {
  const char *p = (const char *)raw->ptr, *end = p + raw->len;
  p = portolan_json_ws_(p, end);
  if (p >= end || *p != '[') return false;
  p = portolan_json_ws_(p + 1, end);
  while (p < end && *p != ']') {
    const char *vend = portolan_json_skip_(p, end);
    if (!vend) return false;
    portolan_string_t item = {(uint8_t *)p, (size_t)(vend - p)};
    char *text = portolan_json_unquote(&item);
    bool same = text && strcmp(text, value) == 0;
    free(text);
    if (same) return true;
    p = portolan_json_ws_(vend, end);
    if (p < end && *p == ',') p = portolan_json_ws_(p + 1, end);
  }
  return false;
}

/* ---- The catalog (contract 0.3.0): read-only lookups. ---- */

/* A full reference `kind:namespace/name` (kind and namespace lower-cased,
 * as the catalog writes them) from a reference that may leave out its kind
 * and namespace, Backstage's shorthand: `kind` and `namespace` fill in what
 * `ref` does not say. `portolan_full_ref("team-a", "group", "default")` is
 * "group:default/team-a". On the heap. */
static inline char *portolan_full_ref(const char *ref, const char *kind, const char *namespace_) {
  const char *slash = strchr(ref, '/'), *colon = strchr(ref, ':');
  /* A slash before the first colon means the colon belongs to the name. */
  if (colon && slash && slash < colon) colon = NULL;
  const char *k = kind, *rest = ref;
  size_t klen = strlen(kind);
  if (colon) { k = ref; klen = (size_t)(colon - ref); rest = colon + 1; }
  const char *ns = namespace_, *name = rest;
  size_t nslen = strlen(namespace_);
  const char *s = strchr(rest, '/');
  if (s) { ns = rest; nslen = (size_t)(s - rest); name = s + 1; }
  size_t n = klen + 1 + nslen + 1 + strlen(name);
  char *out = (char *)malloc(n + 1);
  snprintf(out, n + 1, "%.*s:%.*s/%s", (int)klen, k, (int)nslen, ns, name);
  for (size_t i = 0; i < klen + 1 + nslen; i++)
    if (out[i] >= 'A' && out[i] <= 'Z') out[i] = (char)(out[i] - 'A' + 'a');
  return out;
}

/* Most references one lookup may carry (wit/catalog.wit). */
#define PORTOLAN_MAX_LOOKUP_REFS 1000

typedef portolan_plugin_catalog_list_option_entity_t portolan_lookup_t;

/* Looks `n` full references up in the catalog in one call. On success
 * fills `found` with one answer per reference, in order (`is_some` false
 * where there is no such entity), and returns NULL. On failure returns a
 * heap message for humans; if `bad` is not NULL and the host refused one
 * reference, `*bad` is its index (else -1). */
static inline char *portolan_catalog_lookup(char *const *refs, size_t n, portolan_lookup_t *found, long *bad) {
  if (bad) *bad = -1;
  PORTOLAN_W(_list_string_t) list;
  list.len = n;
  list.ptr = (portolan_string_t *)calloc(n ? n : 1, sizeof(portolan_string_t));
  for (size_t i = 0; i < n; i++) {
    list.ptr[i].ptr = (uint8_t *)refs[i];
    list.ptr[i].len = strlen(refs[i]);
  }
  portolan_plugin_catalog_error_t err;
  memset(&err, 0, sizeof err);
  bool ok = portolan_plugin_catalog_lookup(&list, found, &err);
  free(list.ptr);
  if (ok) return NULL;
  portolan_string_t m;
  switch (err.tag) {
    case PORTOLAN_PLUGIN_CATALOG_ERROR_INVALID_REFERENCE:
      if (bad) *bad = (long)err.val.invalid_reference.f0;
      m = portolan_strf("catalog lookup refused reference %u: %.*s", err.val.invalid_reference.f0,
                        (int)err.val.invalid_reference.f1.len, (const char *)err.val.invalid_reference.f1.ptr);
      break;
    case PORTOLAN_PLUGIN_CATALOG_ERROR_TOO_MANY_REFERENCES:
      m = portolan_strf("catalog lookup of %u references refused (at most %d)", err.val.too_many_references,
                        PORTOLAN_MAX_LOOKUP_REFS);
      break;
    case PORTOLAN_PLUGIN_CATALOG_ERROR_UNAVAILABLE:
      m = portolan_strf("the catalog is unavailable: %.*s", (int)err.val.unavailable.len,
                        (const char *)err.val.unavailable.ptr);
      break;
    default:
      m = portolan_strf("catalog lookup failed: %.*s", (int)err.val.other.len, (const char *)err.val.other.ptr);
      break;
  }
  return (char *)m.ptr; /* portolan_strf NUL-terminates */
}

#endif /* PORTOLAN_H */
