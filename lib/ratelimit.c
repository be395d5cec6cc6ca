/* Token buckets in a set-associative table: a key hashes to a group of GROUP slots, and a
 * new key evicts within its group only, so lookups and evictions are O(GROUP). */
#include "ratelimit.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GROUP 8
/* Tokens are kept in thousandths so refills of less than one token per tick add up. */
#define MILLI 1000

typedef struct bucket {
        char key[SF_RATELIMIT_KEY_MAX];
        int64_t tokens_milli;
        int64_t updated_ms; /* last refill */
        int64_t seen_ms;    /* last take: for LRU eviction */
        bool used;
} bucket_t;

struct sf_ratelimit {
        pthread_mutex_t lock;
        bucket_t *slots;
        size_t nslots; /* power of two, multiple of GROUP */
        int64_t rate_per_min;
        int64_t burst_milli;
};

int sf_ratelimit_new(size_t slots, unsigned rate_per_min, unsigned burst, sf_ratelimit_t **ret) {
        sf_ratelimit_t *rl;
        size_t n = GROUP;

        if (!rate_per_min || !burst || !ret)
                return -EINVAL;
        while (n < slots && n < ((size_t)1 << 24))
                n <<= 1;
        rl = calloc(1, sizeof(*rl));
        if (!rl)
                return -ENOMEM;
        rl->slots = calloc(n, sizeof(*rl->slots));
        if (!rl->slots) {
                free(rl);
                return -ENOMEM;
        }
        pthread_mutex_init(&rl->lock, NULL);
        rl->nslots = n;
        rl->rate_per_min = rate_per_min;
        rl->burst_milli = (int64_t)burst * MILLI;
        *ret = rl;
        return 0;
}

void sf_ratelimit_free(sf_ratelimit_t *rl) {
        if (!rl)
                return;
        pthread_mutex_destroy(&rl->lock);
        free(rl->slots);
        free(rl);
}

/* FNV-1a: keys are client addresses, not attacker-chosen strings of arbitrary shape; a
 * collision only shares a group, never a bucket. */
static size_t key_hash(const char *key) {
        uint64_t h = 1469598103934665603ULL;

        for (; *key; key++)
                h = (h ^ (unsigned char)*key) * 1099511628211ULL;
        return (size_t)h;
}

static void bucket_refill(const sf_ratelimit_t *rl, bucket_t *b, int64_t now_ms) {
        int64_t dt = now_ms - b->updated_ms;

        if (dt <= 0)
                return;
        /* rate_per_min tokens per 60000 ms, in thousandths: rate * dt / 60. */
        if (dt > 60LL * 1000 * 1000) /* long idle: full anyway; avoids overflow */
                b->tokens_milli = rl->burst_milli;
        else
                b->tokens_milli += rl->rate_per_min * dt / 60;
        if (b->tokens_milli > rl->burst_milli)
                b->tokens_milli = rl->burst_milli;
        b->updated_ms = now_ms;
}

/* The slot for key in its group: its own, else a free one, else one that has refilled
 * completely (evicting it loses nothing), else the least recently used. */
static bucket_t *bucket_find(sf_ratelimit_t *rl, const char *key, int64_t now_ms) {
        size_t base = key_hash(key) & (rl->nslots - 1) & ~(size_t)(GROUP - 1);
        bucket_t *g = rl->slots + base, *victim = NULL;

        for (size_t i = 0; i < GROUP; i++)
                if (g[i].used && strcmp(g[i].key, key) == 0)
                        return &g[i];
        for (size_t i = 0; i < GROUP && !victim; i++)
                if (!g[i].used)
                        victim = &g[i];
        for (size_t i = 0; i < GROUP && !victim; i++) {
                bucket_refill(rl, &g[i], now_ms);
                if (g[i].tokens_milli >= rl->burst_milli)
                        victim = &g[i];
        }
        if (!victim) {
                victim = &g[0];
                for (size_t i = 1; i < GROUP; i++)
                        if (g[i].seen_ms < victim->seen_ms)
                                victim = &g[i];
        }
        memset(victim, 0, sizeof(*victim));
        victim->used = true;
        memcpy(victim->key, key, strlen(key) + 1); /* key fits: the caller truncated it */
        victim->tokens_milli = rl->burst_milli;
        victim->updated_ms = now_ms;
        return victim;
}

int sf_ratelimit_take(sf_ratelimit_t *rl, const char *key, int64_t now_ms, int64_t *ret_retry_ms) {
        char k[SF_RATELIMIT_KEY_MAX];
        bucket_t *b;
        int r = 0;

        if (!rl || !key)
                return -EINVAL;
        snprintf(k, sizeof(k), "%s", key);
        pthread_mutex_lock(&rl->lock);
        b = bucket_find(rl, k, now_ms);
        bucket_refill(rl, b, now_ms);
        b->seen_ms = now_ms;
        if (b->tokens_milli >= MILLI) {
                b->tokens_milli -= MILLI;
        } else {
                r = -EAGAIN;
                if (ret_retry_ms)
                        *ret_retry_ms = ((MILLI - b->tokens_milli) * 60 + rl->rate_per_min - 1) / rl->rate_per_min;
        }
        pthread_mutex_unlock(&rl->lock);
        return r;
}
