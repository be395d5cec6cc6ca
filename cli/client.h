/* The REST side of sf (cli/): configuration (cli.md §2.1), /auth then Bearer, one re-auth
 * on 401, JSON bodies as upstream sends them (§2.2), errors with upstream's prefixes
 * (§2.4). libcurl + json-c only: nothing here talks to Redis or NATS. */
#pragma once
#include <json-c/json.h>
#include <stdio.h>

#define SF_CLI_VERSION "0.7.5"
#define SF_CLI_USER_AGENT "Mozilla/5.0 (Ubuntu; Linux x86_64) Shaken Fist/" SF_CLI_VERSION

typedef struct {
        char *apiurl, *namespace, *key;
        long timeout_ms;      /* per HTTP exchange; 0 = none (completion sets a short one) */
        char *async_strategy; /* continue | pause | block */
        int verbose;
        char *token;          /* "Bearer ..." once authenticated */
        char *root;           /* GET / once per run, for sf_client_capable */
} sf_client_t;

/* Fills what flags left unset: SHAKENFIST_* variables, then (only with no API URL yet)
 * ~/.shakenfist, then /etc/sf/shakenfist.json. -ENOENT when there is still no API URL. */
int sf_client_configure(sf_client_t *c);

/* METHOD path with body (a JSON object; NULL or {} = no body). On 200 sets *ret to the
 * parsed response (NULL for an empty or non-JSON body) and returns 0. Otherwise prints
 * the error to stderr as upstream words it and returns -1. A 401 re-authenticates once;
 * a 406 is retried every second until the --async deadline (sf_client_deadline_s). */
int sf_client_request(sf_client_t *c, const char *method, const char *path, json_object *body,
                      json_object **ret);

/* Does the server list capability `cap` on its root page (upstream's plain substring test,
 * cli.md §2.3)? GET / (no auth) on the first call only. 1 yes, 0 no, -1 no answer (printed). */
int sf_client_capable(sf_client_t *c, const char *cap);
/* POST /auth with the configured namespace and key; c->token becomes "Bearer ...".
 * 0, or -1 with the error printed. (The event stream re-authenticates with it.) */
int sf_client_authenticate(sf_client_t *c);
/* Prints an error answer as upstream words it: "<time> ERROR: <prefix>: <text>" on
 * stderr (status 0 = could not connect). */
void sf_client_report(long status, const char *body);
/* Seconds the --async strategy allows for waits and 406 retries (continue 0, pause 60,
 * block 3600). */
int sf_client_deadline_s(const sf_client_t *c);

/* As sf_client_request, but the body of a 200 as it came (a NUL follows it; it may hold
 * NULs itself): e.g. GET /instances/<ref>/consoledata. Caller frees *ret_text. */
int sf_client_request_raw(sf_client_t *c, const char *method, const char *path, json_object *body,
                          char **ret_text, size_t *ret_len);

/* GET path (no body), the body of a 200 written to f as it arrives (never held in
 * memory); anything else is reported as sf_client_request reports it, with the same 401
 * re-authentication and 406 retries.  *ret_len (may be NULL) gets the bytes written.
 * 0, or -1 with the error printed (a failed write of f too). */
int sf_client_download(sf_client_t *c, const char *path, FILE *f, unsigned long long *ret_len);

/* A path segment percent-encoded (names may hold anything the server accepts). Caller frees. */
char *sf_client_escape(const char *s);
void sf_client_free(sf_client_t *c);
