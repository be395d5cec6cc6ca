/* sf-api's caches for the hot read paths (see cache.h for what makes an entry valid). */
#include "cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "store.h"

/* ---- verified tokens (per thread) ---- */

#define TOKEN_SLOTS 16
#define TOKEN_MAX_LEN 4096

typedef struct token_entry {
        char *header;
        size_t len;
        uint64_t secret_hash; /* the secret it was checked with (one per process in practice) */
        sf_auth_claims_t claims;
        long verified_at; /* wall clock of the full check */
} token_entry_t;

static __thread token_entry_t token_slots[TOKEN_SLOTS];
static void memo_register(void);

static uint64_t hash_bytes(const char *s, size_t n) {
        uint64_t h = 1469598103934665603ULL; /* FNV-1a */

        for (size_t i = 0; i < n; i++) {
                h ^= (unsigned char)s[i];
                h *= 1099511628211ULL;
        }
        return h;
}

int sf_cache_token_verify(const char *secret, const char *authorization_header, sf_auth_claims_t *ret,
                          const char **ret_error_message) {
        size_t len = authorization_header ? strlen(authorization_header) : 0;
        long now = (long)time(NULL);
        uint64_t sh = secret ? hash_bytes(secret, strlen(secret)) : 0;
        token_entry_t *e = NULL;
        sf_auth_claims_t c;
        int r;

        if (authorization_header && len <= TOKEN_MAX_LEN) {
                e = &token_slots[hash_bytes(authorization_header, len) % TOKEN_SLOTS];
                /* Constant time: the slot may hold somebody else's valid token. */
                if (e->header && e->len == len && e->secret_hash == sh &&
                    CRYPTO_memcmp(e->header, authorization_header, len) == 0 &&
                    e->claims.exp > now && now >= e->verified_at) {
                        *ret = e->claims;
                        return 0;
                }
        }
        r = sf_auth_token_verify(secret, authorization_header, &c, ret_error_message);
        if (r < 0)
                return r;
        if (e) {
                char *copy = malloc(len + 1);

                if (copy) {
                        memo_register();
                        memcpy(copy, authorization_header, len + 1);
                        free(e->header);
                        e->header = copy;
                        e->len = len;
                        e->secret_hash = sh;
                        e->claims = c;
                        e->verified_at = now;
                }
        }
        *ret = c;
        return 0;
}

/* ---- parsed namespace documents (per thread) ---- */

#define NS_SLOTS 4

typedef struct ns_entry {
        char *text;
        size_t len;
        json_object *doc;
} ns_entry_t;

static __thread ns_entry_t ns_slots[NS_SLOTS];

/* The per-thread memos are freed when their thread exits (MHD pool threads at shutdown). */
static pthread_key_t memo_key;
static pthread_once_t memo_once = PTHREAD_ONCE_INIT;

static void memo_free(void *unused) {
        (void)unused;
        for (size_t i = 0; i < TOKEN_SLOTS; i++) {
                free(token_slots[i].header);
                token_slots[i].header = NULL;
        }
        for (size_t i = 0; i < NS_SLOTS; i++) {
                free(ns_slots[i].text);
                json_object_put(ns_slots[i].doc);
                ns_slots[i].text = NULL;
                ns_slots[i].doc = NULL;
        }
}

static void memo_key_init(void) { pthread_key_create(&memo_key, memo_free); }

static void memo_register(void) {
        static __thread bool registered;

        if (registered)
                return;
        pthread_once(&memo_once, memo_key_init);
        pthread_setspecific(memo_key, (void *)1);
        registered = true;
}

int sf_cache_namespace_doc(const char *ns, const char *text, size_t len, json_object **ret_doc) {
        ns_entry_t *e = &ns_slots[hash_bytes(ns, strlen(ns)) % NS_SLOTS];
        json_object *doc = NULL;
        char *copy;
        int r;

        if (e->text && e->len == len && memcmp(e->text, text, len) == 0) {
                *ret_doc = e->doc;
                return 0;
        }
        r = sf_store_doc_parse(text, "namespace", ns, &doc);
        if (r < 0)
                return r;
        copy = malloc(len + 1);
        if (!copy) {
                json_object_put(doc);
                return -ENOMEM;
        }
        memo_register();
        memcpy(copy, text, len);
        copy[len] = 0;
        free(e->text);
        json_object_put(e->doc);
        e->text = copy;
        e->len = len;
        e->doc = doc;
        *ret_doc = doc;
        return 0;
}

/* ---- rendered views (shared by all threads) ---- */

/* Open addressing, a short probe, the last probed slot replaced on a miss: bounded memory
 * (at most VIEW_SLOTS views) and no eviction bookkeeping. */
#define VIEW_SLOTS 8192
#define VIEW_PROBE 8

static pthread_mutex_t view_lock = PTHREAD_MUTEX_INITIALIZER;
static sf_view_t *view_slots[VIEW_SLOTS];

static size_t view_home(const char *type, const char *uuid) {
        return (size_t)((hash_bytes(uuid, strlen(uuid)) ^ hash_bytes(type, strlen(type))) % VIEW_SLOTS);
}

static bool view_is(const sf_view_t *v, const char *type, const char *uuid) {
        return v && strcmp(v->uuid, uuid) == 0 && strcmp(v->type, type) == 0;
}

int sf_view_new(char *text, sf_view_t **ret) {
        sf_view_t *v = calloc(1, sizeof(*v));

        if (!v || !text) {
                free(v);
                free(text);
                return -ENOMEM;
        }
        v->text = text;
        v->len = strlen(text);
        v->refs = 1;
        *ret = v;
        return 0;
}

void sf_view_unref(const sf_view_t *cv) {
        sf_view_t *v = (sf_view_t *)cv;

        if (!v || __atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL) > 0)
                return;
        free(v->text);
        free(v);
}

int sf_cache_view_get(const char *type, const char *uuid, uint64_t rev, const sf_view_t **ret) {
        size_t h = view_home(type, uuid);
        sf_view_t *found = NULL;

        pthread_mutex_lock(&view_lock);
        for (size_t i = 0; i < VIEW_PROBE; i++) {
                sf_view_t *v = view_slots[(h + i) % VIEW_SLOTS];

                if (!v) /* slots only empty out all at once (clear): nothing further */
                        break;
                if (view_is(v, type, uuid)) {
                        if (v->rev == rev) {
                                __atomic_add_fetch(&v->refs, 1, __ATOMIC_RELAXED);
                                found = v;
                        }
                        break;
                }
        }
        pthread_mutex_unlock(&view_lock);
        if (!found)
                return -ENOENT;
        *ret = found;
        return 0;
}

void sf_cache_view_put(sf_view_t *v) {
        size_t h = view_home(v->type, v->uuid), slot = (h + VIEW_PROBE - 1) % VIEW_SLOTS;
        sf_view_t *old;

        pthread_mutex_lock(&view_lock);
        for (size_t i = 0; i < VIEW_PROBE; i++) {
                const sf_view_t *cur = view_slots[(h + i) % VIEW_SLOTS];

                if (!cur || view_is(cur, v->type, v->uuid)) {
                        slot = (h + i) % VIEW_SLOTS;
                        break;
                }
        }
        old = view_slots[slot];
        /* A slower thread must not replace a newer revision with an older one. */
        if (view_is(old, v->type, v->uuid) && old->rev > v->rev) {
                old = NULL;
        } else {
                __atomic_add_fetch(&v->refs, 1, __ATOMIC_RELAXED);
                view_slots[slot] = v;
        }
        pthread_mutex_unlock(&view_lock);
        sf_view_unref(old);
}

/* ---- whole lists (shared) ---- */

#define LIST_SLOTS 64

static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static sf_list_t *list_slots[LIST_SLOTS];

static size_t list_home(const char *type, const char *ns, bool system, bool all) {
        return (size_t)((hash_bytes(type, strlen(type)) ^ hash_bytes(ns, strlen(ns)) ^ (system ? 7 : 0) ^
                         (all ? 13 : 0)) % LIST_SLOTS);
}

void sf_list_unref(const sf_list_t *cl) {
        sf_list_t *l = (sf_list_t *)cl;

        if (!l || __atomic_sub_fetch(&l->refs, 1, __ATOMIC_ACQ_REL) > 0)
                return;
        free(l->text);
        free(l->nstext);
        free(l);
}

void sf_list_release(void *cls) { sf_list_unref(cls); }

int sf_cache_list_get(const char *type, const char *ns, bool system, bool all, const uint64_t gens[SF_LIST_GENS],
                      const char *nstext, size_t nslen, const sf_list_t **ret) {
        sf_list_t *l, *found = NULL;

        pthread_mutex_lock(&list_lock);
        l = list_slots[list_home(type, ns, system, all)];
        if (l && strcmp(l->type, type) == 0 && strcmp(l->ns, ns) == 0 && l->system == system && l->all == all &&
            memcmp(l->gens, gens, sizeof(l->gens)) == 0 && l->nslen == nslen &&
            memcmp(l->nstext, nstext, nslen) == 0) {
                __atomic_add_fetch(&l->refs, 1, __ATOMIC_RELAXED);
                found = l;
        }
        pthread_mutex_unlock(&list_lock);
        if (!found)
                return -ENOENT;
        *ret = found;
        return 0;
}

int sf_cache_list_put(const char *type, const char *ns, bool system, bool all, const uint64_t gens[SF_LIST_GENS],
                      const char *nstext, size_t nslen, char *text, size_t len, const sf_list_t **ret) {
        sf_list_t *l = NULL, *old;
        size_t slot;
        int r = -ENAMETOOLONG;

        if (strlen(type) >= sizeof(l->type) || strlen(ns) >= sizeof(l->ns))
                goto fail;
        r = -ENOMEM;
        l = calloc(1, sizeof(*l));
        if (!l || !(l->nstext = malloc(nslen + 1)))
                goto fail;
        snprintf(l->type, sizeof(l->type), "%s", type);
        snprintf(l->ns, sizeof(l->ns), "%s", ns);
        l->system = system;
        l->all = all;
        memcpy(l->gens, gens, sizeof(l->gens));
        memcpy(l->nstext, nstext, nslen);
        l->nstext[nslen] = 0;
        l->nslen = nslen;
        l->text = text;
        l->len = len;
        l->refs = 2; /* the cache's and the caller's */
        slot = list_home(type, ns, system, all);
        pthread_mutex_lock(&list_lock);
        old = list_slots[slot];
        list_slots[slot] = l;
        pthread_mutex_unlock(&list_lock);
        sf_list_unref(old);
        *ret = l;
        return 0;
fail:
        if (l)
                free(l->nstext);
        free(l);
        free(text);
        return r;
}

void sf_cache_view_clear(void) {
        pthread_mutex_lock(&view_lock);
        for (size_t i = 0; i < VIEW_SLOTS; i++) {
                sf_view_unref(view_slots[i]);
                view_slots[i] = NULL;
        }
        pthread_mutex_unlock(&view_lock);
        pthread_mutex_lock(&list_lock);
        for (size_t i = 0; i < LIST_SLOTS; i++) {
                sf_list_unref(list_slots[i]);
                list_slots[i] = NULL;
        }
        pthread_mutex_unlock(&list_lock);
}
