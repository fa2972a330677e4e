/*
 * catalog-hygiene: scorecard checks of how well an entity is catalogued.
 *
 *   description     at least `minLength` characters (parameter, default 20)
 *                   once ASCII whitespace is trimmed; counts code points
 *   lowercase-tags  no tag has an upper-case letter (Backstage lowercases
 *                   tags in search, so "Java" and "java" split a facet)
 *   has-links       at least one link (docs, runbook, dashboard)
 *
 * A passing description check reports its length as the value.
 */
#include "portolan.h"

typedef exports_portolan_plugin_check_outcome_t outcome_t;
typedef exports_portolan_plugin_check_entity_t entity_t;

static outcome_t verdict(bool pass, portolan_string_t message, const char *value) {
  outcome_t o = {0};
  o.status = pass ? EXPORTS_PORTOLAN_PLUGIN_CHECK_STATUS_PASS : EXPORTS_PORTOLAN_PLUGIN_CHECK_STATUS_FAIL;
  if (message.len) { o.message.is_some = true; o.message.val = message; }
  if (value) { o.value.is_some = true; o.value.val = portolan_str(value); }
  return o;
}

static const portolan_string_t NONE = {0};

static outcome_t description(const entity_t *e, long min_length) {
  portolan_string_t text = {0};
  if (e->description.is_some) text = portolan_trim(&e->description.val);
  if (text.len == 0) return verdict(false, portolan_str("no description"), NULL);
  long length = (long)portolan_chars(&text);
  if (length < min_length)
    return verdict(false, portolan_strf("description has %ld characters, fewer than %ld", length, min_length), NULL);
  char value[24];
  snprintf(value, sizeof value, "%ld", length);
  return verdict(true, NONE, value);
}

static outcome_t lowercase_tags(const entity_t *e) {
  for (size_t i = 0; i < e->tags.len; i++)
    if (portolan_has_upper(&e->tags.ptr[i]))
      return verdict(false, portolan_strf("tag \"%.*s\" is not lowercase", (int)e->tags.ptr[i].len,
                                          (const char *)e->tags.ptr[i].ptr), NULL);
  return verdict(true, NONE, NULL);
}

static outcome_t has_links(const entity_t *e) {
  return e->links.len ? verdict(true, NONE, NULL) : verdict(false, portolan_str("no links"), NULL);
}

static void define(exports_portolan_plugin_check_check_info_t *c, const char *id, const char *title,
                   const char *what, const char *schema) {
  c->id = portolan_str(id);
  c->title = portolan_str(title);
  c->description = portolan_str(what);
  c->parameters_schema = portolan_str(schema);
}

void exports_portolan_plugin_check_describe(exports_portolan_plugin_check_plugin_info_t *ret) {
  ret->about.title = portolan_str("Catalog hygiene");
  ret->about.version = portolan_str("0.1.0");
  ret->about.description = portolan_str("Descriptions, lowercase tags and links: how well an entity is catalogued.");
  ret->checks.len = 3;
  ret->checks.ptr = calloc(3, sizeof(*ret->checks.ptr));
  define(&ret->checks.ptr[0], "description", "Is described", "The description has at least minLength characters.",
         "{\"type\":\"object\",\"additionalProperties\":false,"
         "\"properties\":{\"minLength\":{\"type\":\"integer\",\"minimum\":0,\"default\":20}}}");
  define(&ret->checks.ptr[1], "lowercase-tags", "Lowercase tags", "No tag has an upper-case letter.",
         "{\"type\":\"object\"}");
  define(&ret->checks.ptr[2], "has-links", "Has links", "The entity links to its docs, runbook or dashboards.",
         "{\"type\":\"object\"}");
}

bool exports_portolan_plugin_check_evaluate(portolan_string_t *check, portolan_string_t *parameters,
                                            exports_portolan_plugin_check_list_entity_t *entities,
                                            exports_portolan_plugin_check_list_outcome_t *ret,
                                            exports_portolan_plugin_check_error_t *err) {
  int which = portolan_eq(check, "description") ? 0 : portolan_eq(check, "lowercase-tags") ? 1
            : portolan_eq(check, "has-links") ? 2 : -1;
  if (which < 0) {
    err->tag = EXPORTS_PORTOLAN_PLUGIN_CHECK_ERROR_UNKNOWN_CHECK;
    err->val.unknown_check = *check;
    return false;
  }
  long min_length = portolan_json_int(parameters, "minLength", 20);
  ret->len = entities->len;
  ret->ptr = calloc(entities->len ? entities->len : 1, sizeof(outcome_t));
  for (size_t i = 0; i < entities->len; i++) {
    const entity_t *e = &entities->ptr[i];
    ret->ptr[i] = which == 0 ? description(e, min_length) : which == 1 ? lowercase_tags(e) : has_links(e);
  }
  return true;
}
