/* JSON text exactly as Python's json.dumps() (default arguments) writes it, so every
 * process answers byte-for-byte like upstream Shaken Fist. */
#pragma once
#include <json-c/json.h>

/* Serialize o (NULL => "null"): keys in insertion order, ", " and ": " separators,
 * ensure_ascii escaping (non-ASCII as \uXXXX, surrogate pairs above U+FFFF), doubles as
 * Python's repr (shortest round trip: 1.0, 0.1, 1e+16, 1732500000.123456), NaN/Infinity
 * as Python writes them. Returns a malloc'd NUL-terminated string, NULL on OOM. */
char *sf_json_dumps(json_object *o);
