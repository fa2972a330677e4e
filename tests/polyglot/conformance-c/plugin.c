/* The conformance check in C (rules in ../README.md). */
#include "portolan.h"

typedef exports_portolan_plugin_check_outcome_t outcome_t;

static outcome_t outcome(exports_portolan_plugin_check_status_t status, portolan_string_t *message, portolan_string_t *value) {
  outcome_t o = {0};
  o.status = status;
  if (message) { o.message.is_some = true; o.message.val = *message; }
  if (value) { o.value.is_some = true; o.value.val = *value; }
  return o;
}

static outcome_t fail(portolan_string_t message) {
  return outcome(EXPORTS_PORTOLAN_PLUGIN_CHECK_STATUS_FAIL, &message, NULL);
}

static outcome_t judge(const exports_portolan_plugin_check_entity_t *e, long min_length) {
  if (portolan_eq_ignore_case(&e->kind, "user") || portolan_eq_ignore_case(&e->kind, "group")) {
    portolan_string_t why = portolan_str("people and teams are exempt");
    return outcome(EXPORTS_PORTOLAN_PLUGIN_CHECK_STATUS_SKIP, &why, NULL);
  }
  portolan_string_t text = {0};
  if (e->description.is_some) text = portolan_trim(&e->description.val);
  if (text.len == 0) return fail(portolan_str("no description"));
  long length = (long)portolan_chars(&text);
  if (length < min_length)
    return fail(portolan_strf("description has %ld characters, fewer than %ld", length, min_length));
  for (size_t i = 0; i < e->tags.len; i++) {
    if (portolan_has_upper(&e->tags.ptr[i])) {
      return fail(portolan_strf("tag \"%.*s\" is not lowercase", (int)e->tags.ptr[i].len, (const char *)e->tags.ptr[i].ptr));
    }
  }
  if (e->links.len == 0) return fail(portolan_str("no links"));
  portolan_string_t value = portolan_strf("%ld", length);
  return outcome(EXPORTS_PORTOLAN_PLUGIN_CHECK_STATUS_PASS, NULL, &value);
}

/* The `owner-known` check: each entity's owner, completed as a Group in the
 * entity's namespace, looked up in the catalog in one call. */
static void owners_known(const exports_portolan_plugin_check_list_entity_t *entities, outcome_t *out) {
  size_t n = entities->len, wanted = 0;
  char **owners = calloc(n ? n : 1, sizeof(char *));
  char **refs = calloc(n ? n : 1, sizeof(char *));
  for (size_t i = 0; i < n; i++) {
    const exports_portolan_plugin_check_entity_t *e = &entities->ptr[i];
    char *owner = portolan_json_string(&e->spec, "owner");
    if (owner && *owner) {
      char *ns = portolan_cstr(&e->namespace_);
      owners[i] = portolan_full_ref(owner, "group", ns);
      refs[wanted++] = owners[i];
    }
  }
  portolan_lookup_t found = {0};
  char *failed = portolan_catalog_lookup(refs, wanted, &found, NULL);
  size_t next = 0;
  for (size_t i = 0; i < n; i++) {
    if (!owners[i]) {
      portolan_string_t why = portolan_str("no owner");
      out[i] = outcome(EXPORTS_PORTOLAN_PLUGIN_CHECK_STATUS_SKIP, &why, NULL);
    } else if (failed) {
      portolan_string_t why = portolan_str(failed);
      out[i] = outcome(EXPORTS_PORTOLAN_PLUGIN_CHECK_STATUS_ERROR, &why, NULL);
    } else if (found.ptr[next++].is_some) {
      portolan_string_t value = portolan_str(portolan_json_quote(owners[i]));
      out[i] = outcome(EXPORTS_PORTOLAN_PLUGIN_CHECK_STATUS_PASS, NULL, &value);
    } else {
      out[i] = fail(portolan_strf("owner \"%s\" is not in the catalog", owners[i]));
    }
  }
}

void exports_portolan_plugin_check_describe(exports_portolan_plugin_check_plugin_info_t *ret) {
  ret->about.title = portolan_str("Conformance (C)");
  ret->about.version = portolan_str("0.1.0");
  ret->about.description = portolan_str("The cross-language conformance check.");
  ret->checks.len = 2;
  ret->checks.ptr = calloc(2, sizeof(*ret->checks.ptr));
  ret->checks.ptr[0].id = portolan_str("conformance");
  ret->checks.ptr[0].title = portolan_str("Conformance");
  ret->checks.ptr[0].description = portolan_str("Description, lowercase tags and links.");
  ret->checks.ptr[0].parameters_schema =
      portolan_str("{\"type\":\"object\",\"properties\":{\"minLength\":{\"type\":\"integer\",\"minimum\":0}}}");
  ret->checks.ptr[1].id = portolan_str("owner-known");
  ret->checks.ptr[1].title = portolan_str("Owner known");
  ret->checks.ptr[1].description = portolan_str("The owner is in the catalog.");
  ret->checks.ptr[1].parameters_schema = portolan_str("{\"type\":\"object\"}");
}

bool exports_portolan_plugin_check_evaluate(portolan_string_t *check, portolan_string_t *parameters,
                                            exports_portolan_plugin_check_list_entity_t *entities,
                                            exports_portolan_plugin_check_list_outcome_t *ret,
                                            exports_portolan_plugin_check_error_t *err) {
  if (portolan_eq(check, "owner-known")) {
    ret->len = entities->len;
    ret->ptr = calloc(entities->len ? entities->len : 1, sizeof(outcome_t));
    owners_known(entities, ret->ptr);
    return true;
  }
  if (!portolan_eq(check, "conformance")) {
    err->tag = EXPORTS_PORTOLAN_PLUGIN_CHECK_ERROR_UNKNOWN_CHECK;
    err->val.unknown_check = *check;
    return false;
  }
  long min_length = portolan_json_int(parameters, "minLength", 10);
  ret->len = entities->len;
  ret->ptr = calloc(entities->len ? entities->len : 1, sizeof(outcome_t));
  for (size_t i = 0; i < entities->len; i++) ret->ptr[i] = judge(&entities->ptr[i], min_length);
  return true;
}
