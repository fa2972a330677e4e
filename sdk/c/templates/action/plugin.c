/* my-plugin: a day-2 action. Write what run() does. */
#include "portolan.h"

void exports_portolan_plugin_operation_describe(exports_portolan_plugin_operation_action_info_t *ret) {
  ret->about = (exports_portolan_plugin_operation_about_t){
      portolan_str("my-plugin"), portolan_str("0.1.0"), portolan_str("What my action does.")};
  ret->entity_kinds.len = 1;
  ret->entity_kinds.ptr = calloc(1, sizeof(portolan_string_t));
  ret->entity_kinds.ptr[0] = portolan_str("Component");
  ret->input_schema = portolan_str(
      "{\"type\":\"object\",\"required\":[\"reason\"],\"properties\":{\"reason\":{\"type\":\"string\",\"minLength\":1}}}");
  ret->required_role = EXPORTS_PORTOLAN_PLUGIN_OPERATION_ROLE_MEMBER;
}

bool exports_portolan_plugin_operation_run(exports_portolan_plugin_operation_invocation_t *invocation,
                                           exports_portolan_plugin_operation_outcome_t *ret,
                                           exports_portolan_plugin_operation_error_t *err) {
  char *actor = portolan_cstr(&invocation->actor);
  char *target = invocation->entity.is_some ? portolan_cstr(&invocation->entity.val.name) : "nothing";
  char *quoted = portolan_json_quote(target);
  portolan_info("%s ran my-plugin on %s", actor, target);
  /* The input is JSON text in invocation->input; the host has checked it
   * against the schema above. */
  ret->output = portolan_strf("{\"target\":%s}", quoted);
  return true;
}
