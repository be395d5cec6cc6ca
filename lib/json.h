/* JSON text exactly as Python's json.dumps() (default arguments) writes it, so every
 * process answers byte-for-byte like upstream Shaken Fist. */
#pragma once
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

/* Serialize o (NULL => "null"): keys in insertion order, ", " and ": " separators,
 * ensure_ascii escaping (non-ASCII as \uXXXX, surrogate pairs above U+FFFF), doubles as
 * Python's repr (shortest round trip: 1.0, 0.1, 1e+16, 1732500000.123456), NaN/Infinity
 * as Python writes them. Returns a malloc'd NUL-terminated string, NULL on OOM. */
char *sf_json_dumps(json_object *o);

/* True if a string (value or key) anywhere in the JSON text holds a NUL or another control
 * character, raw or as an escape (\u0000, \b, \f, \u001b, DEL).  TAB, LF and CR are
 * allowed (an ssh key or a metadata value may end in a newline).  json-c accepts \u0000
 * and C strings would silently truncate at it, so the API refuses such bodies whole. */
bool sf_json_text_has_control(const char *text, size_t len);

/* True if text is well-formed UTF-8 (no overlong forms, surrogates or values beyond
 * U+10FFFF), as Python's strict decoder wants it: json.loads of other bytes fails. */
bool sf_json_text_is_utf8(const char *text, size_t len);

/* True if a ' appears outside a double-quoted string. Valid JSON has none there; json-c
 * (0.16) still takes 'single-quoted' object keys in strict mode, where neither the control
 * character check above nor Python's json.loads would let them through. */
bool sf_json_text_has_single_quote(const char *text, size_t len);
