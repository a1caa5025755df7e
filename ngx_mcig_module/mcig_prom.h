/*
 * Copyright (C) ngx_mcig_module authors
 *
 * Incremental parser of the Prometheus text exposition format, for the
 * /metrics pages of model servers.  Pure C, no nginx headers, nothing
 * allocated: the page is fed in chunks cut anywhere (as a libcurl write
 * callback gets them), in one pass, and only the series that configured
 * specs name are kept and aggregated.  The caller owns a mcig_prom_set_t,
 * built once at configuration time, and a mcig_prom_t per scrape:
 *
 *     mcig_prom_set_init(&set, 0);
 *     mcig_prom_set_preset(&set, mcig_prom_preset(MCIG_PROM_VLLM));
 *
 *     mcig_prom_init(&p, &set, 1024 * 1024);
 *     per chunk: if (mcig_prom_feed(&p, data, len) != MCIG_PROM_AGAIN) fail;
 *     if (mcig_prom_finish(&p) == MCIG_PROM_OK)
 *         mcig_prom_role_value(&p, MCIG_PROM_ROLE_WAITING, &waiting) ...
 */

#ifndef MCIG_PROM_H
#define MCIG_PROM_H

#include <stddef.h>
#include <stdint.h>


#define MCIG_PROM_SPECS_MAX       16    /* specs in a set */
#define MCIG_PROM_FILTERS_MAX     4     /* label filters in a spec */
#define MCIG_PROM_NAME_MAX        128   /* metric name of a spec */
#define MCIG_PROM_LABEL_MAX       64    /* label name of a filter */
#define MCIG_PROM_LVALUE_MAX      128   /* label value of a filter, decoded */

/*
 * Longest sample line, leading blanks and LF not counted: a longer one is
 * skipped as malformed.  Comments may be of any length.
 */
#define MCIG_PROM_LINE_MAX        4096

/* longest adapter list of vllm:lora_requests_info kept, decoded */
#define MCIG_PROM_LORA_LIST_MAX   1024

/* set flag: read vllm:lora_requests_info and vllm:cache_config_info */
#define MCIG_PROM_VLLM_INFO       0x1

/* bits of mcig_prom_lora_state() */
#define MCIG_PROM_LORA_RUNNING    0x1
#define MCIG_PROM_LORA_WAITING    0x2


typedef enum {
    MCIG_PROM_OK = 0,
    MCIG_PROM_AGAIN,            /* feed more, or finish */
    MCIG_PROM_TOO_LARGE         /* over the page cap: discard the results */
} mcig_prom_rc_e;


typedef enum {
    MCIG_PROM_SPEC_OK = 0,
    MCIG_PROM_SPEC_EMPTY,
    MCIG_PROM_SPEC_BAD_NAME,
    MCIG_PROM_SPEC_NAME_TOO_LONG,
    MCIG_PROM_SPEC_BAD_LABELS,  /* syntax, or a label filtered twice */
    MCIG_PROM_SPEC_LABEL_TOO_LONG,
    MCIG_PROM_SPEC_TOO_MANY_LABELS,
    MCIG_PROM_SPEC_TOO_MANY_SPECS
} mcig_prom_spec_rc_e;


/* how the values of the series matching one spec are combined */
typedef enum {
    MCIG_PROM_SUM = 0,          /* counts: waiting requests of each engine */
    MCIG_PROM_AVG,              /* usage gauges: KV-cache usage */
    MCIG_PROM_MAX
} mcig_prom_agg_e;


/*
 * What the gateway reads a spec for.  When several specs have one role,
 * the first, in set order, that matched any series gives the value: a set
 * names a metric, then the older name of the same metric.
 */
typedef enum {
    MCIG_PROM_ROLE_NONE = 0,
    MCIG_PROM_ROLE_WAITING,
    MCIG_PROM_ROLE_RUNNING,
    MCIG_PROM_ROLE_KV_USAGE     /* 0..1 */
} mcig_prom_role_e;


typedef enum {
    MCIG_PROM_ABSENT = 0,       /* no series matched */
    MCIG_PROM_PRESENT,          /* the value aggregates the finite values */
    MCIG_PROM_NOT_FINITE        /* every value was NaN, +Inf or -Inf */
} mcig_prom_status_e;


typedef enum {
    MCIG_PROM_VLLM = 0,
    MCIG_PROM_SGLANG,
    MCIG_PROM_TRTLLM
} mcig_prom_engine_e;


typedef struct {
    uint32_t              name_len;
    uint32_t              value_len;
    char                  name[MCIG_PROM_LABEL_MAX + 1];
    char                  value[MCIG_PROM_LVALUE_MAX + 1];
} mcig_prom_filter_t;


/*
 * A series matches when its name equals the spec's name ("foo" never
 * matches "foo_bucket", "foo_sum" or "foo_created") and has every filter
 * label with exactly that value; other labels do not matter.
 */
typedef struct {
    uint32_t              name_len;
    uint32_t              nfilters;
    uint32_t              agg;          /* mcig_prom_agg_e */
    uint32_t              role;         /* mcig_prom_role_e */
    char                  name[MCIG_PROM_NAME_MAX + 1];
    mcig_prom_filter_t    filter[MCIG_PROM_FILTERS_MAX];
} mcig_prom_spec_t;


/* read-only while parsers use it */
typedef struct {
    uint32_t              nspecs;
    uint32_t              flags;        /* MCIG_PROM_VLLM_INFO */
    mcig_prom_spec_t      spec[MCIG_PROM_SPECS_MAX];
} mcig_prom_set_t;


typedef struct {
    const char           *name;         /* "vllm", "sglang", "trtllm" */
    uint32_t              flags;
    uint32_t              nspecs;
    struct {
        const char       *text;
        mcig_prom_agg_e   agg;
        mcig_prom_role_e  role;
    }                     spec[4];
} mcig_prom_preset_t;


typedef struct {
    double                value;        /* set by finish(), 0 if none */
    double                acc;          /* sum or maximum so far */
    uint32_t              series;       /* matching series, any value */
    uint32_t              nan;          /* of which NaN */
    uint32_t              inf;          /* of which +Inf or -Inf */
} mcig_prom_result_t;


/* the vllm:lora_requests_info series with the newest value, a time */
typedef struct {
    uint32_t              series;       /* series seen, 0: absent */
    uint32_t              max_lora;
    double                time;         /* its value, NaN taken as -Inf */
    uint32_t              running_len;
    uint32_t              waiting_len;
    uint8_t               running_truncated;  /* then whole names only */
    uint8_t               waiting_truncated;
    char                  running[MCIG_PROM_LORA_LIST_MAX + 1];
    char                  waiting[MCIG_PROM_LORA_LIST_MAX + 1];
} mcig_prom_lora_t;


/* the first vllm:cache_config_info series; 0 for a label absent */
typedef struct {
    uint32_t              series;
    uint32_t              block_size;
    uint64_t              num_gpu_blocks;
} mcig_prom_cache_t;


typedef struct {
    const mcig_prom_set_t  *set;
    uint64_t                page_max;
    uint64_t                offset;     /* bytes fed */
    uint32_t                state;
    uint32_t                error;      /* MCIG_PROM_TOO_LARGE, or 0 */
    uint32_t                samples;    /* well-formed lines of the specs */
    uint32_t                skipped;    /* lines of other metrics */
    uint32_t                malformed;  /* lines skipped as malformed */
    uint32_t                line_len;
    mcig_prom_result_t      result[MCIG_PROM_SPECS_MAX];  /* as set->spec */
    mcig_prom_lora_t        lora;
    mcig_prom_cache_t       cache;
    uint8_t                 line[MCIG_PROM_LINE_MAX];     /* a cut line */
} mcig_prom_t;


/*
 * Specs.  mcig_prom_set_add() parses "name" or "name{label="v",...}" (with
 * the escapes, blanks and trailing comma of the exposition format) and
 * appends it; the set is unchanged on error.
 */
void mcig_prom_set_init(mcig_prom_set_t *set, uint32_t flags);
mcig_prom_spec_rc_e mcig_prom_set_add(mcig_prom_set_t *set,
    const char *text, size_t len, mcig_prom_agg_e agg, mcig_prom_role_e role);
mcig_prom_spec_rc_e mcig_prom_spec_parse(mcig_prom_spec_t *spec,
    const char *text, size_t len);
const char *mcig_prom_spec_rc_text(mcig_prom_spec_rc_e rc);

/*
 * Built-in specs of an engine, NULL if unknown.  vLLM's are waiting and
 * running (SUM), then two KV usages (AVG): vllm:kv_cache_usage_perc, and
 * vllm:gpu_cache_usage_perc of vLLM < 0.10.2; the first present is used.
 */
const mcig_prom_preset_t *mcig_prom_preset(mcig_prom_engine_e engine);

/* appends the specs of a preset and sets its flags */
mcig_prom_spec_rc_e mcig_prom_set_preset(mcig_prom_set_t *set,
    const mcig_prom_preset_t *preset);

/*
 * The query that asks a server for the set's metrics only:
 * "name%5B%5D=a&name%5B%5D=b", each name once.  Python's prometheus_client
 * (vLLM, SGLang) honours it and renders a page of about 1 KB instead of
 * tens; other servers ignore it.  Returns the query's length without its
 * NUL; buf holds the query only if that length is under size.
 */
size_t mcig_prom_set_query(const mcig_prom_set_t *set, char *buf,
    size_t size);


/* page_max: the largest page accepted in bytes, 0 for no limit */
void mcig_prom_init(mcig_prom_t *p, const mcig_prom_set_t *set,
    uint64_t page_max);

/*
 * Feeds the next chunk: MCIG_PROM_AGAIN, or MCIG_PROM_TOO_LARGE when the
 * page goes over page_max (that chunk is not parsed, nor any after it).
 */
mcig_prom_rc_e mcig_prom_feed(mcig_prom_t *p, const uint8_t *data,
    size_t len);

/* ends the page, parsing a last line without LF: OK or TOO_LARGE */
mcig_prom_rc_e mcig_prom_finish(mcig_prom_t *p);


/* results, after finish: *value is 0 unless MCIG_PROM_PRESENT */
mcig_prom_status_e mcig_prom_value(const mcig_prom_t *p, uint32_t i,
    double *value);
mcig_prom_status_e mcig_prom_role_value(const mcig_prom_t *p,
    mcig_prom_role_e role, double *value);

/*
 * Which lists hold an adapter, MCIG_PROM_LORA_RUNNING and/or _WAITING, or
 * 0: lists are split on commas, names compared without surrounding spaces.
 */
uint32_t mcig_prom_lora_state(const mcig_prom_lora_t *lora,
    const char *name, size_t len);


#endif /* MCIG_PROM_H */
