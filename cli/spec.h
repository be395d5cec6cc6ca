/* The short and detailed specs of `sf instance create` (-d, -D, -n, -f, -N, -V, -m), parsed
 * into the JSON the API takes exactly as upstream's client does (shakenfist_client
 * commandline/instance.py and apiclient.create_instance). Pure: json-c only, no I/O.
 *
 * Every parser returns 0 and sets its ret_ value only on success; on bad input it returns
 * -EINVAL (-ERANGE for an integer beyond int64) and writes upstream's message into err
 * (errlen bytes, always terminated). Where upstream crashes with a traceback or sends
 * null, these refuse with a message instead (noted at each function). */
#pragma once
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

/* Python's int(s) for base 10: surrounding whitespace, one sign, digits with single
 * underscores between them. -EINVAL if not an integer, -ERANGE beyond int64. */
int sf_spec_pyint(const char *s, int64_t *ret);

/* -d SIZE[@BASE] -> {"size": int, "base": BASE|null, "bus": null, "type": "disk"}.
 * "8@" sends base "" as upstream does; more than one '@' is refused (upstream: traceback). */
int sf_spec_disk(const char *spec, json_object **ret, char *err, size_t errlen);

/* -D k=v,k=v -> {k: v, ...} with string values, except a non-empty `size`, sent as an int
 * (the library's conversion; a non-integer is refused, upstream: traceback). */
int sf_spec_diskspec(const char *spec, json_object **ret, char *err, size_t errlen);

/* -n / -f NET[@ADDR] -> {"network_uuid", "macaddress": null, "model": "virtio"
 * [, "float": true with floated][, "address" when ADDR is not empty]}. */
int sf_spec_network(const char *spec, int floated, json_object **ret, char *err, size_t errlen);

/* -N k=v,k=v -> {k: v, ...} with string values, except `float`: true for "true"/"True",
 * else false. A malformed element is refused (upstream sends null in its place). */
int sf_spec_networkspec(const char *spec, json_object **ret, char *err, size_t errlen);

/* -V k=v,k=v (spec may be NULL) merged over {"model": "cirrus", "memory": 16384}. Values
 * stay strings as upstream's, except an integer `memory`, sent as an int: the API wants a
 * number of KiB there. */
int sf_spec_video(const char *spec, json_object **ret, char *err, size_t errlen);

/* -m KEY=VALUE into md: VALUE a string, or parsed JSON for the reserved keys `tags` and
 * `affinity`. Split at the first '=' (upstream refuses values holding '='). md is left
 * untouched on error. */
int sf_spec_metadata_add(json_object *md, const char *kv, char *err, size_t errlen);

/* Strict JSON text -> value: the whole of s must be one JSON value (json.loads). */
int sf_spec_json_parse(const char *s, json_object **ret);
