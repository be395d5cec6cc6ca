/* Output helpers for sf (cli/): Python-compatible JSON dumps and value rendering, and
 * prettytable-style aligned tables. Pure code: no I/O besides the FILE given. */
#pragma once
#include <stdio.h>
#include <json-c/json.h>

/* json.dumps(obj, indent=4, sort_keys=True) followed by a newline. */
void sf_out_json(FILE *f, json_object *obj);
/* Python str() of a JSON value (strings raw, True/False/None, dicts as repr). Caller frees. */
char *sf_out_pystr(json_object *v);

typedef struct sf_table sf_table_t;
sf_table_t *sf_table_new(int ncols, const char *const *headers);
/* Copies cells; a cell may hold newlines (multi-line rows, top-aligned). */
void sf_table_add(sf_table_t *t, const char *const *cells);
/* Column col left-aligned instead of centred. */
void sf_table_left(sf_table_t *t, int col);
void sf_table_print(FILE *f, sf_table_t *t);
void sf_table_free(sf_table_t *t);
