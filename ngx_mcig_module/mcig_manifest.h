/*
 * Copyright (C) ngx_mcig_module authors
 *
 * The GKE guide's Kubernetes manifests as configuration.  Pure C with
 * libyaml, run at configuration time: files are read whole, globs expanded
 * with glob(3).  Manifests compile into a model of pools that the nginx
 * side maps onto its per-pool configuration:
 *
 *     m = mcig_manifest_create();
 *     per upstream with mcig_pool:
 *         mcig_manifest_add_known_pool(m, name, len);
 *     per path or glob ("conf.d/<star>.yaml"):
 *         mcig_manifest_load_glob(m, pattern);
 *     mcig_manifest_resolve(m);
 *     per diagnostic: log d->text at emerg (error) or warn (warning)
 *     if (mcig_manifest_nerrors(m)) fail;
 *     per pool: p = mcig_manifest_pool(m, i); read p->... (const)
 *     mcig_manifest_destroy(m);
 *
 * Every value read from a manifest comes as a setting: set, the value, and
 * where it was written (file, line, column and field path), so that the
 * caller can tell a value set by a manifest from a default and name both
 * places when a directive disagrees.  Strings are NUL-terminated and live
 * as long as the model.
 *
 * What is read (apiVersion groups in brackets):
 *
 *   InferencePool (inference.networking.k8s.io/v1; the v1alpha2 shape of
 *   inference.networking.x-k8s.io with selector, targetPortNumber and
 *   extensionRef): a pool, metadata.name being the upstream name;
 *   spec.targetPorts[].number (1-8 distinct ports), selector.matchLabels
 *   and endpointPickerRef, kept for information: nginx picks by itself.
 *
 *   InferenceObjective (inference.networking.x-k8s.io/v1alpha2):
 *   spec.priority (-1000000 to 1000000 as mcig_objective; unset is 0) of
 *   the objective metadata.name in the pool spec.poolRef.name.
 *
 *   InferenceModelRewrite (v1alpha2 of inference.networking.x-k8s.io or
 *   inference.networking.k8s.io): spec.rules[] of spec.poolRef.name, each
 *   matches[].model {type: Exact, value} and targets[] {modelRewrite,
 *   weight 1-1000000}.  As upstream: weights are set on every target of a
 *   rule or on none (then they are equal); a rule without matches applies
 *   to every model; a rule matching the model exactly wins over one
 *   without matches, and among equals the first loaded wins (upstream:
 *   the oldest object).  mcig_manifest_rewrite_rule() applies this.
 *
 *   GCPBackendPolicy and HealthCheckPolicy (networking.gke.io/v1), attached
 *   by spec.targetRef {kind InferencePool or GCPInferencePoolImport, name}
 *   to the pool of that name: a GCPInferencePoolImport is the pool of that
 *   name in other clusters, the same pool here.  Policies of one pool
 *   merge; one setting set to two different values is an error, and so
 *   are CUSTOM_METRICS and IN_FLIGHT for one pool.  GCPBackendPolicy
 *   spec.default: balancingMode, trafficDuration, timeoutSec (1-3600),
 *   maxInFlightRequestsPerEndpoint (1-1000000), and the first of
 *   customMetrics[] {name, maxUtilization or maxUtilizationPercent (0-100),
 *   dryRun}; CUSTOM_METRICS needs one.  spec.default.dryRun, which the
 *   guide's IN_FLIGHT policy sets, is taken too; a custom metric's dryRun
 *   overrides it.  HealthCheckPolicy spec.default: checkIntervalSec,
 *   timeoutSec (1-300 each; the timeout at most the interval, GCP's 5 s
 *   standing for an unset one), healthyThreshold, unhealthyThreshold
 *   (1-10), each also accepted under spec.default.config (not in both
 *   places), and config {type: HTTP only, httpHealthCheck {requestPath,
 *   port, portSpecification USE_FIXED_PORT or USE_SERVING_PORT}}.
 *
 *   AutoscalingMetric (autoscaling.gke.io/v1beta1 or v1): the guide's
 *   shape, spec.selector.matchLabels, spec.endpoints[0] {port, path} and
 *   spec.metrics[] {name, exportName}, and the newer one,
 *   spec.metrics[].pod {selector, containers[] {endpoint {port, path},
 *   metrics[].gauge {name, prometheusMetricName}}}, gauge.name being the
 *   export name.  It applies to each pool whose selector holds all of its
 *   selector's labels (an empty selector: every pool); a pool without an
 *   InferencePool manifest selects app: <pool name>, the label the
 *   InferencePool Helm chart of the guide sets.  The metric named by a
 *   GCPBackendPolicy custom metric gke.named_metrics.<exportName> becomes
 *   the pool's KV-cache metric (mcig_prom_spec_parse() syntax).
 *
 *   EndpointSlice (discovery.k8s.io/v1 or v1beta1; as kubectl get -o yaml
 *   prints it, alone or in a List): members.  A slice belongs to
 *
 *     1. the pool named by its label inference.networking.k8s.io/pool-name,
 *        or else
 *     2. the pool named by its label kubernetes.io/service-name (a Service
 *        named like the pool), or else
 *     3. every pool whose selector labels are all on the slice (slices
 *        carry the labels of their Service).
 *
 *   Each endpoint's first address (as Kubernetes allows) is a member on
 *   each of the pool's targetPorts, or, for a pool without InferencePool
 *   manifest, on each of the slice's ports[].port.  conditions.ready
 *   absent is ready (Kubernetes' rule).  The region is the zone without
 *   its zone letter: europe-west3-a is in europe-west3, us-east-1a (AWS)
 *   in us-east-1; another zone is its own region.
 *
 *   Gateway and HTTPRoute (gateway.networking.k8s.io): never an error, a
 *   field of the wrong type is a warning.  Kept for information: the
 *   Gateway's listeners {name, protocol, port}, and per HTTPRoute rule,
 *   match and backendRef of kind InferencePool, GCPInferencePoolImport or
 *   InferencePoolImport, a route entry: its path match (none: PathPrefix
 *   "/"), an exact X-Gateway-Model-Name header match (body-based routing)
 *   and the pool with its weight.  Filters, hostnames and other backends
 *   are not taken.
 *
 *   GCPInferencePoolImport and InferencePoolImport: the pool name becomes
 *   known.  List and <Kind>List: each item (items of a typed list take its
 *   kind).
 *
 * Other kinds, unknown fields, and known fields the gateway does not use
 * are warnings, which name them (and the field they look like a typo of);
 * strict loads (mcig_manifest_set_strict()) make the first two errors.
 * Empty documents are skipped.  The namespace of objects (default
 * "default") tells duplicates apart but plays no part in attachment: pools
 * are nginx upstreams, named without namespace.
 *
 * Diagnostics are "file:line:column: field.path: sentence", line and
 * column 1-based from libyaml's marks.  Errors make load and resolve
 * return MCIG_MANIFEST_ERROR.  A policy that targets no known pool is an
 * error; an objective, a rewrite, an AutoscalingMetric, a slice or a route
 * that reaches no pool is a warning (Kubernetes keeps such objects inert,
 * and the guide's InferenceObjective names a pool that the guide does not
 * create).
 *
 * Paths and globs.  A pattern without *, ? or [ is a path, and an error
 * if it cannot be read; a pattern with them matching no file is a warning
 * (typos are not silent, an empty directory is not fatal), and its
 * matches are loaded in glob(3)'s sorted order, skipping what is not a
 * regular file.
 *
 * Limits, for hostile input: files up to MCIG_MANIFEST_FILE_MAX bytes,
 * MCIG_MANIFEST_DOCS_MAX documents a file, nesting up to
 * MCIG_MANIFEST_DEPTH_MAX, MCIG_MANIFEST_NODES_MAX nodes a document with
 * aliases expanded, MCIG_MANIFEST_OBJECTS_MAX objects and
 * MCIG_MANIFEST_MEMBERS_MAX members in all; YAML merge keys (<<) are not
 * supported.
 */

#ifndef MCIG_MANIFEST_H
#define MCIG_MANIFEST_H

#include <stddef.h>
#include <stdint.h>


#define MCIG_MANIFEST_FILE_MAX          (16 * 1024 * 1024)
#define MCIG_MANIFEST_DOCS_MAX          4096
#define MCIG_MANIFEST_DEPTH_MAX         64
#define MCIG_MANIFEST_NODES_MAX         1000000
#define MCIG_MANIFEST_OBJECTS_MAX       65536
#define MCIG_MANIFEST_MEMBERS_MAX       65536
#define MCIG_MANIFEST_DIAGS_MAX         1000   /* kept; more are counted */
#define MCIG_MANIFEST_TARGET_PORTS_MAX  8
#define MCIG_MANIFEST_MODEL_MAX         256    /* bytes of a model name */

/* GCP's health check defaults, for unset fields */
#define MCIG_MANIFEST_HC_INTERVAL       5
#define MCIG_MANIFEST_HC_TIMEOUT        5
#define MCIG_MANIFEST_HC_THRESHOLD      2

#define MCIG_MANIFEST_OK                0
#define MCIG_MANIFEST_ERROR             -1


typedef enum {
    MCIG_MANIFEST_SEV_ERROR = 0,
    MCIG_MANIFEST_SEV_WARNING
} mcig_manifest_severity_e;


/* values of balancing_mode */
typedef enum {
    MCIG_MANIFEST_MODE_NONE = 0,
    MCIG_MANIFEST_MODE_CUSTOM_METRICS,
    MCIG_MANIFEST_MODE_IN_FLIGHT
} mcig_manifest_mode_e;


/* values of traffic_duration */
typedef enum {
    MCIG_MANIFEST_TRAFFIC_NONE = 0,
    MCIG_MANIFEST_TRAFFIC_LONG,
    MCIG_MANIFEST_TRAFFIC_SHORT
} mcig_manifest_traffic_e;


/* where a value, an object or a diagnostic comes from */
typedef struct {
    const char                *file;     /* NULL: not from a file */
    uint32_t                   line;     /* 1-based; 0: the file as such */
    uint32_t                   column;
    const char                *field;    /* "spec.default.timeoutSec", "" */
} mcig_manifest_src_t;


typedef struct {
    int                        set;      /* written in a manifest */
    int64_t                    value;
    mcig_manifest_src_t        src;
} mcig_manifest_int_t;


typedef struct {
    int                        set;
    const char                *value;    /* NULL unless set */
    mcig_manifest_src_t        src;
} mcig_manifest_str_t;


typedef struct {
    mcig_manifest_severity_e   severity;
    mcig_manifest_src_t        src;
    const char                *message;  /* "field: sentence" */
    const char                *text;     /* "file:line:column: message" */
} mcig_manifest_diag_t;


typedef struct {
    const char                *key;
    const char                *value;
} mcig_manifest_label_t;


/* from an EndpointSlice */
typedef struct {
    const char                *address;  /* IPv4, IPv6 or a host name */
    uint32_t                   port;
    const char                *text;     /* "10.0.0.1:8000", "[::1]:8000" */
    const char                *zone;     /* NULL if the slice has none */
    const char                *region;   /* NULL if no zone */
    int                        ready;
    const char                *slice;    /* "namespace/name" */
    mcig_manifest_src_t        src;      /* the endpoint's addresses */
} mcig_manifest_member_t;


typedef struct {
    const char                *name;
    mcig_manifest_int_t        priority; /* unset: 0 */
    mcig_manifest_src_t        src;      /* metadata.name */
} mcig_manifest_objective_t;


typedef struct {
    const char                *model;
    uint32_t                   weight;   /* 1 when no target has one */
    mcig_manifest_src_t        src;
} mcig_manifest_target_t;


typedef struct {
    const char                *rewrite;  /* "namespace/name" */
    uint32_t                   nmodels;  /* 0: every model */
    const char               **models;   /* exact matches */
    uint32_t                   ntargets; /* at least 1 */
    const mcig_manifest_target_t  *targets;
    uint64_t                   total_weight;
    mcig_manifest_src_t        src;      /* the rule */
} mcig_manifest_rule_t;


/* AutoscalingMetric exportName -> Prometheus metric */
typedef struct {
    const char                *name;     /* exportName */
    const char                *metric;   /* "vllm:kv_cache_usage_perc" */
    mcig_manifest_src_t        src;      /* the metric */
} mcig_manifest_export_t;


typedef struct {
    const char                *route;    /* "namespace/name" */
    const char                *path_type; /* Exact, PathPrefix, ... */
    const char                *path;
    const char                *model;    /* X-Gateway-Model-Name, or NULL */
    const char                *pool;
    int                        pool_known;
    uint32_t                   weight;   /* backendRef weight, default 1 */
    mcig_manifest_src_t        src;      /* the backendRef */
} mcig_manifest_route_t;


typedef struct {
    const char                *gateway;  /* "namespace/name" */
    const char                *name;
    const char                *protocol;
    uint32_t                   port;
    mcig_manifest_src_t        src;
} mcig_manifest_listener_t;


typedef struct {
    const char                *name;
    unsigned                   manifest:1;   /* an InferencePool defines it */
    unsigned                   registered:1; /* add_known_pool() */
    unsigned                   imported:1;   /* a GCPInferencePoolImport */
    unsigned                   default_selector:1;  /* app: <name> */
    mcig_manifest_src_t        src;      /* the InferencePool's name */

    /* InferencePool */
    uint32_t                   ntarget_ports;
    mcig_manifest_int_t        target_ports[MCIG_MANIFEST_TARGET_PORTS_MAX];
    uint32_t                   nlabels;  /* selector.matchLabels */
    const mcig_manifest_label_t  *labels;
    mcig_manifest_str_t        picker;   /* endpointPickerRef.name */
    mcig_manifest_int_t        picker_port;
    mcig_manifest_str_t        picker_failure_mode;

    /* GCPBackendPolicy spec.default */
    mcig_manifest_int_t        balancing_mode;     /* mcig_manifest_mode_e */
    mcig_manifest_int_t        max_utilization;    /* 0-100 */
    mcig_manifest_int_t        dry_run;            /* 0 or 1 */
    mcig_manifest_int_t        max_in_flight;      /* per endpoint */
    mcig_manifest_int_t        timeout_sec;        /* 1-3600 */
    mcig_manifest_int_t        traffic_duration;   /* mcig_manifest_traffic_e */
    mcig_manifest_str_t        custom_metric;      /* its exportName */

    /* HealthCheckPolicy spec.default */
    int                        health_check;       /* a policy targets it */
    mcig_manifest_src_t        health_check_src;
    mcig_manifest_str_t        health_path;
    mcig_manifest_int_t        health_port;
    mcig_manifest_int_t        health_interval_sec;  /* 1-300 */
    mcig_manifest_int_t        health_timeout_sec;   /* 1-300, <= interval */
    mcig_manifest_int_t        healthy_threshold;    /* 1-10 */
    mcig_manifest_int_t        unhealthy_threshold;  /* 1-10 */

    /* AutoscalingMetrics that select the pool */
    mcig_manifest_int_t        metrics_port;
    mcig_manifest_str_t        metrics_path;
    mcig_manifest_str_t        kv_metric;   /* the custom metric's metric */
    uint32_t                   nexports;
    const mcig_manifest_export_t     *exports;

    uint32_t                   nmembers;
    const mcig_manifest_member_t     *members;
    uint32_t                   nobjectives;
    const mcig_manifest_objective_t  *objectives;
    uint32_t                   nrules;     /* in load order */
    const mcig_manifest_rule_t       *rules;
} mcig_manifest_pool_t;


typedef struct mcig_manifest_s  mcig_manifest_t;


/* NULL when out of memory */
mcig_manifest_t *mcig_manifest_create(void);
void mcig_manifest_destroy(mcig_manifest_t *m);

/*
 * An upstream with mcig_pool: policies may target it without manifest.
 * MCIG_MANIFEST_ERROR, and nothing is told, for an empty name, a name with
 * a NUL, or a call after mcig_manifest_resolve().
 */
int mcig_manifest_add_known_pool(mcig_manifest_t *m, const char *name,
    size_t len);

/*
 * Loading, before mcig_manifest_resolve(): MCIG_MANIFEST_OK, or
 * MCIG_MANIFEST_ERROR when this call added an error.  name names the
 * buffer in diagnostics.
 */
int mcig_manifest_load_file(mcig_manifest_t *m, const char *path);
int mcig_manifest_load_glob(mcig_manifest_t *m, const char *pattern);
int mcig_manifest_load_buffer(mcig_manifest_t *m, const char *name,
    const char *data, size_t len);

/*
 * Strict or not (the default) for the loads that follow: strict loads
 * report unknown kinds, unknown fields of the kinds read and keys that
 * are not strings as errors instead of warnings.  Fields the upstream
 * API has and the gateway does not use stay warnings, and Gateway and
 * HTTPRoute, read for information only, stay lenient.
 */
void mcig_manifest_set_strict(mcig_manifest_t *m, int strict);

/* attaches objects to pools and checks them against each other, once */
int mcig_manifest_resolve(mcig_manifest_t *m);

/* diagnostics in the order found, at most MCIG_MANIFEST_DIAGS_MAX kept */
size_t mcig_manifest_ndiags(const mcig_manifest_t *m);
const mcig_manifest_diag_t *mcig_manifest_diag(const mcig_manifest_t *m,
    size_t i);
size_t mcig_manifest_nerrors(const mcig_manifest_t *m);    /* all */
size_t mcig_manifest_nwarnings(const mcig_manifest_t *m);  /* all */
size_t mcig_manifest_ndropped(const mcig_manifest_t *m);   /* not kept */

/*
 * The model, after mcig_manifest_resolve(): pools in the order they
 * became known (add_known_pool() calls and InferencePool or
 * GCPInferencePoolImport objects as loaded).
 */
size_t mcig_manifest_npools(const mcig_manifest_t *m);
const mcig_manifest_pool_t *mcig_manifest_pool(const mcig_manifest_t *m,
    size_t i);
const mcig_manifest_pool_t *mcig_manifest_pool_find(const mcig_manifest_t *m,
    const char *name, size_t len);

size_t mcig_manifest_nroutes(const mcig_manifest_t *m);
const mcig_manifest_route_t *mcig_manifest_route(const mcig_manifest_t *m,
    size_t i);
size_t mcig_manifest_nlisteners(const mcig_manifest_t *m);
const mcig_manifest_listener_t *mcig_manifest_listener(
    const mcig_manifest_t *m, size_t i);

/* the rule that rewrites a model in a pool, NULL if none */
const mcig_manifest_rule_t *mcig_manifest_rewrite_rule(
    const mcig_manifest_pool_t *pool, const char *model, size_t len);

/* the target for a uniform 64-bit draw, by weight */
const char *mcig_manifest_rewrite_pick(const mcig_manifest_rule_t *rule,
    uint64_t draw);


#endif /* MCIG_MANIFEST_H */
