/* The OpenAPI description of sf-api (api/openapi.c). */
#pragma once
#include <json-c/json.h>
#include <stddef.h>

typedef struct sf_api_doc {
        const char *method;
        const char *path;    /* OpenAPI form: /instances/{instance} */
        const char *summary;
        const char *auth;    /* none | token | system */
} sf_api_doc_t;

extern const sf_api_doc_t sf_api_docs[];
extern const size_t sf_api_ndocs;

/* The route-table form of an OpenAPI path: every {name} becomes {}. */
void sf_api_doc_route_path(const char *doc_path, char *out, size_t len);
/* The whole document (caller puts). */
json_object *sf_api_openapi(void);
