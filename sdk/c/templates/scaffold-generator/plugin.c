/* my-plugin: a scaffold generator. Write the files a new project gets. */
#include "portolan.h"

void exports_portolan_plugin_generator_describe(exports_portolan_plugin_generator_generator_info_t *ret) {
  ret->about = (exports_portolan_plugin_generator_about_t){
      portolan_str("my-plugin"), portolan_str("0.1.0"), portolan_str("What my template creates.")};
  ret->parameters_schema = portolan_str(
      "{\"type\":\"object\",\"required\":[\"name\"],"
      "\"properties\":{\"name\":{\"type\":\"string\",\"pattern\":\"^[a-z][a-z0-9-]*$\"}}}");
}

bool exports_portolan_plugin_generator_generate(portolan_string_t *parameters,
                                                exports_portolan_plugin_generator_output_t *ret,
                                                exports_portolan_plugin_generator_error_t *err) {
  /* The schema's pattern allows no quotes or backslashes, so a small
   * scan finds the name; use a JSON parser for anything richer. */
  char *json = portolan_cstr(parameters), *start = strstr(json, "\"name\"");
  start = start ? strchr(start + 6, '"') : NULL;
  char *end = start ? strchr(start + 1, '"') : NULL;
  if (!end) {
    *err = (exports_portolan_plugin_generator_error_t){.tag = EXPORTS_PORTOLAN_PLUGIN_GENERATOR_ERROR_OTHER,
                                                       .val.other = portolan_str("no name")};
    return false;
  }
  *end = '\0';
  const char *name = start + 1;
  portolan_string_t readme = portolan_strf("# %s\n\nCreated by my-plugin.\n", name);
  ret->files.len = 1;
  ret->files.ptr = calloc(1, sizeof(*ret->files.ptr));
  ret->files.ptr[0].path = portolan_str("README.md");
  ret->files.ptr[0].content.ptr = readme.ptr;
  ret->files.ptr[0].content.len = readme.len;
  ret->entity.is_some = true;
  ret->entity.val = portolan_entity("Component", name, "Created by my-plugin",
                                    "{\"type\":\"service\",\"lifecycle\":\"experimental\",\"owner\":\"team-a\"}");
  return true;
}
