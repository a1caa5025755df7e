/*
 * Throughput of the body scanner on OpenAI chat bodies, on one core.
 *
 *   bench_body [size_bytes] [seconds]
 *
 * The body is a chat request with several messages of prose, escapes
 * included, and "model" last so that the whole body must be read.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcig_body.h"


static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


int
main(int argc, char **argv)
{
    static const char  prose[] =
        "What is the best pizza in the world? Many argue for Neapolitan "
        "pizza, with its \\\"soft\\\" crust and San Marzano tomatoes.\\n";
    size_t             size, len, n;
    double             secs, t0, t1;
    char              *body;
    unsigned long      iters;
    mcig_body_scan_t  *s;

    size = (argc > 1) ? strtoul(argv[1], NULL, 10) : 1024 * 1024;
    secs = (argc > 2) ? atof(argv[2]) : 2.0;

    body = malloc(size + 256);
    len = (size_t) sprintf(body, "{\"messages\":[");
    n = 0;

    while (len < size - 200) {
        len += (size_t) sprintf(body + len, "%s{\"role\":\"%s\",\"content\":\"",
                                n ? "," : "", (n % 2) ? "assistant" : "user");

        for (size_t k = 0; k < 40 && len < size - 200; k++) {
            memcpy(body + len, prose, sizeof(prose) - 1);
            len += sizeof(prose) - 1;
        }

        len += (size_t) sprintf(body + len, "\"}");
        n++;
    }

    len += (size_t) sprintf(body + len, "],\"max_tokens\":100,\"temperature\":0,"
                                        "\"model\":\"food-review-1\"}");

    s = malloc(sizeof(*s));
    iters = 0;
    t0 = now();

    do {
        mcig_body_scan_init(s);

        /* in 16 KB pieces, as nginx's client_body_buffer_size reads it */
        for (size_t off = 0; off < len; off += 16384) {
            mcig_body_scan_feed(s, (const uint8_t *) body + off,
                                (len - off < 16384) ? len - off : 16384);
        }

        if (mcig_body_scan_finish(s) != MCIG_BODY_OK
            || strcmp(s->model, "food-review-1") != 0)
        {
            fprintf(stderr, "bench_body: scan failed\n");
            return 1;
        }

        iters++;
        t1 = now();
    } while (t1 - t0 < secs);

    printf("body_bytes=%zu scans=%lu seconds=%.3f GB_per_s=%.2f "
           "us_per_scan=%.1f\n", len, iters, t1 - t0,
           (double) len * iters / (t1 - t0) / 1e9,
           (t1 - t0) / iters * 1e6);

    free(s);
    free(body);
    return 0;
}
