/* sf-api: what keeps POST /auth from being turned against the API. A per-address rate limit
 * (429 before any work is done), and failed attempts counted per namespace and address and
 * written as one audit event per window, so an attack is not a Redis write storm. */
#pragma once
#include "config.h"
#include "http.h"

/* Set up from cfg (SF_AUTH_RATE, SF_AUTH_BURST, SF_AUTH_AUDIT_WINDOW). 0 or -ENOMEM. */
int sf_authguard_init(const sf_config_t *cfg);

/* Take a token for req->remote_addr (IPv6 clients by /64). 0, or -EAGAIN with resp filled:
 * 429 {"error": "too many authentication attempts, retry later", "status": 429} and a
 * Retry-After. */
int sf_authguard_admit(const sf_http_req_t *req, sf_http_resp_t *resp);

/* Count a wrong key for namespace ns from addr. Never writes to Redis itself: a background
 * thread writes "<N> failed authentication attempts from <addr> in the last <S> s" (type
 * audit, extra remote-address, attempts, seconds) once the pair's window is over, at most
 * SF_AUTHGUARD_EVENTS_PER_S events a second. */
void sf_authguard_failed(const char *ns, const char *addr);

/* Write every pending count now and stop the background thread (shutdown). */
void sf_authguard_stop(void);

#define SF_AUTHGUARD_EVENTS_PER_S 10
