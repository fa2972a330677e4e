/*
 * The scorecard-check world's `evaluate-rules` (contract 0.4.0: several
 * rules over one batch of entities in one call), answered by calling the
 * plugin's own `evaluate` once per rule. scripts/build-guest.sh compiles
 * this file into every C check. The definition is weak: a plugin that
 * defines exports_portolan_plugin_check_evaluate_rules itself (say, to read
 * each entity once for all the rules) replaces it.
 *
 * A rule whose `evaluate` fails gets that error; the other rules still get
 * their outcomes. The calls share the arguments, which a plugin reads and
 * leaves (portolan.h, "Memory").
 */
#include "portolan.h"

__attribute__((weak)) void exports_portolan_plugin_check_evaluate_rules(
    exports_portolan_plugin_check_list_rule_t *rules,
    exports_portolan_plugin_check_list_entity_t *entities,
    exports_portolan_plugin_check_list_result_list_outcome_error_t *ret) {
  ret->len = rules->len;
  ret->ptr = calloc(rules->len ? rules->len : 1, sizeof(*ret->ptr));
  for (size_t i = 0; i < rules->len; i++) {
    exports_portolan_plugin_check_result_list_outcome_error_t *answer = &ret->ptr[i];
    answer->is_err = !exports_portolan_plugin_check_evaluate(
        &rules->ptr[i].check, &rules->ptr[i].parameters, entities, &answer->val.ok,
        &answer->val.err);
  }
}
