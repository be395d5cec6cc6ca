/* The sf CLI's Server-Sent Events parser (cli/sse.c), fed what a hostile server could send:
 * the input, cut into chunks at the sizes its first bytes name (so records and line ends
 * straddle reads as they do on a socket). Every record handed out must be within the
 * documented bounds and hold no NUL; the parser's buffers never pass their limits. */
#include "../fuzz.h"

#include "../../../cli/sse.c"

static void on_record(const sf_sse_record_t *r, void *ud) {
        size_t *n = ud;
        FUZZ_CHECK(r->data);
        FUZZ_CHECK(strlen(r->data) < SF_SSE_DATA_MAX);
        FUZZ_CHECK(!r->id || strlen(r->id) < SF_SSE_LINE_MAX);
        FUZZ_CHECK(!r->event || strlen(r->event) < SF_SSE_LINE_MAX);
        (*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        sf_sse_parser_t p = {0};
        size_t records = 0, i = 0, cut = 0;
        uint8_t sizes[4] = {1, 7, 64, 255};

        for (size_t k = 0; k < 4 && k < size; k++)
                sizes[k] = data[k] ? data[k] : 1;
        if (size > 4) {
                data += 4;
                size -= 4;
        }
        while (i < size) {
                size_t n = sizes[cut++ % 4];
                if (n > size - i)
                        n = size - i;
                FUZZ_CHECK(sf_sse_feed(&p, (const char *)data + i, n, on_record, &records) == 0);
                FUZZ_CHECK(p.len <= SF_SSE_LINE_MAX && p.cap <= SF_SSE_LINE_MAX && p.dlen <= SF_SSE_DATA_MAX);
                i += n;
        }
        sf_sse_parser_done(&p);
        return 0;
}
