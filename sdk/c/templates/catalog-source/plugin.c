/* my-plugin: a catalog source. Replace the records with your system's
 * export (read a granted directory with fopen("/data/...")). */
#include "portolan.h"

static const struct { const char *name, *owner, *description; } RECORDS[] = {
    {"example-service", "team-a", "An example"},
};

void exports_portolan_plugin_source_describe(exports_portolan_plugin_source_source_info_t *ret) {
  ret->about = (exports_portolan_plugin_source_about_t){
      portolan_str("my-plugin"), portolan_str("0.1.0"), portolan_str("Where my entities come from.")};
}

bool exports_portolan_plugin_source_sync(exports_portolan_plugin_source_sync_request_t *request,
                                         exports_portolan_plugin_source_sync_page_t *ret,
                                         exports_portolan_plugin_source_error_t *err) {
  size_t n = sizeof RECORDS / sizeof RECORDS[0];
  ret->entities.len = n;
  ret->entities.ptr = calloc(n, sizeof(*ret->entities.ptr));
  for (size_t i = 0; i < n; i++) {
    char *owner = portolan_json_quote(RECORDS[i].owner);
    portolan_string_t spec = portolan_strf("{\"type\":\"service\",\"lifecycle\":\"production\",\"owner\":%s}", owner);
    char *spec_text = portolan_cstr(&spec);
    ret->entities.ptr[i] = portolan_entity("Component", RECORDS[i].name, RECORDS[i].description, spec_text);
  }
  portolan_info("%zu entities", n);
  return true; /* one page: next_cursor stays none */
}
