
/*
 * Copyright (C) ngx_mcig_module authors
 *
 * Declarations shared by the two nginx modules of ngx_mcig_module:
 * ngx_http_mcig_module (the request side: body, headers, variables, error
 * bodies) and ngx_http_upstream_mcig_module (pools, shared zone, balancer).
 */


#ifndef _NGX_HTTP_MCIG_MODULE_H_INCLUDED_
#define _NGX_HTTP_MCIG_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "mcig_body.h"
#include "mcig_manifest.h"
#include "mcig_pick.h"
#include "mcig_prom.h"
#include "mcig_queue.h"
#include "mcig_region.h"
#include "mcig_score.h"
#include "mcig_session.h"


/*
 * Worker processes that can hold in-flight requests at once, old
 * generations still draining after a reload included.
 */
#define NGX_HTTP_MCIG_WORKER_SLOTS  64

/* LoRA adapters of a member kept from each of its running/waiting lists */
#define NGX_HTTP_MCIG_LORA_MAX      16


typedef enum {
    NGX_HTTP_MCIG_ERR_NONE = 0,
    NGX_HTTP_MCIG_ERR_BODY,           /* 400: the body scan failed */
    NGX_HTTP_MCIG_ERR_SATURATED,      /* 429: sheddable and pool full */
    NGX_HTTP_MCIG_ERR_NO_MEMBER,      /* 503: no member can take it */
    NGX_HTTP_MCIG_ERR_DEADLINE,       /* 504: pool timeout passed */
    NGX_HTTP_MCIG_ERR_NGINX_CLIENT,   /* nginx's own 4xx error */
    NGX_HTTP_MCIG_ERR_NGINX_SERVER,   /* nginx's own 5xx error */
    NGX_HTTP_MCIG_ERR_QUEUE_FULL,     /* 429: the pool's queue is full */
    NGX_HTTP_MCIG_ERR_QUEUE_TIMEOUT,  /* 503: waited its time in the queue */
    NGX_HTTP_MCIG_ERR_ENCODING        /* 415: a compressed request body */
} ngx_http_mcig_error_e;


/* what became of requests that met a pool's queue (flow control) */
typedef enum {
    NGX_HTTP_MCIG_QUEUE_QUEUED = 0,   /* waited */
    NGX_HTTP_MCIG_QUEUE_DISPATCHED,   /* went on to a member after waiting */
    NGX_HTTP_MCIG_QUEUE_FULL,         /* 429: no room in the queue */
    NGX_HTTP_MCIG_QUEUE_TIMEOUT,      /* 503: waited the queue's timeout */
    NGX_HTTP_MCIG_QUEUE_ABANDONED,    /* its client went away while waiting */
    NGX_HTTP_MCIG_QUEUE_OUTCOMES
} ngx_http_mcig_queue_outcome_e;


/* where a request with a session went (mcig_session_affinity) */
typedef enum {
    NGX_HTTP_MCIG_SESSION_NONE = 0,   /* no session, or no member */
    NGX_HTTP_MCIG_SESSION_KEPT,       /* to the session's member */
    NGX_HTTP_MCIG_SESSION_MOVED       /* it was full: the normal pick */
} ngx_http_mcig_session_e;


/* buckets of the wait histogram, the last one +Inf */
#define NGX_HTTP_MCIG_QUEUE_BUCKETS  14


/* one pool member's state in the shared zone */
/*
 * Every node of the zone starts with this: its key, and the configuration
 * generation that last used it (see ngx_http_upstream_mcig_collect()).
 */
typedef struct {
    ngx_str_node_t                  sn;
    ngx_atomic_t                    generation;
} ngx_http_mcig_node_t;


typedef struct {
    ngx_str_node_t                  sn;       /* key: "pool member" */
    ngx_atomic_t                    generation;
    ngx_queue_t                     queue;
    ngx_atomic_t                    in_flight;
    ngx_atomic_t                    requests;
    ngx_atomic_t                    failures;

    /* passive outlier detection, from the responses themselves */
    ngx_atomic_t                    consecutive_failures;
    ngx_atomic_t                    ejected_until;    /* ngx_current_msec */
    ngx_atomic_t                    ejections;
    ngx_atomic_t                    ejection_level;   /* x ejection time */

    /*
     * Load signals from the member's /metrics, written only by the worker
     * holding the scrape lease; readers retry while metrics_seq is odd or
     * changes under them.  metrics_msec is 0 until the first good scrape.
     */
    ngx_atomic_t                    metrics_seq;
    uint32_t                        kv_ppm;
    uint32_t                        waiting;
    uint32_t                        running;
    ngx_msec_t                      metrics_msec;
    ngx_atomic_t                    dispatched;   /* since the last scrape */
    ngx_atomic_t                    ended;        /* since the last scrape */

    /* vllm:lora_requests_info, adapters as mcig_lora_hash() values */
    uint32_t                        max_lora;
    uint32_t                        lora_running_n;
    uint32_t                        lora_waiting_n;
    uint64_t                        lora_running[NGX_HTTP_MCIG_LORA_MAX];
    uint64_t                        lora_waiting[NGX_HTTP_MCIG_LORA_MAX];

    ngx_atomic_t                    scrapes;
    ngx_atomic_t                    scrape_errors;
    ngx_atomic_t                    scrape_usec;  /* the last good one */

    /* health: active checks and passive failures, consecutive counts */
    ngx_atomic_t                    unhealthy;
    ngx_atomic_t                    health_oks;
    ngx_atomic_t                    health_fails;
    ngx_msec_t                      health_checked;

    /* this member's in-flight requests per worker slot, for repair */
    uint32_t                        in_flight_by_worker[
                                        NGX_HTTP_MCIG_WORKER_SLOTS];
    u_char                          key[1];
} ngx_http_mcig_member_node_t;


/* a pool's counters in the shared zone */
typedef struct {
    ngx_str_node_t                  sn;       /* key: "\x01pool" */
    ngx_atomic_t                    generation;
    ngx_atomic_t                    saturated;    /* 429 */
    ngx_atomic_t                    no_member;    /* 503 */
    ngx_atomic_t                    deadline;     /* 504 */

    /* answers by status class: 1xx .. 5xx in [1] .. [5] */
    ngx_atomic_t                    responses[6];

    /* the last good scrape of any member, 0 before the first */
    ngx_msec_t                      metrics_msec;

    /* where requests went, and why (mcig_region_kind_e) */
    ngx_atomic_t                    decisions[4];
    ngx_atomic_t                    region_requests[MCIG_REGIONS_MAX];

    /* picks of requests with a session: kept, moved (session_e - 1) */
    ngx_atomic_t                    session_affinity[2];

    /*
     * Drain state of each region, updated by every worker at admission
     * without a lock: a race can only shift a restore by one request.
     */
    mcig_region_state_t             region_state[MCIG_REGIONS_MAX];

    /*
     * The share of requests the home region keeps (mcig_region_next_keep),
     * learnt twice a second by the worker that wins the update, and the
     * home region (index + 1) it was learnt for.
     */
    ngx_atomic_t                    region_keep_ppm;
    ngx_atomic_t                    region_keep_home;
    ngx_atomic_t                    region_keep_msec;

    /*
     * Flow control (ngx_http_mcig_queue.c): requests waiting in every
     * worker's queue, and per worker slot and priority band, so that a
     * worker holds its lower bands while a higher one waits anywhere and
     * the counts of an exited worker can be dropped; each slot's counts
     * are written by its worker only.  queue_admitting: the workers
     * whose slot says "admitting", so that a request needs not read them
     * all.
     */
    ngx_atomic_t                    queue_waiting;
    ngx_atomic_t                    queue_admitting;
    ngx_atomic_t                    queue_outcomes[
                                        NGX_HTTP_MCIG_QUEUE_OUTCOMES];
    ngx_atomic_t                    queue_wait_ms;   /* sum, dispatched */
    ngx_atomic_t                    queue_wait_buckets[
                                        NGX_HTTP_MCIG_QUEUE_BUCKETS];
    mcig_queue_counts_t             queue_by_worker[
                                        NGX_HTTP_MCIG_WORKER_SLOTS];
    u_char                          key[1];
} ngx_http_mcig_pool_node_t;


/* an objective's counters; the one of key "\x02pool\0" counts the rest */
typedef struct {
    ngx_str_node_t                  sn;       /* "\x02pool\0objective" */
    ngx_atomic_t                    generation;
    ngx_atomic_t                    requests;
    ngx_atomic_t                    shed;
    ngx_atomic_t                    queued;
    ngx_atomic_t                    queue_full;
    ngx_atomic_t                    queue_timeout;
    u_char                          key[1];
} ngx_http_mcig_objective_node_t;


typedef struct {
    ngx_rbtree_t                    rbtree;
    ngx_rbtree_node_t               sentinel;
    ngx_queue_t                     members;

    /* the worker that scrapes, until when (ngx_current_msec) */
    ngx_atomic_t                    scrape_owner;
    ngx_atomic_t                    scrape_until;

    /* configurations loaded so far (reloads), and each worker's own */
    ngx_atomic_t                    generation;
    ngx_atomic_t                    worker_generation[
                                        NGX_HTTP_MCIG_WORKER_SLOTS];

    /* pid owning each worker slot; 0 when free */
    ngx_atomic_t                    worker_pid[NGX_HTTP_MCIG_WORKER_SLOTS];
} ngx_http_mcig_shctx_t;


typedef struct {
    ngx_http_mcig_shctx_t          *sh;
    ngx_slab_pool_t                *shpool;
} ngx_http_mcig_zone_ctx_t;


typedef struct {
    ngx_str_t                       name;     /* as nginx prints the peer */
    ngx_str_t                       key;
    ngx_uint_t                      region;   /* index in mcig_regions */
    ngx_str_t                       cluster;
    ngx_str_t                       metrics_url;  /* NUL-terminated */
    ngx_str_t                       health_url;   /* NUL-terminated */
    ngx_uint_t                      capacity; /* max in flight x weight */
    uint64_t                        session_key;  /* of its address */
    ngx_http_mcig_member_node_t    *node;     /* set when the zone starts */
} ngx_http_mcig_member_t;


typedef struct {
    ngx_str_t                       name;
    ngx_int_t                       priority;
    ngx_str_t                       key;
    ngx_http_mcig_objective_node_t *node;
} ngx_http_mcig_objective_t;


#define NGX_HTTP_MCIG_IN_FLIGHT         0
#define NGX_HTTP_MCIG_CUSTOM_METRICS    1


/* one mcig_region line: members of a region (and cluster) by address */
typedef struct {
    ngx_str_t                       region;
    ngx_str_t                       cluster;
    ngx_array_t                     addrs;        /* ngx_addr_t */
} ngx_http_mcig_region_conf_t;


/* mcig_manifests: the loaded manifests, resolved once every pool is known */
typedef struct {
    mcig_manifest_t                *manifest;     /* NULL: none loaded */
    size_t                          logged;       /* diagnostics printed */
    ngx_flag_t                      resolved;
} ngx_http_mcig_manifests_t;


/*
 * A condition logged per request (no member, shed, queue full, deadline,
 * bad body) writes one line a second per worker, with the count of the
 * lines it did not write: an outage must not flood the log.
 */
typedef enum {
    NGX_HTTP_MCIG_LOG_NO_MEMBER = 0,
    NGX_HTTP_MCIG_LOG_SHED,
    NGX_HTTP_MCIG_LOG_QUEUE_FULL,
    NGX_HTTP_MCIG_LOG_QUEUE_TIMEOUT,
    NGX_HTTP_MCIG_LOG_DEADLINE,
    NGX_HTTP_MCIG_LOG_CONDITIONS
} ngx_http_mcig_log_condition_e;


typedef struct {
    ngx_msec_t                      written;      /* ngx_current_msec */
    ngx_uint_t                      skipped;      /* since written */
    unsigned                        started:1;
} ngx_http_mcig_log_limit_t;


/* an upstream {} with mcig_pool: an InferencePool */
typedef struct {
    ngx_flag_t                      enabled;
    ngx_uint_t                      placeholder;  /* index in servers */
    ngx_uint_t                      max_in_flight;
    ngx_msec_t                      request_timeout;
    ngx_array_t                    *objectives;   /* objective_t */

    /* mcig_balancing_mode */
    ngx_uint_t                      mode;
    ngx_uint_t                      max_utilization;  /* percent */
    ngx_uint_t                      max_queue;        /* waiting */
    ngx_flag_t                      dry_run;

    /* mcig_metrics: scraping the members' /metrics */
    mcig_prom_set_t                *metrics;      /* NULL: no scraping */
    ngx_uint_t                      metrics_port; /* 0: the member's */
    ngx_str_t                       metrics_path;
    ngx_msec_t                      metrics_interval;
    ngx_msec_t                      metrics_timeout;
    ngx_msec_t                      metrics_stale;
    size_t                          metrics_max_size;
    ngx_flag_t                      metrics_https;
    ngx_flag_t                      metrics_name_filter;
    ngx_str_t                       metrics_ca_file;  /* NUL-terminated */
    ngx_str_t                       metrics_cert;
    ngx_str_t                       metrics_key;
    ngx_str_t                       metrics_token;    /* the file's name */
    ngx_str_t                       metrics_auth;     /* header line */

    /* mcig_health_check (HealthCheckPolicy) */
    ngx_flag_t                      health;
    ngx_uint_t                      health_port;
    ngx_str_t                       health_path;
    ngx_msec_t                      health_interval;
    ngx_msec_t                      health_timeout;
    ngx_uint_t                      healthy_threshold;
    ngx_uint_t                      unhealthy_threshold;

    ngx_http_upstream_srv_conf_t   *upstream;
    ngx_str_t                       key;
    ngx_http_mcig_pool_node_t      *node;
    ngx_str_t                       default_objective_key;
    ngx_http_mcig_objective_node_t *default_objective;
    ngx_http_mcig_member_t         *members;      /* in peer order */
    ngx_uint_t                      nmembers;
    int                            *tied;         /* members' scratch, */
    mcig_swrr_peer_t               *swrr;         /* this worker's */

    /* mcig_region lines: ngx_http_mcig_region_conf_t */
    ngx_array_t                    *region_confs;
    ngx_array_t                    *regions;      /* mcig_regions, ngx_str_t */
    mcig_region_params_t            region_params;
    ngx_shm_zone_t                 *shm_zone;

    /* mcig_scorers: EPP-grade scoring of the chosen region's members */
    ngx_flag_t                      scoring;
    mcig_score_weights_t            weights;
    ngx_uint_t                      block_size;
    ngx_uint_t                      max_blocks;
    ngx_uint_t                      prefix_entries;
    ngx_shm_zone_t                 *prefix_zone;  /* NULL: no prefix scorer */

    /* mcig_session_affinity: the header's name, lowercase; empty: off */
    ngx_str_t                       session_header;

    /* mcig_outlier_detection; consecutive 0: off */
    ngx_uint_t                      outlier_consecutive;
    ngx_msec_t                      outlier_ejection;
    ngx_msec_t                      outlier_max_ejection;
    ngx_uint_t                      outlier_max_ejected;  /* percent */

    /* each worker's own, written after fork */
    ngx_http_mcig_log_limit_t       log_limit[NGX_HTTP_MCIG_LOG_CONDITIONS];

    /* what mcig_manifests attach to the pool's name, NULL if nothing */
    const mcig_manifest_pool_t     *manifest;
} ngx_http_upstream_mcig_srv_conf_t;


/* what the module knows about one request */
typedef struct {
    ngx_http_request_t             *request;
    ngx_str_t                       model;
    ngx_str_t                       objective_header;
    ngx_str_t                       fairness_id;
    ngx_str_t                       rewrite_header;
    ngx_str_t                       target_model; /* sent to the server */
    ngx_str_t                       objective;    /* the one applied */
    ngx_int_t                       priority;
    ngx_http_mcig_objective_node_t *objective_node;
    ngx_int_t                       region;       /* chosen, -1 if none */
    mcig_region_kind_e              decision;
    ngx_http_upstream_mcig_srv_conf_t  *pool;
    ngx_http_mcig_member_t         *member;       /* last member picked */

    ngx_http_mcig_error_e           error;
    const char                     *error_code;
    ngx_str_t                       error_message;
    ngx_str_t                       error_body;   /* the JSON sent */

    ngx_event_t                     deadline;
    ngx_int_t                       phase_status;

    /* the prompt's block hashes, for the prefix scorer */
    mcig_prefix_hasher_t           *hasher;
    uint64_t                       *hashes;
    uint32_t                        nblocks;

    /* the hash of the pool's session header, when the request has one */
    uint64_t                        session;
    ngx_http_mcig_session_e         session_affinity;  /* the last pick */

    unsigned                        scanning:1;
    unsigned                        keepalive:1;  /* before any error */
    unsigned                        body_sent:1;
    unsigned                        deadline_expired:1;
    unsigned                        queued:1;     /* waited, was admitted */
    unsigned                        has_session:1;

    mcig_body_scan_t                scan;
} ngx_http_mcig_ctx_t;


typedef struct {
    uint32_t                        kv_ppm;
    uint32_t                        waiting;
    uint32_t                        running;
    ngx_msec_t                      age;
} ngx_http_mcig_metrics_t;


/* a member's load, as ngx_http_mcig_member_load() reads it */
typedef struct {
    uint32_t                        load;         /* against capacity */
    uint32_t                        capacity;
    uint32_t                        limit;        /* for priority >= 0 */
    uint32_t                        cache_ppm;    /* estimated, if fresh */
    uint32_t                        waiting;      /* its queue now, if fresh */
    unsigned                        fresh:1;      /* its metrics are */
    unsigned                        stale:1;      /* not, the pool's are */
} ngx_http_mcig_load_t;


ngx_int_t ngx_http_mcig_scrape_init_process(ngx_cycle_t *cycle,
    ngx_array_t *pools, ngx_http_mcig_shctx_t *sh);
void ngx_http_mcig_scrape_exit_process(ngx_cycle_t *cycle);
void ngx_http_mcig_health_event(ngx_http_upstream_mcig_srv_conf_t *pool,
    ngx_http_mcig_member_t *member, ngx_uint_t ok, const char *reason);
ngx_int_t ngx_http_mcig_read_metrics(ngx_http_upstream_mcig_srv_conf_t *pool,
    ngx_http_mcig_member_t *member, ngx_http_mcig_metrics_t *m);
/*
 * Milliseconds since a time another worker wrote: its clock may be a little
 * ahead of this one's, which is no time at all, not 2^64.
 */
#define ngx_http_mcig_msec_since(when)                                       \
    (((ngx_msec_int_t) (ngx_current_msec - (when)) > 0)                       \
     ? ngx_current_msec - (when) : 0)

ngx_int_t ngx_http_mcig_pool_metrics_fresh(
    ngx_http_upstream_mcig_srv_conf_t *pool);
mcig_lora_e ngx_http_mcig_read_lora(ngx_http_mcig_member_t *member,
    uint64_t adapter);
ngx_http_upstream_mcig_srv_conf_t *ngx_http_upstream_mcig_hashing_pool(
    ngx_http_request_t *r, ngx_http_upstream_mcig_srv_conf_t *pool);

ngx_array_t *ngx_http_mcig_pools(ngx_http_request_t *r);
void ngx_http_upstream_mcig_resolve_objective(ngx_http_mcig_ctx_t *ctx,
    ngx_http_upstream_mcig_srv_conf_t *pool);
ngx_int_t ngx_http_upstream_mcig_saturated(
    ngx_http_upstream_mcig_srv_conf_t *pool, ngx_int_t priority);
void ngx_http_mcig_member_load(ngx_http_upstream_mcig_srv_conf_t *pool,
    ngx_http_mcig_member_t *member, ngx_http_mcig_load_t *ml);
char *ngx_http_mcig_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

void ngx_http_upstream_mcig_metrics_defaults(
    ngx_http_upstream_mcig_srv_conf_t *pool);
ngx_int_t ngx_http_upstream_mcig_metrics_set(ngx_conf_t *cf,
    ngx_http_upstream_mcig_srv_conf_t *pool, const mcig_prom_preset_t *preset,
    ngx_str_t *role_spec);

char *ngx_http_mcig_manifests_load(ngx_conf_t *cf,
    ngx_http_mcig_manifests_t *mf, ngx_str_t *pattern);
ngx_int_t ngx_http_mcig_manifests_apply(ngx_conf_t *cf,
    ngx_http_mcig_manifests_t *mf, ngx_array_t *pools, ngx_array_t *regions,
    ngx_http_upstream_mcig_srv_conf_t *pool);
ngx_int_t ngx_http_mcig_rewrite_model(ngx_http_request_t *r,
    ngx_http_mcig_ctx_t *ctx);

/* flow control: ngx_http_mcig_queue.c */
typedef struct {
    ngx_flag_t                      enable;
    ngx_uint_t                      max;          /* waiting, all workers */
    ngx_uint_t                      max_per_priority;
    ngx_msec_t                      timeout;
    ngx_flag_t                      queue_sheddable;
    ngx_http_upstream_mcig_srv_conf_t  *pool;
    void                           *worker;       /* this worker's queue */
} ngx_http_mcig_queue_conf_t;

typedef struct {
    ngx_int_t                       priority;
    ngx_uint_t                      waiting;
} ngx_http_mcig_queue_band_t;

extern const ngx_msec_t  ngx_http_mcig_queue_bucket_ms[
                             NGX_HTTP_MCIG_QUEUE_BUCKETS - 1];

ngx_int_t ngx_http_mcig_queue_init_process(ngx_cycle_t *cycle,
    ngx_int_t slot);
void ngx_http_mcig_queue_release_slot(ngx_http_mcig_shctx_t *sh,
    ngx_slab_pool_t *shpool, ngx_uint_t slot, ngx_log_t *log);
void ngx_http_mcig_queue_wake(ngx_http_upstream_mcig_srv_conf_t *pool);
ngx_http_mcig_queue_conf_t *ngx_http_mcig_queue_conf(
    ngx_http_upstream_mcig_srv_conf_t *pool);
ngx_uint_t ngx_http_mcig_queue_bands(ngx_http_upstream_mcig_srv_conf_t *pool,
    ngx_http_mcig_queue_band_t *bands, ngx_uint_t max);

ngx_http_mcig_ctx_t *ngx_http_mcig_get_ctx(ngx_http_request_t *r);
ngx_int_t ngx_http_mcig_header_value(ngx_http_request_t *r,
    ngx_http_mcig_ctx_t *ctx, ngx_str_t *name, ngx_str_t *value);
ngx_http_mcig_ctx_t *ngx_http_mcig_create_ctx(ngx_http_request_t *r);
ngx_str_t *ngx_http_mcig_log_limited(ngx_http_mcig_log_limit_t *limit);
void ngx_http_mcig_set_error(ngx_http_request_t *r, ngx_http_mcig_ctx_t *ctx,
    ngx_http_mcig_error_e error, const char *code, const char *fmt, ...);


extern ngx_module_t  ngx_http_mcig_module;
extern ngx_module_t  ngx_http_upstream_mcig_module;
extern ngx_module_t  ngx_http_mcig_queue_module;


#endif /* _NGX_HTTP_MCIG_MODULE_H_INCLUDED_ */
