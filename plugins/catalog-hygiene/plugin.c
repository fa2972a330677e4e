/*
 * catalog-hygiene: scorecard checks of how well an entity is catalogued.
 *
 *   has-owner        spec.owner is set and, unless `exists` is false, names
 *                    a Group or User the catalog has (Backstage's shorthand:
 *                    no kind means Group, no namespace the entity's own)
 *   has-description  a description of at least `minLength` characters
 *                    (default 20) once ASCII whitespace is trimmed; counts
 *                    code points. `description` is the same check under
 *                    its first id, kept for the scorecards that use it
 *   has-lifecycle    spec.lifecycle is set and, with `allowed`, one of those
 *   has-annotation   metadata.annotations has `annotation` (required), not
 *                    empty
 *   in-system        spec.system is set and, with `exists`, names a System
 *                    the catalog has
 *   api-definition   an API's spec.definition is not empty
 *   has-links        at least one link (docs, runbook, dashboard)
 *   lowercase-tags   no tag has an upper-case letter (Backstage lowercases
 *                    tags in search, so "Java" and "java" split a facet)
 *
 * The checks that look referenced entities up (has-owner, in-system) make
 * one catalog lookup per batch: the distinct references of the whole batch.
 * A passing description check reports its length as the value.
 */
#include <strings.h>

#include "portolan.h"

typedef exports_portolan_plugin_check_outcome_t outcome_t;
typedef exports_portolan_plugin_check_entity_t entity_t;

static outcome_t outcome(uint8_t status, portolan_string_t message, const char *value) {
  outcome_t o = {0};
  o.status = status;
  if (message.len) { o.message.is_some = true; o.message.val = message; }
  if (value) { o.value.is_some = true; o.value.val = portolan_str(value); }
  return o;
}

static outcome_t verdict(bool pass, portolan_string_t message, const char *value) {
  return outcome(pass ? EXPORTS_PORTOLAN_PLUGIN_CHECK_STATUS_PASS : EXPORTS_PORTOLAN_PLUGIN_CHECK_STATUS_FAIL,
                 message, value);
}

static const portolan_string_t NONE = {0};

/* A spec field as trimmed heap text, or NULL when absent, not a string or
 * blank. */
static char *spec_text(const entity_t *e, const char *key) {
  char *value = portolan_json_string(&e->spec, key);
  if (!value) return NULL;
  portolan_string_t v = {(uint8_t *)value, strlen(value)};
  portolan_string_t t = portolan_trim(&v);
  if (t.len == 0) { free(value); return NULL; }
  char *out = portolan_cstr(&t);
  free(value);
  return out;
}

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

static outcome_t has_lifecycle(const entity_t *e, const portolan_string_t *parameters) {
  char *lifecycle = spec_text(e, "lifecycle");
  if (!lifecycle) return verdict(false, portolan_str("no lifecycle (spec.lifecycle is empty)"), NULL);
  portolan_string_t allowed;
  if (portolan_json_field(parameters, "allowed", &allowed) && !portolan_json_array_has(&allowed, lifecycle))
    return verdict(false, portolan_strf("lifecycle \"%s\" is not one of %.*s", lifecycle, (int)allowed.len,
                                        (const char *)allowed.ptr), NULL);
  return verdict(true, NONE, portolan_json_quote(lifecycle));
}

static outcome_t has_annotation(const entity_t *e, const char *annotation) {
  for (size_t i = 0; i < e->annotations.len; i++) {
    if (!portolan_eq(&e->annotations.ptr[i].key, annotation)) continue;
    portolan_string_t value = portolan_trim(&e->annotations.ptr[i].value);
    if (value.len == 0) return verdict(false, portolan_strf("annotation %s is empty", annotation), NULL);
    return verdict(true, NONE, NULL);
  }
  return verdict(false, portolan_strf("no annotation %s", annotation), NULL);
}

static outcome_t api_definition(const entity_t *e) {
  portolan_string_t raw;
  if (!portolan_json_field(&e->spec, "definition", &raw))
    return verdict(false, portolan_str("no API definition (spec.definition is missing)"), NULL);
  char *definition = spec_text(e, "definition");
  if (!definition) {
    /* Backstage's definition is text; an object or array still defines it. */
    bool structured = raw.len > 2 && (raw.ptr[0] == '{' || raw.ptr[0] == '[');
    return structured ? verdict(true, NONE, NULL)
                      : verdict(false, portolan_str("the API definition (spec.definition) is empty"), NULL);
  }
  free(definition);
  return verdict(true, NONE, NULL);
}

/* Whether `kind` (as the catalog has it) is one of the kinds in `kinds`, a
 * NULL-terminated list, ignoring case. */
static bool kind_in(const portolan_string_t *kind, const char *const *kinds) {
  for (; *kinds; kinds++)
    if (portolan_eq_ignore_case(kind, *kinds)) return true;
  return false;
}

/* A check that the spec field `field` names an entity, and, if `exists`,
 * that the catalog has it as one of `kinds`. `default_kind` is the kind the
 * field implies (Backstage: spec.owner a Group, spec.system a System).
 * Looks the batch's distinct references up in one call. */
static void references(const char *id, const exports_portolan_plugin_check_list_entity_t *entities,
                       outcome_t *out, const char *field, const char *default_kind, const char *const *kinds,
                       const char *kinds_text, bool exists) {
  size_t n = entities->len;
  char **refs = calloc(n ? n : 1, sizeof(char *));  /* per entity, NULL if unset */
  char **distinct = calloc(n ? n : 1, sizeof(char *));
  size_t *slot = calloc(n ? n : 1, sizeof(size_t)); /* entity -> index in distinct */
  bool *shorthand = calloc(n ? n : 1, sizeof(bool));  /* the field names no kind */
  size_t count = 0;
  for (size_t i = 0; i < n; i++) {
    const entity_t *e = &entities->ptr[i];
    char *value = spec_text(e, field);
    if (!value) {
      out[i] = verdict(false, portolan_strf("no %s (spec.%s is empty)", field, field), NULL);
      continue;
    }
    shorthand[i] = strchr(value, ':') == NULL || (strchr(value, '/') && strchr(value, '/') < strchr(value, ':'));
    char *ns = portolan_cstr(&e->namespace_);
    refs[i] = portolan_full_ref(value, default_kind, ns[0] ? ns : "default");
    free(ns);
    free(value);
    if (!exists) {
      out[i] = verdict(true, NONE, NULL);
      continue;
    }
    size_t j = 0;
    while (j < count && strcasecmp(distinct[j], refs[i]) != 0) j++;
    if (j == count) distinct[count++] = refs[i];
    slot[i] = j;
  }
  if (!exists || count == 0) return;

  /* Batches are at most a few hundred entities; more than the host takes
   * in one call is beyond what one evaluate gets. */
  portolan_lookup_t found = {0};
  bool *refused = calloc(count, sizeof(bool));
  char *error = NULL;
  if (count > PORTOLAN_MAX_LOOKUP_REFS) {
    error = (char *)portolan_strf("%zu distinct references in one batch, more than one lookup takes (%d)", count,
                                  PORTOLAN_MAX_LOOKUP_REFS).ptr;
  } else {
    /* A reference the host refuses (it breaks the naming rules) fails only
     * its own entities: drop it and ask again. */
    for (size_t attempt = 0; attempt <= count; attempt++) {
      char **ask = calloc(count, sizeof(char *));
      size_t *from = calloc(count, sizeof(size_t)), m = 0;
      for (size_t j = 0; j < count; j++)
        if (!refused[j]) { ask[m] = distinct[j]; from[m++] = j; }
      portolan_lookup_t got = {0};
      long bad = -1;
      free(error);
      error = m ? portolan_catalog_lookup(ask, m, &got, &bad) : NULL;
      if (!error) {
        portolan_info("%s: %zu distinct references looked up in one call", id, m);
        found.len = count;
        found.ptr = calloc(count, sizeof(*found.ptr));
        for (size_t k = 0; k < m; k++) found.ptr[from[k]] = got.ptr[k];
        break;
      }
      if (bad < 0 || (size_t)bad >= m) break;
      refused[from[bad]] = true;
      portolan_warn("%s", error);
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (!refs[i]) continue;
    size_t j = slot[i];
    if (refused[j]) {
      out[i] = verdict(false, portolan_strf("spec.%s %s is not a valid entity reference", field, refs[i]), NULL);
    } else if (error) {
      out[i] = outcome(EXPORTS_PORTOLAN_PLUGIN_CHECK_STATUS_ERROR, portolan_str(error), NULL);
    } else if (!found.ptr[j].is_some) {
      out[i] = verdict(false,
                       portolan_strf("%s %s is not in the catalog%s%s%s", field, refs[i],
                                     shorthand[i] ? " (a reference without a kind means a " : "",
                                     shorthand[i] ? default_kind : "", shorthand[i] ? ")" : ""),
                       NULL);
    } else if (!kind_in(&found.ptr[j].val.kind, kinds)) {
      const portolan_string_t *kind = &found.ptr[j].val.kind;
      out[i] = verdict(false,
                       portolan_strf("%s %s is a %.*s, not a %s", field, refs[i], (int)kind->len,
                                     (const char *)kind->ptr, kinds_text),
                       NULL);
    } else {
      out[i] = verdict(true, NONE, portolan_json_quote(refs[i]));
    }
  }
}

typedef struct {
  const char *id, *title, *what, *schema;
  const char *const *kinds;
} check_t;

static const char *const OWNED[] = {"Component", "API", "Resource", "System", "Domain", NULL};
static const char *const IN_SYSTEM[] = {"Component", "API", "Resource", NULL};
static const char *const LIFECYCLE[] = {"Component", "API", NULL};
static const char *const APIS[] = {"API", NULL};
static const char *const OWNERS[] = {"Group", "User", NULL};
static const char *const SYSTEMS[] = {"System", NULL};

#define DESCRIPTION_SCHEMA                                                                          \
  "{\"type\":\"object\",\"additionalProperties\":false,"                                          \
  "\"properties\":{\"minLength\":{\"type\":\"integer\",\"minimum\":0,\"default\":20,"              \
  "\"description\":\"The fewest characters the description may have, once trimmed.\"}}}"
#define EXISTS_SCHEMA(dflt, what)                                                                   \
  "{\"type\":\"object\",\"additionalProperties\":false,"                                          \
  "\"properties\":{\"exists\":{\"type\":\"boolean\",\"default\":" dflt ",\"description\":\"" what \
  "\"}}}"
#define NO_PARAMETERS "{\"type\":\"object\",\"additionalProperties\":false}"

/* The order of describe; evaluate dispatches on the index. */
enum { HAS_OWNER, HAS_DESCRIPTION, HAS_LIFECYCLE, HAS_ANNOTATION, IN_SYSTEM_, API_DEFINITION, HAS_LINKS,
       LOWERCASE_TAGS, DESCRIPTION, CHECKS };

static const check_t CHECK[CHECKS] = {
    {"has-owner", "Has an owner",
     "spec.owner is set and names a Group or User in the catalog (a shorthand owner is a Group in the entity's "
     "namespace); with exists false, only that it is set.",
     EXISTS_SCHEMA("true", "Whether the owner must exist in the catalog as a Group or User."), OWNED},
    {"has-description", "Is described", "The description has at least minLength characters.", DESCRIPTION_SCHEMA,
     NULL},
    {"has-lifecycle", "Has a lifecycle", "spec.lifecycle is set and, if allowed is given, one of those values.",
     "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"allowed\":{\"type\":\"array\","
     "\"items\":{\"type\":\"string\",\"minLength\":1},\"minItems\":1,\"uniqueItems\":true,"
     "\"description\":\"The lifecycles allowed, e.g. production, experimental.\"}}}",
     LIFECYCLE},
    {"has-annotation", "Has an annotation",
     "metadata.annotations has the annotation the rule names, with a value (e.g. pagerduty.com/service-id, "
     "backstage.io/techdocs-ref, backstage.io/source-location).",
     "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"annotation\"],"
     "\"properties\":{\"annotation\":{\"type\":\"string\",\"minLength\":1,"
     "\"description\":\"The annotation's key.\"}}}",
     NULL},
    {"in-system", "Belongs to a system",
     "spec.system is set; with exists true, it names a System in the catalog (in the entity's namespace unless "
     "it says otherwise).",
     EXISTS_SCHEMA("false", "Whether the system must exist in the catalog."), IN_SYSTEM},
    {"api-definition", "Has an API definition", "The API's spec.definition is not empty.", NO_PARAMETERS, APIS},
    {"has-links", "Has links", "The entity links to its docs, runbook or dashboards.", "{\"type\":\"object\"}",
     NULL},
    {"lowercase-tags", "Lowercase tags", "No tag has an upper-case letter.", "{\"type\":\"object\"}", NULL},
    {"description", "Is described", "The description has at least minLength characters (the first id of "
     "has-description).", DESCRIPTION_SCHEMA, NULL},
};

void exports_portolan_plugin_check_describe(exports_portolan_plugin_check_plugin_info_t *ret) {
  ret->about.title = portolan_str("Catalog hygiene");
  ret->about.version = portolan_str("0.2.0");
  ret->about.description = portolan_str(
      "Owners that exist, descriptions, lifecycles, annotations, systems, API definitions, links and "
      "lowercase tags: how well an entity is catalogued.");
  ret->checks.len = CHECKS;
  ret->checks.ptr = calloc(CHECKS, sizeof(*ret->checks.ptr));
  for (size_t i = 0; i < CHECKS; i++) {
    exports_portolan_plugin_check_check_info_t *c = &ret->checks.ptr[i];
    c->id = portolan_str(CHECK[i].id);
    c->title = portolan_str(CHECK[i].title);
    c->description = portolan_str(CHECK[i].what);
    c->parameters_schema = portolan_str(CHECK[i].schema);
    size_t kinds = 0;
    while (CHECK[i].kinds && CHECK[i].kinds[kinds]) kinds++;
    c->entity_kinds.len = kinds;
    c->entity_kinds.ptr = calloc(kinds ? kinds : 1, sizeof(portolan_string_t));
    for (size_t k = 0; k < kinds; k++) c->entity_kinds.ptr[k] = portolan_str(CHECK[i].kinds[k]);
  }
}

bool exports_portolan_plugin_check_evaluate(portolan_string_t *check, portolan_string_t *parameters,
                                            exports_portolan_plugin_check_list_entity_t *entities,
                                            exports_portolan_plugin_check_list_outcome_t *ret,
                                            exports_portolan_plugin_check_error_t *err) {
  int which = -1;
  for (int i = 0; i < CHECKS; i++)
    if (portolan_eq(check, CHECK[i].id)) which = i;
  if (which < 0) {
    err->tag = EXPORTS_PORTOLAN_PLUGIN_CHECK_ERROR_UNKNOWN_CHECK;
    err->val.unknown_check = *check;
    return false;
  }
  char *annotation = NULL;
  if (which == HAS_ANNOTATION) {
    annotation = portolan_json_string(parameters, "annotation");
    if (!annotation || !annotation[0]) {
      err->tag = EXPORTS_PORTOLAN_PLUGIN_CHECK_ERROR_INVALID_PARAMETER;
      err->val.invalid_parameter.f0 = portolan_str("/annotation");
      err->val.invalid_parameter.f1 = portolan_str("name the annotation to look for");
      return false;
    }
  }
  long min_length = portolan_json_int(parameters, "minLength", 20);
  ret->len = entities->len;
  ret->ptr = calloc(entities->len ? entities->len : 1, sizeof(outcome_t));
  if (which == HAS_OWNER) {
    references("has-owner", entities, ret->ptr, "owner", "Group", OWNERS, "Group or User",
               portolan_json_bool(parameters, "exists", true));
    return true;
  }
  if (which == IN_SYSTEM_) {
    references("in-system", entities, ret->ptr, "system", "System", SYSTEMS, "System",
               portolan_json_bool(parameters, "exists", false));
    return true;
  }
  for (size_t i = 0; i < entities->len; i++) {
    const entity_t *e = &entities->ptr[i];
    outcome_t *o = &ret->ptr[i];
    switch (which) {
      case HAS_DESCRIPTION:
      case DESCRIPTION: *o = description(e, min_length); break;
      case HAS_LIFECYCLE: *o = has_lifecycle(e, parameters); break;
      case HAS_ANNOTATION: *o = has_annotation(e, annotation); break;
      case API_DEFINITION: *o = api_definition(e); break;
      case HAS_LINKS: *o = has_links(e); break;
      default: *o = lowercase_tags(e); break;
    }
  }
  return true;
}
