/* my-plugin: a scorecard check. Rename the check, then write judge(). */
#include "portolan.h"
typedef exports_portolan_plugin_check_outcome_t outcome_t;

static outcome_t judge(const exports_portolan_plugin_check_entity_t *e, long min_length) {
  portolan_string_t text = e->description.is_some ? portolan_trim(&e->description.val) : (portolan_string_t){0};
  if (text.len == 0) return (outcome_t){EXPORTS_PORTOLAN_PLUGIN_CHECK_STATUS_FAIL, portolan_some("no description")};
  if ((long)portolan_chars(&text) < min_length)
    return (outcome_t){EXPORTS_PORTOLAN_PLUGIN_CHECK_STATUS_FAIL,
                       {true, portolan_strf("description shorter than %ld characters", min_length)}};
  return (outcome_t){.status = EXPORTS_PORTOLAN_PLUGIN_CHECK_STATUS_PASS, .value = {true, portolan_strf("%zu", portolan_chars(&text))}};
}

void exports_portolan_plugin_check_describe(exports_portolan_plugin_check_plugin_info_t *ret) {
  ret->about = (exports_portolan_plugin_check_about_t){portolan_str("my-plugin"), portolan_str("0.1.0"), portolan_str("What my checks look at.")};
  ret->checks = (exports_portolan_plugin_check_list_check_info_t){calloc(1, sizeof(*ret->checks.ptr)), 1};
  ret->checks.ptr[0] = (exports_portolan_plugin_check_check_info_t){portolan_str("described"), portolan_str("Is described"),
      portolan_str("The entity says what it is."), {0}, portolan_str("{\"properties\":{\"minLength\":{\"type\":\"integer\"}}}")};
}

bool exports_portolan_plugin_check_evaluate(portolan_string_t *check, portolan_string_t *parameters,
    exports_portolan_plugin_check_list_entity_t *entities, exports_portolan_plugin_check_list_outcome_t *ret,
    exports_portolan_plugin_check_error_t *err) {
  if (!portolan_eq(check, "described"))
    return *err = (exports_portolan_plugin_check_error_t){EXPORTS_PORTOLAN_PLUGIN_CHECK_ERROR_UNKNOWN_CHECK, .val.unknown_check = *check}, false;
  long min_length = portolan_json_int(parameters, "minLength", 10);
  *ret = (exports_portolan_plugin_check_list_outcome_t){calloc(entities->len + 1, sizeof(outcome_t)), entities->len};
  for (size_t i = 0; i < entities->len; i++) ret->ptr[i] = judge(&entities->ptr[i], min_length);
  return true;
}
