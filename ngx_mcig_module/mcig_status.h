/*
 * Copyright (C) ngx_mcig_module authors
 *
 * What the gateway reports at mcig_status: the status JSON and the
 * Prometheus text format, written from a snapshot of plain values the
 * caller fills (the nginx side, from the shared zone).  Pure C, no nginx
 * headers, no I/O.  The JSON is built with cJSON and returned allocated
 * with cJSON's allocator; the Prometheus text goes into the caller's
 * buffer, measured first:
 *
 *     text = mcig_status_json(&st, &len);
 *     ... mcig_status_json_free(text);
 *
 *     len = mcig_status_prometheus(&st, NULL, 0);
 *     buf = alloc(len);
 *     mcig_status_prometheus(&st, buf, len);
 *
 * Names (pools, members, regions, clusters, objectives) may hold any
 * bytes: manifests can put anything in a name.  Both formats are valid
 * UTF-8 whatever the names hold: a byte that is not part of a well-formed
 * UTF-8 sequence (RFC 3629) is taken as a Latin-1 character, so a name
 * from a Latin-1 file reads right and the byte can still be told.
 *
 *   JSON strings: '"', '\' and the bytes under 0x20 escaped as cJSON
 *   escapes them (\n, \t, ..., \u0001), NUL included; the Latin-1 bytes
 *   as \u0080 to \u00ff.  Well-formed UTF-8 and DEL as they are.
 *
 *   Prometheus label values: '\', '"' and LF as \\, \" and \n, the only
 *   escapes of the format, which takes any other character as it is (CR
 *   and NUL too: lines end at LF only); the Latin-1 bytes as their
 *   two-byte UTF-8.
 */

#ifndef MCIG_STATUS_H
#define MCIG_STATUS_H

#include <stddef.h>
#include <stdint.h>


/* queued, dispatched, queue_full, queue_timeout, abandoned */
#define MCIG_STATUS_OUTCOMES          5

/* buckets of the queue's wait histogram, the last one +Inf */
#define MCIG_STATUS_WAIT_BUCKETS      14


typedef enum {
    MCIG_STATUS_QUEUED = 0,     /* waited */
    MCIG_STATUS_DISPATCHED,     /* went on to a member after waiting */
    MCIG_STATUS_QUEUE_FULL,     /* 429: no room in the queue */
    MCIG_STATUS_QUEUE_TIMEOUT,  /* 503: waited the queue's timeout */
    MCIG_STATUS_ABANDONED       /* its client went away while waiting */
} mcig_status_outcome_e;


/* bytes, not NUL-terminated; data may be NULL when len is 0 */
typedef struct {
    const char                     *data;
    size_t                          len;
} mcig_status_str_t;


typedef struct {
    mcig_status_str_t               name;
    int64_t                         priority;
    uint64_t                        requests;
    uint64_t                        shed;
    uint64_t                        queued;
    uint64_t                        queue_full;
    uint64_t                        queue_timeout;
} mcig_status_objective_t;


/* its members, healthy ones and utilization come from the pool's members */
typedef struct {
    mcig_status_str_t               name;
    uint64_t                        requests;     /* sent to the region */
    unsigned                        drained:1;
} mcig_status_region_t;


typedef struct {
    mcig_status_str_t               address;
    mcig_status_str_t               cluster;      /* in a regional pool */

    /* index in the pool's regions; one out of range counts in none */
    size_t                          region;

    int64_t                         in_flight;    /* across all workers */
    uint64_t                        capacity;     /* max in flight x weight */
    uint64_t                        requests;
    uint64_t                        failures;

    /*
     * Healthy members of a regional pool: the load against the capacity
     * the member pick compares (KV usage against max_utilization in ppm,
     * or requests in flight against capacity).  A capacity of 0 counts
     * as 1.
     */
    uint32_t                        load;
    uint32_t                        load_capacity;

    uint64_t                        health_check_age_ms;

    uint64_t                        scrapes;
    uint64_t                        scrape_errors;
    uint64_t                        scrape_usec;  /* the last good scrape */

    /* the scraped figures, when metrics_fresh */
    uint32_t                        kv_ppm;
    uint32_t                        waiting;
    uint32_t                        running;
    uint64_t                        metrics_age_ms;
    uint64_t                        dispatched;   /* since the last scrape */

    /* passive outlier detection, when the pool has it */
    uint64_t                        ejections;
    uint64_t                        ejected_ms;   /* left of the ejection */

    unsigned                        healthy:1;
    unsigned                        ejected:1;
    unsigned                        health_checked:1;  /* age is known */
    unsigned                        metrics_fresh:1;
} mcig_status_member_t;


typedef struct {
    int64_t                         priority;
    uint64_t                        waiting;
} mcig_status_band_t;


/* a pool's flow control */
typedef struct {
    uint64_t                        max;
    uint64_t                        max_per_priority;
    uint64_t                        timeout_ms;

    /* waiting in all workers; the count may dip under 0 for an instant */
    int64_t                         waiting;

    /* read even when the queue is off: refusals are reported anyway */
    uint64_t                        outcomes[MCIG_STATUS_OUTCOMES];

    uint64_t                        wait_ms;      /* sum, dispatched */
    uint64_t                        wait_buckets[MCIG_STATUS_WAIT_BUCKETS];
    uint64_t                        bucket_ms[MCIG_STATUS_WAIT_BUCKETS - 1];

    /* the priorities waiting, highest first, each once */
    const mcig_status_band_t       *bands;
    size_t                          nbands;

    unsigned                        enabled:1;
    unsigned                        queue_sheddable:1;
} mcig_status_queue_t;


/* a pool's session affinity (mcig_session_affinity) */
typedef struct {
    mcig_status_str_t               header;
    uint64_t                        kept;     /* to the session's member */
    uint64_t                        moved;    /* it was full: the pick */
    unsigned                        enabled:1;
} mcig_status_session_t;


typedef struct {
    mcig_status_str_t               name;
    uint64_t                        max_in_flight;
    uint64_t                        max_utilization;  /* percent */
    uint64_t                        max_queue;

    /* refused: 429 pool_saturated, 503 no member, 504 deadline */
    uint64_t                        saturated;
    uint64_t                        no_member;
    uint64_t                        deadline;

    uint64_t                        responses[6];  /* [1] .. [5]: 1xx .. */

    /* [1] local, [2] spillover, [3] failover, as mcig_region_kind_e */
    uint64_t                        decisions[4];

    const mcig_status_region_t     *regions;
    size_t                          nregions;
    const mcig_status_member_t     *members;
    size_t                          nmembers;
    const mcig_status_objective_t  *objectives;
    size_t                          nobjectives;

    /* requests without an objective or naming an unknown one; no name */
    mcig_status_objective_t         unnamed;

    mcig_status_queue_t             queue;
    mcig_status_session_t           session;

    unsigned                        custom_metrics:1;  /* balancing mode */
    unsigned                        dry_run:1;
    unsigned                        regional:1;        /* mcig_regions */
    unsigned                        health_checks:1;
    unsigned                        outlier_detection:1;
    unsigned                        scraping:1;        /* mcig_metrics */
} mcig_status_pool_t;


typedef struct {
    mcig_status_str_t               version;      /* nginx's */
    uint64_t                        time_ms;      /* since the epoch */
    const mcig_status_pool_t       *pools;
    size_t                          npools;
} mcig_status_t;


/*
 * The status JSON, NUL-terminated, its length in *len if len is not NULL;
 * NULL when an allocation failed.  Free it with mcig_status_json_free().
 */
char *mcig_status_json(const mcig_status_t *st, size_t *len);
void mcig_status_json_free(char *text);

/*
 * The Prometheus text: returns its length; buf holds it whole only if
 * that is at most size (no NUL is added), and nothing is written past
 * buf + size.  buf may be NULL when size is 0.
 */
size_t mcig_status_prometheus(const mcig_status_t *st, char *buf,
    size_t size);

/*
 * The escapes alone, as the writers use them: a JSON string with its
 * quotes, and the inside of a Prometheus label value.  Same contract as
 * mcig_status_prometheus().
 */
size_t mcig_status_json_string(char *buf, size_t size, const char *s,
    size_t len);
size_t mcig_status_label_value(char *buf, size_t size, const char *s,
    size_t len);


#endif /* MCIG_STATUS_H */
