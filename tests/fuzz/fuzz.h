/* Helpers shared by the libFuzzer targets under tests/fuzz/ (see docs/fuzzing.md). Each
 * target is one fuzz_<target>.c defining LLVMFuzzerTestOneInput; FUZZ_CHECK is how a
 * target asserts a property of the real code: a failed check aborts, and libFuzzer keeps
 * the input as a crash. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The message goes to the sanitizers' report stream: under -close_fd_mask=2 (make fuzz
 * silences the code's own logging) that is the only stream still shown. */
void __sanitizer_report_error_summary(const char *error_summary);
#define FUZZ_CHECK(cond)                                                                        \
        do {                                                                                    \
                if (!(cond)) {                                                                  \
                        __sanitizer_report_error_summary(__FILE__ ": check failed: " #cond); \
                        abort();                                                                \
                }                                                                               \
        } while (0)

/* A NUL-terminated copy of n bytes (an embedded NUL ends the string early, as it would
 * for the C code reading it). */
static inline char *fuzz_str(const uint8_t *p, size_t n) {
        char *s = malloc(n + 1);

        if (!s)
                abort();
        memcpy(s, p, n);
        s[n] = 0;
        return s;
}

/* The next part of the input up to sep (or its end): *pos moves past sep. NULL when the
 * input is used up. The result is malloc'd and NUL-terminated. */
static inline char *fuzz_part(const uint8_t *data, size_t size, size_t *pos, char sep) {
        const uint8_t *start, *end;
        char *s;

        if (*pos > size)
                return NULL;
        start = data + *pos;
        end = memchr(start, sep, size - *pos);
        if (!end)
                end = data + size;
        s = fuzz_str(start, (size_t)(end - start));
        *pos = (size_t)(end - data) + 1;
        return s;
}
