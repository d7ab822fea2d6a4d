/*
 * Reading the reference agents' configuration files (YAML, through libyaml).
 *
 * A small, strict reader shared by the roles' loaders: every mapping declares the keys it
 * accepts (an unknown or repeated key is an error, so a typo never silently falls back to a
 * default), every value is range-checked, and every error names the file, the line and the
 * key. Anchors and aliases are refused. The first error is kept; later calls return it
 * again, so a loader may read a whole section and check once.
 */
#ifndef RELAIS_REFCONFIG_H
#define RELAIS_REFCONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

typedef struct ref_cfg ref_cfg_t;

/* Loads path; 0, or RELAIS_ECONFIG / -ENOMEM with a readable reason in err. */
int ref__cfg_load(ref_cfg_t **out, const char *path, char *err, size_t err_len);
/* As ref__cfg_load() from memory; name is used in messages. */
int ref__cfg_parse(ref_cfg_t **out, const char *yaml, size_t len, const char *name, char *err,
                   size_t err_len);
void ref__cfg_free(ref_cfg_t **cfg);

/* The document's root node (a mapping, or an error is recorded and NULL returned). */
const yaml_node_t *ref__cfg_root(ref_cfg_t *cfg);

/* Records an error at node n ("file:line: what: message"); returns RELAIS_ECONFIG. */
int ref__cfg_fail(ref_cfg_t *cfg, const yaml_node_t *n, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The first error recorded, or NULL; its code (0 or RELAIS_ECONFIG). */
const char *ref__cfg_error(const ref_cfg_t *cfg);
int ref__cfg_status(const ref_cfg_t *cfg);

/*
 * Checks that map is a mapping whose keys are all in allowed (NULL-terminated), each once.
 * what names the section in messages. 0 or RELAIS_ECONFIG.
 */
int ref__cfg_keys(ref_cfg_t *cfg, const yaml_node_t *map, const char *what,
                  const char *const *allowed);

/* The value of key in map, or NULL when absent (or map is NULL / not a mapping). */
const yaml_node_t *ref__cfg_get(ref_cfg_t *cfg, const yaml_node_t *map, const char *key);

/* A list's length and its i-th item (NULL when n is not a list: an error is recorded). */
size_t ref__cfg_len(ref_cfg_t *cfg, const yaml_node_t *seq, const char *what);
const yaml_node_t *ref__cfg_at(ref_cfg_t *cfg, const yaml_node_t *seq, size_t i);

/* Scalar readers. Absent keys leave *out untouched and return 0; wrong types or ranges
 * record an error. Strings are the document's own (valid until ref__cfg_free()). */
int ref__cfg_str(ref_cfg_t *cfg, const yaml_node_t *map, const char *key, const char **out);
int ref__cfg_uint(ref_cfg_t *cfg, const yaml_node_t *map, const char *key, uint64_t min,
                  uint64_t max, uint64_t *out);
int ref__cfg_double(ref_cfg_t *cfg, const yaml_node_t *map, const char *key, double min, double max,
                    double *out);
int ref__cfg_bool(ref_cfg_t *cfg, const yaml_node_t *map, const char *key, bool *out);
/* A scalar node's text (an error and NULL when n is not a scalar). */
const char *ref__cfg_text(ref_cfg_t *cfg, const yaml_node_t *n, const char *what);

#endif /* RELAIS_REFCONFIG_H */
