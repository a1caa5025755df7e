/*
 * Copyright (C) ngx_mcig_module authors
 *
 * Manifests in three steps: libyaml's events build a tree per document
 * (with the limits of mcig_manifest.h enforced as it grows), each object
 * of the tree is checked and compiled into a loaded object, and
 * mcig_manifest_resolve() attaches the loaded objects to pools.  Model
 * memory comes from an arena freed whole; a document's tree from an arena
 * of its own, freed once the document is compiled.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "mcig_manifest.h"
#include "mcig_prom.h"


#define MCIG_ARENA_CHUNK      (64 * 1024)
#define MCIG_MSG_MAX          1024   /* a diagnostic's message */
#define MCIG_PATH_MAX         512    /* a field path in a message */
#define MCIG_QUOTE_MAX        64     /* bytes of a value quoted in a message */
#define MCIG_NAME_MAX         253    /* metadata.name, as Kubernetes */
#define MCIG_STR_MAX          4096   /* other strings */

#define MCIG_POOL_LABEL       "inference.networking.k8s.io/pool-name"
#define MCIG_SERVICE_LABEL    "kubernetes.io/service-name"
#define MCIG_MODEL_HEADER     "X-Gateway-Model-Name"
#define MCIG_NAMED_METRICS    "gke.named_metrics."


/* arena */

typedef struct mcig_chunk_s  mcig_chunk_t;

struct mcig_chunk_s {
    mcig_chunk_t              *next;
    size_t                     size;
    size_t                     used;
};

typedef struct {
    mcig_chunk_t              *head;
} mcig_arena_t;


/* hash of (tag, string) -> pointer */

typedef struct {
    uintptr_t                  tag;
    const char                *s;
    size_t                     len;
    uint64_t                   hash;
    void                      *value;
} mcig_hent_t;

typedef struct {
    mcig_hent_t               *e;
    size_t                     n;
    size_t                     cap;
} mcig_hash_t;


/* lists kept in arena memory, in order */

typedef struct mcig_link_s  mcig_link_t;

struct mcig_link_s {
    mcig_link_t               *next;
    void                      *data;
};

typedef struct {
    mcig_link_t               *head;
    mcig_link_t              **tail;
    uint32_t                   n;
} mcig_list_t;


/* the tree of a document */

enum {
    YN_SCALAR = 1,
    YN_SEQ,
    YN_MAP,
    YN_ALIAS
};

/* how a scalar reads, the YAML 1.2 core schema */
enum {
    YS_STR = 0,
    YS_INT,
    YS_FLOAT,
    YS_BOOL,
    YS_NULL
};

typedef struct mcig_yn_s  mcig_yn_t;

struct mcig_yn_s {
    mcig_yn_t                 *parent;
    mcig_yn_t                 *next;      /* sibling */
    mcig_yn_t                 *first;     /* of a mapping: key, value, ... */
    mcig_yn_t                 *last;
    mcig_yn_t                 *target;    /* of an alias */
    const char                *key;       /* a mapping's key or value */
    char                      *s;         /* scalar, NUL-terminated */
    uint64_t                   weight;    /* nodes, aliases expanded */
    uint32_t                   n;         /* children, or scalar bytes */
    uint32_t                   index;     /* in the parent list */
    uint32_t                   line;
    uint32_t                   col;
    uint8_t                    type;
    uint8_t                    cls;       /* YS_ of a scalar */
    uint8_t                    done;
    uint8_t                    is_key;
};


/* loaded objects */

enum {
    K_POOL = 1,
    K_OBJECTIVE,
    K_REWRITE,
    K_BACKEND,
    K_HEALTH,
    K_AMETRIC,
    K_SLICE,
    K_GATEWAY,
    K_ROUTE,
    K_IMPORT,
    K_MAX
};

typedef struct {
    int                        kind;
    const char                *kind_name;
    const char                *name;
    const char                *ns;
    const char                *id;        /* "namespace/name" */
    mcig_manifest_src_t        src;       /* metadata.name */
    uint32_t                   nlabels;
    mcig_manifest_label_t     *labels;    /* metadata.labels */
} mcig_obj_t;

typedef struct {
    mcig_obj_t                 obj;
    uint32_t                   ntarget_ports;
    mcig_manifest_int_t        target_ports[MCIG_MANIFEST_TARGET_PORTS_MAX];
    uint32_t                   nlabels;
    mcig_manifest_label_t     *labels;
    mcig_manifest_str_t        picker;
    mcig_manifest_int_t        picker_port;
    mcig_manifest_str_t        picker_failure_mode;
} mcig_opool_t;

typedef struct {
    mcig_obj_t                 obj;
    mcig_manifest_int_t        priority;
    mcig_manifest_str_t        pool;
} mcig_oobjective_t;

typedef struct {
    mcig_obj_t                 obj;
    mcig_manifest_str_t        pool;
    uint32_t                   nrules;
    mcig_manifest_rule_t      *rules;
} mcig_orewrite_t;

typedef struct {
    mcig_obj_t                 obj;
    mcig_manifest_str_t        target;
    mcig_manifest_int_t        balancing_mode;
    mcig_manifest_int_t        max_utilization;
    mcig_manifest_int_t        dry_run;
    mcig_manifest_int_t        max_in_flight;
    mcig_manifest_int_t        timeout_sec;
    mcig_manifest_int_t        traffic_duration;
    mcig_manifest_str_t        custom_metric;
} mcig_obackend_t;

typedef struct {
    mcig_obj_t                 obj;
    mcig_manifest_str_t        target;
    mcig_manifest_str_t        path;
    mcig_manifest_int_t        port;
    mcig_manifest_int_t        interval;
    mcig_manifest_int_t        timeout;
    mcig_manifest_int_t        healthy;
    mcig_manifest_int_t        unhealthy;
} mcig_ohealth_t;

typedef struct {
    uint32_t                   nlabels;
    mcig_manifest_label_t     *labels;
    mcig_manifest_src_t        src;       /* the selector, or the object */
    mcig_manifest_int_t        port;
    mcig_manifest_str_t        path;
    uint32_t                   nexports;
    mcig_manifest_export_t    *exports;
} mcig_msource_t;

typedef struct {
    mcig_obj_t                 obj;
    uint32_t                   nsources;
    mcig_msource_t            *sources;
} mcig_oametric_t;

typedef struct {
    const char                *address;
    int                        ipv6;
    int                        ready;
    const char                *zone;
    mcig_manifest_src_t        src;
} mcig_endpoint_t;

typedef struct {
    mcig_obj_t                 obj;
    uint32_t                   nendpoints;
    mcig_endpoint_t           *endpoints;
    uint32_t                   nports;
    uint32_t                  *ports;
} mcig_oslice_t;

typedef struct {
    mcig_obj_t                 obj;
    uint32_t                   nlisteners;
    mcig_manifest_listener_t  *listeners;
} mcig_ogateway_t;

typedef struct {
    mcig_obj_t                 obj;
    mcig_list_t                entries;   /* of mcig_manifest_route_t */
} mcig_oroute_t;


/* what makes a pool known, in order */
typedef struct {
    const char                *name;
    mcig_opool_t              *pool;      /* an InferencePool, or NULL */
    unsigned                   registered:1;
    unsigned                   imported:1;
} mcig_seed_t;


/* a pool as resolve() builds it */
typedef struct {
    mcig_list_t                members;
    mcig_list_t                objectives;
    mcig_list_t                rules;
    mcig_list_t                exports;
    mcig_manifest_label_t      app;       /* the default selector */
} mcig_pbuild_t;


struct mcig_manifest_s {
    mcig_arena_t               arena;
    mcig_hash_t                objects;   /* kind + id -> mcig_obj_t */
    mcig_hash_t                pool_names;  /* name -> mcig_seed_t */
    mcig_list_t                seeds;
    mcig_list_t                kinds[K_MAX];
    uint32_t                   nobjects;
    uint32_t                   nmembers;

    mcig_manifest_diag_t      *diags;
    size_t                     ndiags;
    size_t                     diags_cap;
    size_t                     nerrors;
    size_t                     nwarnings;
    size_t                     ndropped;

    int                        strict;    /* for the loads that follow */
    int                        resolved;
    int                        resolve_rc;
    int                        oom;

    mcig_manifest_pool_t      *pools;
    mcig_pbuild_t             *build;
    size_t                     npools;
    mcig_hash_t                pool_index;  /* name -> pool + 1 */
    mcig_manifest_route_t     *routes;
    size_t                     nroutes;
    mcig_manifest_listener_t  *listeners;
    size_t                     nlisteners;
};


/* the state of loading one buffer */
typedef struct {
    mcig_manifest_t           *m;
    const char                *file;
    const char                *data;
    size_t                     len;
    mcig_arena_t               arena;     /* the document's tree */
    mcig_hash_t                anchors;
    mcig_hash_t                keys;      /* (mapping, key) */
    mcig_yn_t                 *root;
    mcig_yn_t                 *open;      /* innermost open collection */
    uint32_t                   depth;
    uint32_t                   nodes;
    uint32_t                   docs;
    size_t                     errors;    /* at the start of the load */
} mcig_load_t;


/* the state of compiling one object */
typedef struct {
    mcig_manifest_t           *m;
    const char                *file;
    const char                *kind;
    unsigned                   lenient:1; /* errors are warnings */
    uint32_t                   errors;
} mcig_cc_t;


typedef struct {
    const char                *name;
    int                        kind;
    const char                *versions[3];
} mcig_kind_t;


static const mcig_kind_t  mcig_kinds[] = {
    { "InferencePool", K_POOL,
      { "inference.networking.k8s.io/v1",
        "inference.networking.x-k8s.io/v1alpha2", NULL } },
    { "InferenceObjective", K_OBJECTIVE,
      { "inference.networking.x-k8s.io/v1alpha2", NULL } },
    { "InferenceModelRewrite", K_REWRITE,
      { "inference.networking.x-k8s.io/v1alpha2",
        "inference.networking.k8s.io/v1alpha2", NULL } },
    { "GCPBackendPolicy", K_BACKEND, { "networking.gke.io/v1", NULL } },
    { "HealthCheckPolicy", K_HEALTH, { "networking.gke.io/v1", NULL } },
    { "AutoscalingMetric", K_AMETRIC,
      { "autoscaling.gke.io/v1beta1", "autoscaling.gke.io/v1", NULL } },
    { "EndpointSlice", K_SLICE,
      { "discovery.k8s.io/v1", "discovery.k8s.io/v1beta1", NULL } },
    { "Gateway", K_GATEWAY, { "gateway.networking.k8s.io/*", NULL } },
    { "HTTPRoute", K_ROUTE, { "gateway.networking.k8s.io/*", NULL } },
    { "GCPInferencePoolImport", K_IMPORT, { "networking.gke.io/*", NULL } },
    { "InferencePoolImport", K_IMPORT,
      { "inference.networking.x-k8s.io/*", NULL } },
    { NULL, 0, { NULL } }
};


/* the kinds a targetRef, poolRef or backendRef may name for a pool */
static const char  *mcig_pool_kinds[] = {
    "InferencePool", "GCPInferencePoolImport", "InferencePoolImport", NULL
};

static const char  *mcig_pool_groups[] = {
    "inference.networking.k8s.io", "inference.networking.x-k8s.io",
    "networking.gke.io", NULL
};


static const char  *mcig_top_fields[] = {
    "apiVersion", "kind", "metadata", "spec", "status", NULL
};

static const char  *mcig_meta_fields[] = {
    "name", "namespace", "labels", "annotations", "uid", "resourceVersion",
    "generation", "creationTimestamp", "deletionTimestamp",
    "deletionGracePeriodSeconds", "ownerReferences", "finalizers",
    "managedFields", "generateName", "selfLink", NULL
};

static const char  *mcig_mode_names[] = {
    "CUSTOM_METRICS", "IN_FLIGHT", NULL
};

static const char  *mcig_traffic_names[] = { "LONG", "SHORT", NULL };


static void *mcig_arena_alloc(mcig_arena_t *a, size_t size);
static void mcig_arena_free(mcig_arena_t *a);
static char *mcig_arena_strndup(mcig_arena_t *a, const char *s, size_t len);
static void **mcig_hash_find(mcig_hash_t *t, uintptr_t tag, const char *s,
    size_t len, int insert);
static void mcig_hash_free(mcig_hash_t *t);
static int mcig_list_add(mcig_arena_t *a, mcig_list_t *l, void *data);
static void *mcig_list_flatten(mcig_arena_t *a, mcig_list_t *l,
    size_t size);
static void mcig_diag(mcig_manifest_t *m, mcig_manifest_severity_e sev,
    const mcig_manifest_src_t *src, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void mcig_oom(mcig_manifest_t *m);
static void mcig_compile_document(mcig_load_t *ld, mcig_yn_t *root);


/* arena */

static void *
mcig_arena_alloc(mcig_arena_t *a, size_t size)
{
    size_t         head, csize;
    mcig_chunk_t  *c;
    char          *p;

    if (size > ((size_t) 1 << 40)) {
        return NULL;
    }

    size = (size + 15) & ~(size_t) 15;
    head = (sizeof(mcig_chunk_t) + 15) & ~(size_t) 15;

    c = a->head;

    if (c == NULL || c->size - c->used < size) {
        csize = (size > MCIG_ARENA_CHUNK / 4) ? size : MCIG_ARENA_CHUNK;

        c = malloc(head + csize);
        if (c == NULL) {
            return NULL;
        }

        c->size = csize;
        c->used = 0;

        /* a large block gets a chunk of its own behind the current one */
        if (csize == size && a->head != NULL) {
            c->next = a->head->next;
            a->head->next = c;

        } else {
            c->next = a->head;
            a->head = c;
        }
    }

    p = (char *) c + head + c->used;
    c->used += size;

    return memset(p, 0, size);
}


static void
mcig_arena_free(mcig_arena_t *a)
{
    mcig_chunk_t  *c, *next;

    for (c = a->head; c; c = next) {
        next = c->next;
        free(c);
    }

    a->head = NULL;
}


static char *
mcig_arena_strndup(mcig_arena_t *a, const char *s, size_t len)
{
    char  *p;

    p = mcig_arena_alloc(a, len + 1);
    if (p == NULL) {
        return NULL;
    }

    memcpy(p, s, len);
    p[len] = '\0';

    return p;
}


/* hash */

static uint64_t
mcig_hash_key(uintptr_t tag, const char *s, size_t len)
{
    size_t    i;
    uint64_t  h;

    h = 1469598103934665603ULL ^ ((uint64_t) tag * 0x9e3779b97f4a7c15ULL);

    for (i = 0; i < len; i++) {
        h ^= (uint8_t) s[i];
        h *= 1099511628211ULL;
    }

    return h ^ (h >> 29);
}


/*
 * The slot of the value of (tag, s): NULL if absent and not inserted, or
 * out of memory.  An inserted slot holds NULL; s must outlive the table.
 */
static void **
mcig_hash_find(mcig_hash_t *t, uintptr_t tag, const char *s, size_t len,
    int insert)
{
    size_t        i, j, cap;
    uint64_t      h;
    mcig_hent_t  *e, *ne;

    h = mcig_hash_key(tag, s, len);

    if (t->cap) {
        for (i = h & (t->cap - 1); t->e[i].s; i = (i + 1) & (t->cap - 1)) {
            e = &t->e[i];

            if (e->hash == h && e->tag == tag && e->len == len
                && memcmp(e->s, s, len) == 0)
            {
                return &e->value;
            }
        }
    }

    if (!insert) {
        return NULL;
    }

    if ((t->n + 1) * 2 > t->cap) {
        cap = t->cap ? t->cap * 2 : 64;

        ne = calloc(cap, sizeof(mcig_hent_t));
        if (ne == NULL) {
            return NULL;
        }

        for (i = 0; i < t->cap; i++) {
            if (t->e[i].s == NULL) {
                continue;
            }

            for (j = t->e[i].hash & (cap - 1); ne[j].s; j = (j + 1) & (cap - 1))
            {
                /* void */
            }

            ne[j] = t->e[i];
        }

        free(t->e);
        t->e = ne;
        t->cap = cap;
    }

    for (i = h & (t->cap - 1); t->e[i].s; i = (i + 1) & (t->cap - 1)) {
        /* void */
    }

    e = &t->e[i];
    e->tag = tag;
    e->s = s;
    e->len = len;
    e->hash = h;
    e->value = NULL;
    t->n++;

    return &e->value;
}


static void
mcig_hash_free(mcig_hash_t *t)
{
    free(t->e);
    t->e = NULL;
    t->n = 0;
    t->cap = 0;
}


/* lists */

static int
mcig_list_add(mcig_arena_t *a, mcig_list_t *l, void *data)
{
    mcig_link_t  *link;

    link = mcig_arena_alloc(a, sizeof(mcig_link_t));
    if (link == NULL) {
        return -1;
    }

    link->data = data;

    if (l->tail == NULL) {
        l->tail = &l->head;
    }

    *l->tail = link;
    l->tail = &link->next;
    l->n++;

    return 0;
}


/* copies the items, each of size bytes, into one array */
static void *
mcig_list_flatten(mcig_arena_t *a, mcig_list_t *l, size_t size)
{
    char         *p, *array;
    mcig_link_t  *link;

    if (l->n == 0) {
        return NULL;
    }

    array = mcig_arena_alloc(a, size * l->n);
    if (array == NULL) {
        return NULL;
    }

    p = array;

    for (link = l->head; link; link = link->next) {
        memcpy(p, link->data, size);
        p += size;
    }

    return array;
}


/* diagnostics */

static void
mcig_oom(mcig_manifest_t *m)
{
    static const char  text[] = "out of memory while reading manifests";

    mcig_manifest_diag_t  *d;

    m->nerrors++;

    if (m->oom) {
        return;
    }

    m->oom = 1;

    /* mcig_diag() leaves a place in the array for this */
    if (m->ndiags < m->diags_cap && m->ndiags < MCIG_MANIFEST_DIAGS_MAX) {
        d = &m->diags[m->ndiags++];
        memset(d, 0, sizeof(*d));
        d->severity = MCIG_MANIFEST_SEV_ERROR;
        d->message = text;
        d->text = text;
        d->src.field = "";

    } else {
        m->ndropped++;
    }
}


static void
mcig_diag(mcig_manifest_t *m, mcig_manifest_severity_e sev,
    const mcig_manifest_src_t *src, const char *fmt, ...)
{
    int                    n;
    char                   msg[MCIG_MSG_MAX], text[MCIG_MSG_MAX + 600];
    size_t                 cap;
    va_list                args;
    mcig_manifest_diag_t  *d;

    if (sev == MCIG_MANIFEST_SEV_ERROR) {
        m->nerrors++;

    } else {
        m->nwarnings++;
    }

    if (m->ndiags >= MCIG_MANIFEST_DIAGS_MAX) {
        m->ndropped++;
        return;
    }

    /* one place is always left, so that mcig_oom() finds it */
    if (m->ndiags + 2 > m->diags_cap) {
        cap = m->diags_cap ? m->diags_cap * 2 : 16;

        d = realloc(m->diags, cap * sizeof(mcig_manifest_diag_t));
        if (d == NULL) {
            if (sev == MCIG_MANIFEST_SEV_ERROR) {
                m->nerrors--;

            } else {
                m->nwarnings--;
            }

            mcig_oom(m);
            return;
        }

        m->diags = d;
        m->diags_cap = cap;
    }

    va_start(args, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, args);
    va_end(args);

    if (n < 0) {
        msg[0] = '\0';
    }

    if (src != NULL && src->file != NULL && src->line) {
        snprintf(text, sizeof(text), "%s:%u:%u: %s", src->file,
                 src->line, src->column, msg);

    } else if (src != NULL && src->file != NULL) {
        snprintf(text, sizeof(text), "%s: %s", src->file, msg);

    } else {
        snprintf(text, sizeof(text), "%s", msg);
    }

    d = &m->diags[m->ndiags];
    memset(d, 0, sizeof(*d));

    d->severity = sev;

    if (src != NULL) {
        d->src = *src;
    }

    if (d->src.field == NULL) {
        d->src.field = "";
    }

    d->message = mcig_arena_strndup(&m->arena, msg, strlen(msg));
    d->text = mcig_arena_strndup(&m->arena, text, strlen(text));

    if (d->message == NULL || d->text == NULL) {
        mcig_oom(m);
        return;
    }

    m->ndiags++;
}


/*
 * Copies text for a message: control bytes become '?', and text longer
 * than max bytes is cut at a character boundary and ends with "...".
 */
static size_t
mcig_clean(char *buf, size_t size, const char *s, size_t len, size_t max)
{
    size_t   i, n, cut;
    uint8_t  c;

    cut = 0;

    if (len > max) {
        len = max;

        while (len && ((uint8_t) s[len] & 0xc0) == 0x80) {
            len--;
        }

        cut = 1;
    }

    n = 0;

    for (i = 0; i < len && n + 4 < size; i++) {
        c = (uint8_t) s[i];
        buf[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char) c;
    }

    if (cut && n + 4 < size) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }

    if (size) {
        buf[n] = '\0';
    }

    return n;
}


static mcig_yn_t *
mcig_deref(mcig_yn_t *n)
{
    return (n != NULL && n->type == YN_ALIAS) ? n->target : n;
}


/* "spec.targetPorts[0].number"; "" for the root */
static void
mcig_path(const mcig_yn_t *node, char *buf, size_t size)
{
    int               i, k;
    size_t            n;
    char              part[MCIG_QUOTE_MAX + 8];
    const mcig_yn_t  *up[MCIG_MANIFEST_DEPTH_MAX * 2 + 4];

    k = 0;

    for ( /* void */ ; node && node->parent; node = node->parent) {
        if (k == (int) (sizeof(up) / sizeof(up[0]))) {
            break;
        }

        up[k++] = node;
    }

    n = 0;
    buf[0] = '\0';

    for (i = k - 1; i >= 0; i--) {
        node = up[i];

        if (node->parent->type == YN_SEQ) {
            snprintf(part, sizeof(part), "[%u]", node->index);

        } else {
            part[0] = '.';
            mcig_clean(part + 1, sizeof(part) - 1, node->key ? node->key : "?",
                       node->key ? strlen(node->key) : 1, MCIG_QUOTE_MAX);
        }

        /* no dot at the start */
        snprintf(buf + n, size - n, "%s",
                 (n == 0 && part[0] == '.') ? part + 1 : part);

        n += strlen(buf + n);

        if (n + 1 >= size) {
            break;
        }
    }
}


/* a value as a message shows it: "text", 150, true, a list, a mapping */
static void
mcig_desc(mcig_yn_t *node, char *buf, size_t size)
{
    size_t  n;

    node = mcig_deref(node);

    if (node == NULL) {
        snprintf(buf, size, "nothing");
        return;
    }

    switch (node->type) {

    case YN_SEQ:
        snprintf(buf, size, "a list");
        return;

    case YN_MAP:
        snprintf(buf, size, "a mapping");
        return;
    }

    if (node->cls == YS_STR) {
        buf[0] = '"';
        n = mcig_clean(buf + 1, size - 2, node->s, node->n, MCIG_QUOTE_MAX);
        buf[n + 1] = '"';
        buf[n + 2] = '\0';
        return;
    }

    if (node->cls == YS_NULL && node->n == 0) {
        snprintf(buf, size, "null");
        return;
    }

    mcig_clean(buf, size, node->s, node->n, MCIG_QUOTE_MAX);
}


/* the edit distance of two short strings, or 99 */
static int
mcig_distance(const char *a, const char *b)
{
    int     d[65][65];
    size_t  i, j, la, lb;
    int     x, y, z;

    la = strlen(a);
    lb = strlen(b);

    if (la > 64 || lb > 64) {
        return 99;
    }

    for (i = 0; i <= la; i++) {
        d[i][0] = (int) i;
    }

    for (j = 0; j <= lb; j++) {
        d[0][j] = (int) j;
    }

    for (i = 1; i <= la; i++) {
        for (j = 1; j <= lb; j++) {
            x = d[i - 1][j] + 1;
            y = d[i][j - 1] + 1;
            z = d[i - 1][j - 1]
                + ((a[i - 1] | 0x20) == (b[j - 1] | 0x20) ? 0 : 1);

            d[i][j] = x < y ? (x < z ? x : z) : (y < z ? y : z);
        }
    }

    return d[la][lb];
}


/* the name nearest to s, if it is a plausible typo of it */
static const char *
mcig_suggest(const char *s, const char *const *names)
{
    int          best, d;
    size_t       len;
    const char  *found;

    len = strlen(s);
    best = (len < 4) ? 1 : (len < 8) ? 2 : 3;
    found = NULL;

    for ( /* void */ ; names && *names; names++) {
        d = mcig_distance(s, *names);

        if (d <= best && (found == NULL || d < best)) {
            best = d;
            found = *names;
        }
    }

    return found;
}


/* the tree */

static int
mcig_is_int(const char *s, size_t n)
{
    size_t  i, start;

    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
        for (i = 2; i < n; i++) {
            if (s[1] == 'x' ? !(strchr("0123456789abcdefABCDEF", s[i])
                                && s[i])
                            : !(s[i] >= '0' && s[i] <= '7'))
            {
                return 0;
            }
        }

        return 1;
    }

    start = (n && (s[0] == '-' || s[0] == '+')) ? 1 : 0;

    if (start == n) {
        return 0;
    }

    for (i = start; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }

    return 1;
}


static int
mcig_is_float(const char *s, size_t n)
{
    size_t  i, digits;

    i = (n && (s[0] == '-' || s[0] == '+')) ? 1 : 0;

    if (n - i == 4 && s[i] == '.'
        && (memcmp(s + i, ".inf", 4) == 0 || memcmp(s + i, ".Inf", 4) == 0
            || memcmp(s + i, ".INF", 4) == 0))
    {
        return 1;
    }

    if (i == 0 && n == 4
        && (memcmp(s, ".nan", 4) == 0 || memcmp(s, ".NaN", 4) == 0
            || memcmp(s, ".NAN", 4) == 0))
    {
        return 1;
    }

    digits = 0;

    while (i < n && s[i] >= '0' && s[i] <= '9') {
        i++;
        digits++;
    }

    if (i < n && s[i] == '.') {
        i++;

        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
            digits++;
        }
    }

    if (digits == 0) {
        return 0;
    }

    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;

        if (i < n && (s[i] == '-' || s[i] == '+')) {
            i++;
        }

        if (i == n) {
            return 0;
        }

        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
    }

    return i == n;
}


static int
mcig_scalar_class(const char *s, size_t n)
{
    static const char  *nulls[] = { "~", "null", "Null", "NULL", NULL };
    static const char  *bools[] = { "true", "True", "TRUE", "false",
                                    "False", "FALSE", NULL };
    const char        **p;

    if (n == 0) {
        return YS_NULL;
    }

    for (p = nulls; *p; p++) {
        if (strlen(*p) == n && memcmp(*p, s, n) == 0) {
            return YS_NULL;
        }
    }

    for (p = bools; *p; p++) {
        if (strlen(*p) == n && memcmp(*p, s, n) == 0) {
            return YS_BOOL;
        }
    }

    if (mcig_is_int(s, n)) {
        return YS_INT;
    }

    if (mcig_is_float(s, n)) {
        return YS_FLOAT;
    }

    return YS_STR;
}


static mcig_manifest_src_t
mcig_src_at(mcig_load_t *ld, size_t line, size_t col)
{
    mcig_manifest_src_t  src;

    src.file = ld->file;
    src.line = (uint32_t) line + 1;
    src.column = (uint32_t) col + 1;
    src.field = "";

    return src;
}


/* adds a node under the open collection: 0, or -1 with the error told */
static int
mcig_tree_add(mcig_load_t *ld, mcig_yn_t *node, const yaml_mark_t *mark)
{
    char                 path[MCIG_PATH_MAX];
    void               **slot;
    mcig_yn_t           *parent, *prev, *key, *first;
    mcig_manifest_src_t  src;

    node->line = (uint32_t) mark->line;
    node->col = (uint32_t) mark->column;

    if (++ld->nodes > MCIG_MANIFEST_NODES_MAX) {
        src = mcig_src_at(ld, mark->line, mark->column);
        mcig_diag(ld->m, MCIG_MANIFEST_SEV_ERROR, &src,
                  "the document has more than %d nodes",
                  MCIG_MANIFEST_NODES_MAX);
        return -1;
    }

    parent = ld->open;

    if (parent == NULL) {
        ld->root = node;
        return 0;
    }

    prev = parent->last;

    node->parent = parent;
    node->index = parent->n;

    if (prev) {
        prev->next = node;

    } else {
        parent->first = node;
    }

    parent->last = node;
    parent->n++;

    if (parent->type != YN_MAP) {
        return 0;
    }

    if (node->index % 2) {
        /* the value of the key before it */
        node->key = prev->key;
        return 0;
    }

    /* a key: only scalar keys are looked up, and they must be unique */
    node->is_key = 1;
    key = mcig_deref(node);

    if (key == NULL || key->type != YN_SCALAR) {
        node->key = "?";
        return 0;
    }

    node->key = key->s;

    slot = mcig_hash_find(&ld->keys, (uintptr_t) parent, key->s, key->n, 1);
    if (slot == NULL) {
        mcig_oom(ld->m);
        return -1;
    }

    if (*slot != NULL) {
        first = *slot;
        src = mcig_src_at(ld, node->line, node->col);
        mcig_path(node, path, sizeof(path));
        mcig_diag(ld->m, MCIG_MANIFEST_SEV_ERROR, &src,
                  "%s: the key is repeated in its mapping; the first is at "
                  "line %u, column %u", path, first->line + 1,
                  first->col + 1);
        return -1;
    }

    *slot = node;

    return 0;
}


static void
mcig_yaml_error(mcig_load_t *ld, yaml_parser_t *parser)
{
    size_t               i, line, col;
    mcig_manifest_src_t  src;

    switch (parser->error) {

    case YAML_MEMORY_ERROR:
        mcig_oom(ld->m);
        return;

    case YAML_READER_ERROR:
        line = 0;
        col = 0;

        for (i = 0; i < parser->problem_offset && i < ld->len; i++) {
            if (ld->data[i] == '\n') {
                line++;
                col = 0;

            } else {
                col++;
            }
        }

        src = mcig_src_at(ld, line, col);
        mcig_diag(ld->m, MCIG_MANIFEST_SEV_ERROR, &src,
                  "malformed YAML: %s", parser->problem ? parser->problem
                                                        : "unreadable");
        return;

    default:
        src = mcig_src_at(ld, parser->problem_mark.line,
                          parser->problem_mark.column);

        if (parser->context) {
            mcig_diag(ld->m, MCIG_MANIFEST_SEV_ERROR, &src,
                      "malformed YAML: %s (%s at line %zu, column %zu)",
                      parser->problem ? parser->problem : "error",
                      parser->context, parser->context_mark.line + 1,
                      parser->context_mark.column + 1);

        } else {
            mcig_diag(ld->m, MCIG_MANIFEST_SEV_ERROR, &src,
                      "malformed YAML: %s",
                      parser->problem ? parser->problem : "error");
        }

        return;
    }
}


static void
mcig_doc_reset(mcig_load_t *ld)
{
    mcig_arena_free(&ld->arena);
    mcig_hash_free(&ld->anchors);
    mcig_hash_free(&ld->keys);

    ld->root = NULL;
    ld->open = NULL;
    ld->depth = 0;
    ld->nodes = 0;
}


static int
mcig_anchor(mcig_load_t *ld, const yaml_char_t *anchor, mcig_yn_t *node)
{
    char   *name;
    void  **slot;

    if (anchor == NULL) {
        return 0;
    }

    name = mcig_arena_strndup(&ld->arena, (const char *) anchor,
                              strlen((const char *) anchor));
    if (name == NULL) {
        mcig_oom(ld->m);
        return -1;
    }

    slot = mcig_hash_find(&ld->anchors, 0, name, strlen(name), 1);
    if (slot == NULL) {
        mcig_oom(ld->m);
        return -1;
    }

    /* an anchor defined again names the later node, as YAML says */
    *slot = node;

    return 0;
}


static int
mcig_scalar_node(mcig_load_t *ld, yaml_event_t *ev, mcig_yn_t *node)
{
    const char  *tag;
    size_t       len;

    len = ev->data.scalar.length;

    node->type = YN_SCALAR;
    node->n = (uint32_t) len;
    node->weight = 1;
    node->done = 1;
    node->s = mcig_arena_strndup(&ld->arena,
                                 (const char *) ev->data.scalar.value, len);
    if (node->s == NULL) {
        mcig_oom(ld->m);
        return -1;
    }

    tag = (const char *) ev->data.scalar.tag;

    if (tag != NULL && strcmp(tag, "!") != 0) {
        if (strcmp(tag, "tag:yaml.org,2002:str") == 0) {
            node->cls = YS_STR;

        } else if (strncmp(tag, "tag:yaml.org,2002:", 18) == 0) {
            node->cls = (uint8_t) mcig_scalar_class(node->s, len);

        } else {
            node->cls = (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
                        ? (uint8_t) mcig_scalar_class(node->s, len) : YS_STR;
        }

    } else if (tag == NULL
               && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
    {
        node->cls = (uint8_t) mcig_scalar_class(node->s, len);

    } else {
        node->cls = YS_STR;
    }

    return 0;
}


/* closes the open collection and sums what it holds, aliases expanded */
static int
mcig_close(mcig_load_t *ld)
{
    mcig_yn_t           *node, *c;
    uint64_t             w;
    mcig_manifest_src_t  src;

    node = ld->open;

    if (node == NULL) {
        return 0;
    }

    w = 1;

    for (c = node->first; c; c = c->next) {
        w += c->weight;

        if (w > MCIG_MANIFEST_NODES_MAX) {
            src = mcig_src_at(ld, node->line, node->col);
            mcig_diag(ld->m, MCIG_MANIFEST_SEV_ERROR, &src,
                      "aliases expand the document to more than %d nodes",
                      MCIG_MANIFEST_NODES_MAX);
            return -1;
        }
    }

    node->weight = w;
    node->done = 1;
    ld->open = node->parent;
    ld->depth--;

    return 0;
}


static int
mcig_event(mcig_load_t *ld, yaml_event_t *ev, int *done)
{
    void                 **slot;
    const char            *anchor;
    mcig_yn_t             *node, *target;
    const yaml_char_t     *aname;
    mcig_manifest_src_t    src;

    switch (ev->type) {

    case YAML_STREAM_END_EVENT:
        *done = 1;
        return 0;

    case YAML_DOCUMENT_START_EVENT:
        if (++ld->docs > MCIG_MANIFEST_DOCS_MAX) {
            src = mcig_src_at(ld, ev->start_mark.line, ev->start_mark.column);
            mcig_diag(ld->m, MCIG_MANIFEST_SEV_ERROR, &src,
                      "the file has more than %d documents",
                      MCIG_MANIFEST_DOCS_MAX);
            return -1;
        }

        mcig_doc_reset(ld);
        return 0;

    case YAML_DOCUMENT_END_EVENT:
        if (ld->root != NULL) {
            mcig_compile_document(ld, ld->root);
        }

        mcig_doc_reset(ld);
        return 0;

    case YAML_SCALAR_EVENT:
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
    case YAML_ALIAS_EVENT:
        break;

    default:
        /* the ends of collections */
        return mcig_close(ld);
    }

    node = mcig_arena_alloc(&ld->arena, sizeof(mcig_yn_t));
    if (node == NULL) {
        mcig_oom(ld->m);
        return -1;
    }

    aname = NULL;

    switch (ev->type) {

    case YAML_SCALAR_EVENT:
        if (mcig_scalar_node(ld, ev, node) != 0) {
            return -1;
        }

        aname = ev->data.scalar.anchor;
        break;

    case YAML_ALIAS_EVENT:
        anchor = (const char *) ev->data.alias.anchor;
        slot = mcig_hash_find(&ld->anchors, 0, anchor, strlen(anchor), 0);
        target = slot ? *slot : NULL;
        src = mcig_src_at(ld, ev->start_mark.line, ev->start_mark.column);

        if (target == NULL) {
            mcig_diag(ld->m, MCIG_MANIFEST_SEV_ERROR, &src,
                      "malformed YAML: the alias *%.64s names no anchor",
                      anchor);
            return -1;
        }

        if (!target->done) {
            mcig_diag(ld->m, MCIG_MANIFEST_SEV_ERROR, &src,
                      "malformed YAML: the alias *%.64s is inside the node "
                      "it names", anchor);
            return -1;
        }

        node->type = YN_ALIAS;
        node->target = target;
        node->weight = target->weight;
        node->done = 1;
        break;

    case YAML_SEQUENCE_START_EVENT:
        node->type = YN_SEQ;
        aname = ev->data.sequence_start.anchor;
        break;

    default: /* YAML_MAPPING_START_EVENT */
        node->type = YN_MAP;
        aname = ev->data.mapping_start.anchor;
        break;
    }

    if (mcig_tree_add(ld, node, &ev->start_mark) != 0) {
        return -1;
    }

    if (mcig_anchor(ld, aname, node) != 0) {
        return -1;
    }

    if (node->type == YN_SEQ || node->type == YN_MAP) {
        if (++ld->depth > MCIG_MANIFEST_DEPTH_MAX) {
            src = mcig_src_at(ld, ev->start_mark.line, ev->start_mark.column);
            mcig_diag(ld->m, MCIG_MANIFEST_SEV_ERROR, &src,
                      "lists and mappings are nested deeper than %d levels",
                      MCIG_MANIFEST_DEPTH_MAX);
            return -1;
        }

        ld->open = node;
    }

    return 0;
}


static int
mcig_parse(mcig_load_t *ld)
{
    int            rc, done;
    yaml_event_t   ev;
    yaml_parser_t  parser;

    if (!yaml_parser_initialize(&parser)) {
        mcig_oom(ld->m);
        return -1;
    }

    yaml_parser_set_input_string(&parser, (const unsigned char *) ld->data,
                                 ld->len);

    rc = 0;
    done = 0;

    while (!done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            mcig_yaml_error(ld, &parser);
            rc = -1;
            break;
        }

        rc = mcig_event(ld, &ev, &done);

        yaml_event_delete(&ev);

        if (rc != 0) {
            break;
        }
    }

    yaml_parser_delete(&parser);
    mcig_doc_reset(ld);

    return rc;
}


/* compiling: reports */

static void
mcig_report(mcig_cc_t *cc, int warning, mcig_yn_t *at, const char *key,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * Reports "path: sentence" at a node; key names a field of the node that
 * is missing or unknown: "path.key: sentence".  In lenient objects every
 * error is a warning.
 */
static void
mcig_report(mcig_cc_t *cc, int warning, mcig_yn_t *at, const char *key,
    const char *fmt, ...)
{
    size_t               n;
    char                 path[MCIG_PATH_MAX], msg[MCIG_MSG_MAX];
    va_list              args;
    mcig_manifest_src_t  src;

    mcig_path(at, path, sizeof(path));

    if (key != NULL) {
        n = strlen(path);

        if (n && n + 1 < sizeof(path)) {
            path[n++] = '.';
            path[n] = '\0';
        }

        mcig_clean(path + n, sizeof(path) - n, key, strlen(key),
                   MCIG_QUOTE_MAX);
    }

    va_start(args, fmt);
    vsnprintf(msg, sizeof(msg), fmt, args);
    va_end(args);

    src.file = cc->file;
    src.line = at->line + 1;
    src.column = at->col + 1;
    src.field = mcig_arena_strndup(&cc->m->arena, path, strlen(path));

    if (src.field == NULL) {
        src.field = "";
    }

    if (cc->lenient) {
        warning = 1;
    }

    if (!warning) {
        cc->errors++;
    }

    mcig_diag(cc->m, warning ? MCIG_MANIFEST_SEV_WARNING
                             : MCIG_MANIFEST_SEV_ERROR,
              &src, "%s%s%s", path, path[0] ? ": " : "", msg);
}


static mcig_manifest_src_t
mcig_src(mcig_cc_t *cc, mcig_yn_t *at)
{
    char                 path[MCIG_PATH_MAX];
    mcig_manifest_src_t  src;

    mcig_path(at, path, sizeof(path));

    src.file = cc->file;
    src.line = at->line + 1;
    src.column = at->col + 1;
    src.field = mcig_arena_strndup(&cc->m->arena, path, strlen(path));

    if (src.field == NULL) {
        mcig_oom(cc->m);
        cc->errors++;
        src.field = "";
    }

    return src;
}


static int
mcig_in(const char *s, size_t len, const char *const *names)
{
    int  i;

    for (i = 0; names && names[i]; i++) {
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0) {
            return i;
        }
    }

    return -1;
}


/*
 * Warns of the fields of a mapping that are not known, or known to GKE
 * but not used here.  Strict loads make unknown ones errors: a field
 * known and not used is in the upstream API, so it stays a warning.
 */
static void
mcig_fields(mcig_cc_t *cc, mcig_yn_t *map, const char *const *known,
    const char *const *unused)
{
    char         name[MCIG_QUOTE_MAX + 8];
    mcig_yn_t   *k, *key;
    const char  *near;

    map = mcig_deref(map);

    if (map == NULL || map->type != YN_MAP || cc->lenient) {
        return;
    }

    for (k = map->first; k; k = k->next ? k->next->next : NULL) {
        key = mcig_deref(k);

        if (key->type != YN_SCALAR) {
            mcig_report(cc, !cc->m->strict, k, NULL, "a key that is %s is %s",
                        key->type == YN_SEQ ? "a list" : "a mapping",
                        cc->m->strict ? "not a field; strict manifests have "
                                        "only the fields the gateway knows"
                                      : "ignored");
            continue;
        }

        if (mcig_in(key->s, key->n, known) >= 0) {
            continue;
        }

        if (mcig_in(key->s, key->n, unused) >= 0) {
            mcig_report(cc, 1, k, NULL,
                        "this field is not used by the gateway and ignored");
            continue;
        }

        mcig_clean(name, sizeof(name), key->s, key->n, MCIG_QUOTE_MAX);
        near = (strlen(name) == key->n) ? mcig_suggest(name, known) : NULL;

        mcig_report(cc, !cc->m->strict, k, NULL,
                    "this field is unknown to %s%s%s%s%s%s", cc->kind,
                    cc->m->strict ? "" : " and ignored",
                    near ? " (did you mean " : "", near ? near : "",
                    near ? "?)" : "",
                    cc->m->strict ? "; strict manifests have only the fields "
                                    "the gateway knows" : "");
    }
}


/* the value of a field, NULL when absent or null */
static mcig_yn_t *
mcig_get(mcig_yn_t *map, const char *key)
{
    size_t      len;
    mcig_yn_t  *k, *kn, *v;

    map = mcig_deref(map);

    if (map == NULL || map->type != YN_MAP) {
        return NULL;
    }

    len = strlen(key);

    for (k = map->first; k && k->next; k = k->next->next) {
        kn = mcig_deref(k);

        if (kn->type == YN_SCALAR && kn->n == len
            && memcmp(kn->s, key, len) == 0)
        {
            v = mcig_deref(k->next);

            if (v->type == YN_SCALAR && v->cls == YS_NULL) {
                return NULL;
            }

            return v;
        }
    }

    return NULL;
}


static const char *
mcig_type_name(int type)
{
    return (type == YN_MAP) ? "a mapping" : (type == YN_SEQ) ? "a list"
                                                             : "a string";
}


/* a field that must be a mapping or a list; NULL if absent or wrong */
static mcig_yn_t *
mcig_want(mcig_cc_t *cc, mcig_yn_t *map, const char *key, int type,
    int required)
{
    char        desc[MCIG_QUOTE_MAX + 16];
    mcig_yn_t  *v;

    v = mcig_get(map, key);

    if (v == NULL) {
        /* without its parent, a field is not missing on its own */
        if (required && mcig_deref(map) != NULL) {
            mcig_report(cc, 0, mcig_deref(map), key,
                        "this required field is missing");
        }

        return NULL;
    }

    if (v->type != type) {
        mcig_desc(v, desc, sizeof(desc));
        mcig_report(cc, 0, v, NULL, "%s is not %s", desc,
                    mcig_type_name(type));
        return NULL;
    }

    return v;
}


static int
mcig_parse_int(const char *s, size_t n, int64_t *value)
{
    int       neg, base;
    size_t    i;
    uint64_t  v, d, limit;

    neg = 0;
    i = 0;
    base = 10;

    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
        base = (s[1] == 'x') ? 16 : 8;
        i = 2;

    } else if (n && (s[0] == '-' || s[0] == '+')) {
        neg = (s[0] == '-');
        i = 1;
    }

    limit = neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;
    v = 0;

    for ( /* void */ ; i < n; i++) {
        d = (s[i] >= '0' && s[i] <= '9') ? (uint64_t) (s[i] - '0')
            : (uint64_t) ((s[i] | 0x20) - 'a' + 10);

        if (v > (limit - d) / (uint64_t) base) {
            return -1;
        }

        v = v * (uint64_t) base + d;
    }

    *value = neg ? (int64_t) (0 - v) : (int64_t) v;

    return 0;
}


static void
mcig_range_text(char *buf, size_t size, int64_t min, int64_t max)
{
    if (min < 0) {
        snprintf(buf, size, "%lld to %lld", (long long) min,
                 (long long) max);

    } else {
        snprintf(buf, size, "%lld-%lld", (long long) min, (long long) max);
    }
}


/* 1: read, 0: absent, -1: wrong */
static int
mcig_as_int(mcig_cc_t *cc, mcig_yn_t *v, int64_t min, int64_t max,
    mcig_manifest_int_t *out)
{
    char     desc[MCIG_QUOTE_MAX + 16], range[64];
    int64_t  n;

    v = mcig_deref(v);

    if (v == NULL || (v->type == YN_SCALAR && v->cls == YS_NULL)) {
        return 0;
    }

    if (v->type != YN_SCALAR || v->cls != YS_INT) {
        mcig_desc(v, desc, sizeof(desc));
        mcig_report(cc, 0, v, NULL, "%s is not an integer", desc);
        return -1;
    }

    if (mcig_parse_int(v->s, v->n, &n) != 0 || n < min || n > max) {
        mcig_desc(v, desc, sizeof(desc));
        mcig_range_text(range, sizeof(range), min, max);
        mcig_report(cc, 0, v, NULL, "%s is out of range (%s)", desc, range);
        return -1;
    }

    out->set = 1;
    out->value = n;
    out->src = mcig_src(cc, v);

    return 1;
}


static int
mcig_int(mcig_cc_t *cc, mcig_yn_t *map, const char *key, int required,
    int64_t min, int64_t max, mcig_manifest_int_t *out)
{
    mcig_yn_t  *v;

    v = mcig_get(map, key);

    if (v == NULL) {
        /* without its parent, a field is not missing on its own */
        if (required && mcig_deref(map) != NULL) {
            mcig_report(cc, 0, mcig_deref(map), key,
                        "this required field is missing");
            return -1;
        }

        return 0;
    }

    return mcig_as_int(cc, v, min, max, out);
}


/* a string of 1 to max bytes (0 to max if empty_ok), without NUL */
static int
mcig_as_str(mcig_cc_t *cc, mcig_yn_t *v, size_t max, int empty_ok,
    mcig_manifest_str_t *out)
{
    char  desc[MCIG_QUOTE_MAX + 16];

    v = mcig_deref(v);

    if (v == NULL || (v->type == YN_SCALAR && v->cls == YS_NULL)) {
        return 0;
    }

    mcig_desc(v, desc, sizeof(desc));

    if (v->type != YN_SCALAR || v->cls != YS_STR) {
        mcig_report(cc, 0, v, NULL, "%s is not a string", desc);
        return -1;
    }

    if (v->n == 0 && !empty_ok) {
        mcig_report(cc, 0, v, NULL, "the value is empty");
        return -1;
    }

    if (memchr(v->s, '\0', v->n) != NULL) {
        mcig_report(cc, 0, v, NULL, "%s holds a NUL character", desc);
        return -1;
    }

    if (v->n > max) {
        mcig_report(cc, 0, v, NULL, "%s is longer than %zu bytes", desc,
                    max);
        return -1;
    }

    out->set = 1;
    out->value = mcig_arena_strndup(&cc->m->arena, v->s, v->n);
    out->src = mcig_src(cc, v);

    if (out->value == NULL) {
        mcig_oom(cc->m);
        cc->errors++;
        out->set = 0;
        return -1;
    }

    return 1;
}


static int
mcig_str(mcig_cc_t *cc, mcig_yn_t *map, const char *key, int required,
    size_t max, mcig_manifest_str_t *out)
{
    mcig_yn_t  *v;

    v = mcig_get(map, key);

    if (v == NULL) {
        /* without its parent, a field is not missing on its own */
        if (required && mcig_deref(map) != NULL) {
            mcig_report(cc, 0, mcig_deref(map), key,
                        "this required field is missing");
            return -1;
        }

        return 0;
    }

    return mcig_as_str(cc, v, max, 0, out);
}


static int
mcig_bool(mcig_cc_t *cc, mcig_yn_t *map, const char *key,
    mcig_manifest_int_t *out)
{
    char        desc[MCIG_QUOTE_MAX + 16];
    mcig_yn_t  *v;

    v = mcig_get(map, key);

    if (v == NULL) {
        return 0;
    }

    if (v->type != YN_SCALAR || v->cls != YS_BOOL) {
        mcig_desc(v, desc, sizeof(desc));
        mcig_report(cc, 0, v, NULL, "%s is not a boolean (true or false)",
                    desc);
        return -1;
    }

    out->set = 1;
    out->value = (v->s[0] | 0x20) == 't';
    out->src = mcig_src(cc, v);

    return 1;
}


/* one of names: the value is its index + 1 */
static int
mcig_enum(mcig_cc_t *cc, mcig_yn_t *map, const char *key, int required,
    const char *const *names, mcig_manifest_int_t *out)
{
    int         i;
    char        desc[MCIG_QUOTE_MAX + 16], list[256];
    size_t      n;
    mcig_yn_t  *v;

    v = mcig_get(map, key);

    if (v == NULL) {
        /* without its parent, a field is not missing on its own */
        if (required && mcig_deref(map) != NULL) {
            mcig_report(cc, 0, mcig_deref(map), key,
                        "this required field is missing");
            return -1;
        }

        return 0;
    }

    i = (v->type == YN_SCALAR && v->cls == YS_STR)
        ? mcig_in(v->s, v->n, names) : -1;

    if (i < 0) {
        mcig_desc(v, desc, sizeof(desc));
        n = 0;
        list[0] = '\0';

        for (i = 0; names[i] && n < sizeof(list); i++) {
            n += snprintf(list + n, sizeof(list) - n, "%s%s",
                          i ? (names[i + 1] ? ", " : " or ") : "", names[i]);
        }

        mcig_report(cc, 0, v, NULL, "%s is not %s%s", desc,
                    names[1] ? "one of " : "", list);
        return -1;
    }

    out->set = 1;
    out->value = i + 1;
    out->src = mcig_src(cc, v);

    return 1;
}


/* a name as Kubernetes wants most names: a DNS subdomain (RFC 1123) */
static int
mcig_dns_name(const char *s, size_t n)
{
    size_t  i;

    if (n == 0 || n > MCIG_NAME_MAX) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')
              || ((s[i] == '-' || s[i] == '.') && i > 0 && i < n - 1)))
        {
            return 0;
        }
    }

    return 1;
}


static int
mcig_name(mcig_cc_t *cc, mcig_yn_t *map, const char *key, int required,
    mcig_manifest_str_t *out)
{
    char  desc[MCIG_QUOTE_MAX + 16];
    int   rc;

    rc = mcig_str(cc, map, key, required, MCIG_NAME_MAX, out);

    if (rc == 1 && !mcig_dns_name(out->value, strlen(out->value))) {
        mcig_desc(mcig_get(map, key), desc, sizeof(desc));
        mcig_report(cc, 0, mcig_get(map, key), NULL,
                    "%s is not a valid name (lowercase letters, digits, "
                    "'-' and '.', starting and ending with a letter or "
                    "digit)", desc);
        out->set = 0;
        return -1;
    }

    return rc;
}


/* a mapping of strings to strings */
static int
mcig_labels(mcig_cc_t *cc, mcig_yn_t *map, uint32_t *nlabels,
    mcig_manifest_label_t **labels)
{
    uint32_t                i;
    mcig_yn_t              *k;
    mcig_manifest_str_t     key, value;
    mcig_manifest_label_t  *l;

    map = mcig_deref(map);
    *nlabels = 0;
    *labels = NULL;

    if (map == NULL || map->n == 0) {
        return 0;
    }

    l = mcig_arena_alloc(&cc->m->arena,
                         sizeof(mcig_manifest_label_t) * (map->n / 2));
    if (l == NULL) {
        mcig_oom(cc->m);
        cc->errors++;
        return -1;
    }

    i = 0;

    for (k = map->first; k && k->next; k = k->next->next) {
        memset(&key, 0, sizeof(key));
        memset(&value, 0, sizeof(value));

        if (mcig_as_str(cc, k, MCIG_NAME_MAX, 0, &key) != 1) {
            continue;
        }

        if (mcig_as_str(cc, k->next, MCIG_NAME_MAX, 1, &value) < 0) {
            continue;
        }

        l[i].key = key.value;
        l[i].value = value.set ? value.value : "";
        i++;
    }

    *nlabels = i;
    *labels = l;

    return 0;
}


/* compiling: objects */

static mcig_seed_t *
mcig_seed(mcig_manifest_t *m, const char *name, size_t len)
{
    void         **slot;
    mcig_seed_t   *seed;

    slot = mcig_hash_find(&m->pool_names, 0, name, len, 0);

    if (slot != NULL) {
        return *slot;
    }

    seed = mcig_arena_alloc(&m->arena, sizeof(mcig_seed_t));
    if (seed == NULL) {
        return NULL;
    }

    seed->name = mcig_arena_strndup(&m->arena, name, len);
    if (seed->name == NULL) {
        return NULL;
    }

    slot = mcig_hash_find(&m->pool_names, 0, seed->name, len, 1);
    if (slot == NULL || mcig_list_add(&m->arena, &m->seeds, seed) != 0) {
        return NULL;
    }

    *slot = seed;

    return seed;
}


/*
 * metadata: name, namespace, labels; and the object's uniqueness by kind,
 * namespace and name.  0, or -1 if the object is to be dropped.
 */
static int
mcig_meta(mcig_cc_t *cc, mcig_yn_t *root, int kind_index, mcig_obj_t *obj)
{
    char                 id[MCIG_NAME_MAX * 2 + 2];
    void               **slot;
    size_t               len;
    mcig_yn_t           *meta;
    mcig_obj_t          *first;
    mcig_manifest_str_t  name, ns;

    memset(&name, 0, sizeof(name));
    memset(&ns, 0, sizeof(ns));

    meta = mcig_want(cc, root, "metadata", YN_MAP, 1);
    if (meta == NULL) {
        return -1;
    }

    mcig_fields(cc, meta, mcig_meta_fields, NULL);

    if (mcig_name(cc, meta, "name", 1, &name) != 1) {
        return -1;
    }

    if (mcig_name(cc, meta, "namespace", 0, &ns) < 0) {
        return -1;
    }

    if (mcig_get(meta, "labels") != NULL) {
        if (mcig_want(cc, meta, "labels", YN_MAP, 0) == NULL
            || mcig_labels(cc, mcig_get(meta, "labels"), &obj->nlabels,
                           &obj->labels) != 0)
        {
            return -1;
        }
    }

    obj->kind = mcig_kinds[kind_index].kind;
    obj->kind_name = mcig_kinds[kind_index].name;
    obj->name = name.value;
    obj->ns = ns.set ? ns.value : "default";
    obj->src = name.src;

    len = (size_t) snprintf(id, sizeof(id), "%s/%s", obj->ns, obj->name);

    obj->id = mcig_arena_strndup(&cc->m->arena, id, len);
    if (obj->id == NULL) {
        mcig_oom(cc->m);
        return -1;
    }

    slot = mcig_hash_find(&cc->m->objects, (uintptr_t) kind_index + 1,
                          obj->id, len, 1);
    if (slot == NULL) {
        mcig_oom(cc->m);
        return -1;
    }

    if (*slot != NULL) {
        first = *slot;
        mcig_report(cc, 0, mcig_get(meta, "name"), NULL,
                    "%s %s is defined twice; the first is at %s:%u:%u",
                    obj->kind_name, obj->id, first->src.file,
                    first->src.line, first->src.column);
        return -1;
    }

    *slot = obj;

    return 0;
}


static int
mcig_api_version_ok(const char *api, const mcig_kind_t *k)
{
    int          i;
    size_t       n;
    const char  *v;

    for (i = 0; k->versions[i]; i++) {
        v = k->versions[i];
        n = strlen(v);

        if (v[n - 1] == '*' ? strncmp(api, v, n - 1) == 0
                            : strcmp(api, v) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static void
mcig_keep(mcig_cc_t *cc, mcig_obj_t *obj)
{
    if (mcig_list_add(&cc->m->arena, &cc->m->kinds[obj->kind], obj) != 0) {
        mcig_oom(cc->m);
    }
}


/*
 * A reference to a pool: targetRef of policies (policy set) or poolRef.
 * 1 with the name, 0 when it names something else than a pool (a
 * warning), -1 on error.
 */
static int
mcig_pool_ref(mcig_cc_t *cc, mcig_yn_t *parent, const char *key,
    int policy, mcig_manifest_str_t *name)
{
    static const char  *target_fields[] = {
        "group", "kind", "name", "namespace", "sectionName", NULL
    };
    static const char  *pool_fields[] = { "group", "kind", "name", NULL };

    mcig_yn_t           *ref;
    mcig_manifest_str_t  kind, group;

    memset(&kind, 0, sizeof(kind));
    memset(&group, 0, sizeof(group));

    ref = mcig_want(cc, parent, key, YN_MAP, 1);
    if (ref == NULL) {
        return -1;
    }

    mcig_fields(cc, ref, policy ? target_fields : pool_fields, NULL);

    if (mcig_str(cc, ref, "kind", policy, MCIG_NAME_MAX, &kind) < 0) {
        return -1;
    }

    if (mcig_get(ref, "group") != NULL
        && mcig_as_str(cc, mcig_get(ref, "group"), MCIG_NAME_MAX, 1, &group)
           < 0)
    {
        return -1;
    }

    if (mcig_name(cc, ref, "name", 1, name) != 1) {
        return -1;
    }

    if (kind.set && mcig_in(kind.value, strlen(kind.value), mcig_pool_kinds)
                    < 0)
    {
        if (policy) {
            mcig_report(cc, 1, mcig_get(ref, "kind"), NULL,
                        "the policy targets a %.64s, not an InferencePool or "
                        "GCPInferencePoolImport, and is ignored", kind.value);
            return 0;
        }

        mcig_report(cc, 0, mcig_get(ref, "kind"), NULL,
                    "\"%.64s\" is not InferencePool", kind.value);
        return -1;
    }

    if (group.set
        && mcig_in(group.value, strlen(group.value), mcig_pool_groups) < 0)
    {
        mcig_report(cc, 0, mcig_get(ref, "group"), NULL,
                    "\"%.64s\" is not one of inference.networking.k8s.io, "
                    "inference.networking.x-k8s.io or networking.gke.io",
                    group.value);
        return -1;
    }

    return 1;
}


static void
mcig_compile_pool(mcig_cc_t *cc, mcig_yn_t *root, int kind_index,
    const char *api)
{
    static const char  *spec_v1[] = {
        "selector", "targetPorts", "appProtocol", "endpointPickerRef", NULL
    };
    static const char  *spec_v1alpha2[] = {
        "selector", "targetPortNumber", "extensionRef", NULL
    };
    static const char  *selector_fields[] = { "matchLabels", NULL };
    static const char  *port_fields[] = { "number", NULL };
    static const char  *picker_fields[] = {
        "group", "kind", "name", "port", "failureMode", NULL
    };
    static const char  *ext_fields[] = {
        "group", "kind", "name", "portNumber", "failureMode", NULL
    };
    static const char  *failure_modes[] = { "FailOpen", "FailClose", NULL };
    static const char  *protocols[] = { "http", "kubernetes.io/h2c", NULL };

    int                   v1;
    uint32_t              i, j;
    mcig_yn_t            *spec, *sel, *ports, *item, *ref;
    mcig_seed_t          *seed;
    mcig_opool_t         *p, *first;
    mcig_manifest_int_t   mode, proto;

    p = mcig_arena_alloc(&cc->m->arena, sizeof(mcig_opool_t));
    if (p == NULL) {
        mcig_oom(cc->m);
        return;
    }

    if (mcig_meta(cc, root, kind_index, &p->obj) != 0) {
        return;
    }

    v1 = (strcmp(api, "inference.networking.k8s.io/v1") == 0);

    spec = mcig_want(cc, root, "spec", YN_MAP, 1);
    if (spec == NULL) {
        return;
    }

    mcig_fields(cc, spec, v1 ? spec_v1 : spec_v1alpha2, NULL);

    sel = mcig_want(cc, spec, "selector", YN_MAP, 1);

    if (sel != NULL && v1) {
        mcig_fields(cc, sel, selector_fields, NULL);
        sel = mcig_want(cc, sel, "matchLabels", YN_MAP, 1);
    }

    if (sel != NULL) {
        mcig_labels(cc, sel, &p->nlabels, &p->labels);
    }

    if (!v1) {
        if (mcig_int(cc, spec, "targetPortNumber", 1, 1, 65535,
                     &p->target_ports[0]) == 1)
        {
            p->ntarget_ports = 1;
        }

        ref = mcig_want(cc, spec, "extensionRef", YN_MAP, 0);

        if (ref != NULL) {
            memset(&mode, 0, sizeof(mode));
            mcig_fields(cc, ref, ext_fields, NULL);
            mcig_str(cc, ref, "name", 1, MCIG_NAME_MAX, &p->picker);
            mcig_int(cc, ref, "portNumber", 0, 1, 65535, &p->picker_port);

            if (mcig_enum(cc, ref, "failureMode", 0, failure_modes, &mode)
                == 1)
            {
                p->picker_failure_mode.set = 1;
                p->picker_failure_mode.value = failure_modes[mode.value - 1];
                p->picker_failure_mode.src = mode.src;
            }
        }

        goto done;
    }

    ports = mcig_want(cc, spec, "targetPorts", YN_SEQ, 1);

    if (ports != NULL) {
        if (ports->n < 1 || ports->n > MCIG_MANIFEST_TARGET_PORTS_MAX) {
            mcig_report(cc, 0, ports, NULL, "%u ports are listed; 1 to %d "
                        "are needed", ports->n,
                        MCIG_MANIFEST_TARGET_PORTS_MAX);

        } else {
            for (item = ports->first; item; item = item->next) {
                i = p->ntarget_ports;

                if (mcig_deref(item)->type != YN_MAP) {
                    mcig_report(cc, 0, mcig_deref(item), NULL,
                                "a port is a mapping with a number");
                    continue;
                }

                mcig_fields(cc, item, port_fields, NULL);

                if (mcig_int(cc, item, "number", 1, 1, 65535,
                             &p->target_ports[i]) != 1)
                {
                    continue;
                }

                for (j = 0; j < i; j++) {
                    if (p->target_ports[j].value
                        == p->target_ports[i].value)
                    {
                        mcig_report(cc, 0, mcig_get(item, "number"), NULL,
                                    "port %lld is listed twice",
                                    (long long) p->target_ports[i].value);
                        break;
                    }
                }

                if (j == i) {
                    p->ntarget_ports++;
                }
            }
        }
    }

    memset(&proto, 0, sizeof(proto));

    if (mcig_enum(cc, spec, "appProtocol", 0, protocols, &proto) == 1
        && proto.value == 2)
    {
        mcig_report(cc, 1, mcig_get(spec, "appProtocol"), NULL,
                    "the gateway speaks HTTP/1.1 to members, not h2c");
    }

    ref = mcig_want(cc, spec, "endpointPickerRef", YN_MAP, 0);

    if (ref != NULL) {
        memset(&mode, 0, sizeof(mode));
        mcig_fields(cc, ref, picker_fields, NULL);
        mcig_str(cc, ref, "name", 1, MCIG_NAME_MAX, &p->picker);

        item = mcig_want(cc, ref, "port", YN_MAP, 0);

        if (item != NULL) {
            mcig_fields(cc, item, port_fields, NULL);
            mcig_int(cc, item, "number", 1, 1, 65535, &p->picker_port);
        }

        if (mcig_enum(cc, ref, "failureMode", 0, failure_modes, &mode) == 1) {
            p->picker_failure_mode.set = 1;
            p->picker_failure_mode.value = failure_modes[mode.value - 1];
            p->picker_failure_mode.src = mode.src;
        }
    }

done:

    if (cc->errors) {
        return;
    }

    seed = mcig_seed(cc->m, p->obj.name, strlen(p->obj.name));
    if (seed == NULL) {
        mcig_oom(cc->m);
        return;
    }

    if (seed->pool != NULL) {
        first = seed->pool;
        mcig_report(cc, 0, mcig_get(mcig_get(root, "metadata"), "name"),
                    NULL, "the pool %s is also defined by InferencePool %s "
                    "at %s:%u:%u; pools are upstreams, named without "
                    "namespace", p->obj.name, first->obj.id,
                    first->obj.src.file, first->obj.src.line,
                    first->obj.src.column);
        return;
    }

    seed->pool = p;
    mcig_keep(cc, &p->obj);
}


static void
mcig_compile_objective(mcig_cc_t *cc, mcig_yn_t *root, int kind_index)
{
    static const char  *spec_fields[] = { "priority", "poolRef", NULL };

    mcig_yn_t          *spec;
    mcig_oobjective_t  *o;

    o = mcig_arena_alloc(&cc->m->arena, sizeof(mcig_oobjective_t));
    if (o == NULL) {
        mcig_oom(cc->m);
        return;
    }

    if (mcig_meta(cc, root, kind_index, &o->obj) != 0) {
        return;
    }

    spec = mcig_want(cc, root, "spec", YN_MAP, 1);
    if (spec == NULL) {
        return;
    }

    mcig_fields(cc, spec, spec_fields, NULL);
    mcig_int(cc, spec, "priority", 0, -1000000, 1000000, &o->priority);
    mcig_pool_ref(cc, spec, "poolRef", 0, &o->pool);

    if (cc->errors == 0) {
        mcig_keep(cc, &o->obj);
    }
}


static void
mcig_compile_rewrite(mcig_cc_t *cc, mcig_yn_t *root, int kind_index)
{
    static const char  *spec_fields[] = { "poolRef", "rules", NULL };
    static const char  *rule_fields[] = { "matches", "targets", NULL };
    static const char  *match_fields[] = { "model", NULL };
    static const char  *model_fields[] = { "type", "value", NULL };
    static const char  *target_fields[] = { "modelRewrite", "weight", NULL };
    static const char  *match_types[] = { "Exact", NULL };

    uint32_t                 nweights;
    mcig_yn_t               *spec, *rules, *r, *matches, *targets, *x, *model;
    mcig_orewrite_t         *o;
    mcig_manifest_int_t      type, weight;
    mcig_manifest_str_t      value;
    mcig_manifest_rule_t    *rule;
    mcig_manifest_target_t  *t;

    o = mcig_arena_alloc(&cc->m->arena, sizeof(mcig_orewrite_t));
    if (o == NULL) {
        mcig_oom(cc->m);
        return;
    }

    if (mcig_meta(cc, root, kind_index, &o->obj) != 0) {
        return;
    }

    spec = mcig_want(cc, root, "spec", YN_MAP, 1);
    if (spec == NULL) {
        return;
    }

    mcig_fields(cc, spec, spec_fields, NULL);
    mcig_pool_ref(cc, spec, "poolRef", 0, &o->pool);

    rules = mcig_want(cc, spec, "rules", YN_SEQ, 1);
    if (rules == NULL) {
        return;
    }

    o->rules = mcig_arena_alloc(&cc->m->arena,
                                sizeof(mcig_manifest_rule_t) * rules->n + 1);
    if (o->rules == NULL) {
        mcig_oom(cc->m);
        return;
    }

    for (r = rules->first; r; r = r->next) {
        /* the place of a rule left out is taken by the next one */
        rule = &o->rules[o->nrules];
        memset(rule, 0, sizeof(mcig_manifest_rule_t));
        rule->rewrite = o->obj.id;
        rule->src = mcig_src(cc, mcig_deref(r));

        if (mcig_deref(r)->type != YN_MAP) {
            mcig_report(cc, 0, mcig_deref(r), NULL, "a rule is a mapping "
                        "with matches and targets");
            continue;
        }

        mcig_fields(cc, r, rule_fields, NULL);

        matches = mcig_want(cc, r, "matches", YN_SEQ, 0);

        if (matches != NULL && matches->n) {
            rule->models = mcig_arena_alloc(&cc->m->arena,
                                            sizeof(char *) * matches->n);
            if (rule->models == NULL) {
                mcig_oom(cc->m);
                return;
            }

            for (x = matches->first; x; x = x->next) {
                if (mcig_deref(x)->type != YN_MAP) {
                    mcig_report(cc, 0, mcig_deref(x), NULL,
                                "a match is a mapping with a model");
                    continue;
                }

                mcig_fields(cc, x, match_fields, NULL);

                model = mcig_want(cc, x, "model", YN_MAP, 1);
                if (model == NULL) {
                    continue;
                }

                mcig_fields(cc, model, model_fields, NULL);
                memset(&type, 0, sizeof(type));
                memset(&value, 0, sizeof(value));

                mcig_enum(cc, model, "type", 0, match_types, &type);

                if (mcig_str(cc, model, "value", 1, MCIG_MANIFEST_MODEL_MAX,
                             &value) == 1)
                {
                    rule->models[rule->nmodels++] = value.value;
                }
            }
        }

        targets = mcig_want(cc, r, "targets", YN_SEQ, 0);

        if (targets == NULL || targets->n == 0) {
            if (mcig_get(r, "targets") == NULL
                || mcig_get(r, "targets")->type == YN_SEQ)
            {
                mcig_report(cc, 1, mcig_deref(r), "targets",
                            "the rule has no targets and is ignored");
            }

            continue;
        }

        t = mcig_arena_alloc(&cc->m->arena,
                             sizeof(mcig_manifest_target_t) * targets->n);
        if (t == NULL) {
            mcig_oom(cc->m);
            return;
        }

        nweights = 0;

        for (x = targets->first; x; x = x->next) {
            if (mcig_deref(x)->type != YN_MAP) {
                mcig_report(cc, 0, mcig_deref(x), NULL,
                            "a target is a mapping with a modelRewrite");
                continue;
            }

            mcig_fields(cc, x, target_fields, NULL);
            memset(&value, 0, sizeof(value));
            memset(&weight, 0, sizeof(weight));

            if (mcig_str(cc, x, "modelRewrite", 1, MCIG_MANIFEST_MODEL_MAX,
                         &value) != 1)
            {
                continue;
            }

            if (mcig_int(cc, x, "weight", 0, 1, 1000000, &weight) < 0) {
                continue;
            }

            t[rule->ntargets].model = value.value;
            t[rule->ntargets].weight = weight.set ? (uint32_t) weight.value
                                                  : 1;
            t[rule->ntargets].src = mcig_src(cc, mcig_deref(x));
            rule->ntargets++;
            nweights += weight.set;
        }

        if (nweights && nweights != rule->ntargets) {
            mcig_report(cc, 0, targets, NULL, "a weight is set on %u of the "
                        "%u targets; set it on every target or on none",
                        nweights, rule->ntargets);
        }

        rule->targets = t;
        rule->total_weight = 0;

        for (nweights = 0; nweights < rule->ntargets; nweights++) {
            rule->total_weight += t[nweights].weight;
        }

        if (rule->ntargets) {
            o->nrules++;
        }
    }

    if (cc->errors == 0) {
        mcig_keep(cc, &o->obj);
    }
}


static void
mcig_compile_backend(mcig_cc_t *cc, mcig_yn_t *root, int kind_index)
{
    static const char  *spec_fields[] = { "targetRef", "default", NULL };
    static const char  *default_fields[] = {
        "balancingMode", "customMetrics", "maxInFlightRequestsPerEndpoint",
        "trafficDuration", "timeoutSec", "dryRun", NULL
    };
    static const char  *default_unused[] = {
        "connectionDraining", "logging", "sessionAffinity", "securityPolicy",
        "iap", "maxRatePerEndpoint", "scopes", "backendPreference",
        "requestLogging", NULL
    };
    static const char  *metric_fields[] = {
        "name", "maxUtilization", "maxUtilizationPercent", "dryRun", NULL
    };

    int                  rc;
    mcig_yn_t           *spec, *def, *metrics, *x;
    const char          *export;
    mcig_obackend_t     *o;
    mcig_manifest_int_t  util, percent, dry;
    mcig_manifest_str_t  name;

    o = mcig_arena_alloc(&cc->m->arena, sizeof(mcig_obackend_t));
    if (o == NULL) {
        mcig_oom(cc->m);
        return;
    }

    if (mcig_meta(cc, root, kind_index, &o->obj) != 0) {
        return;
    }

    spec = mcig_want(cc, root, "spec", YN_MAP, 1);
    if (spec == NULL) {
        return;
    }

    mcig_fields(cc, spec, spec_fields, NULL);

    rc = mcig_pool_ref(cc, spec, "targetRef", 1, &o->target);

    def = mcig_want(cc, spec, "default", YN_MAP, 0);

    if (def != NULL) {
        mcig_fields(cc, def, default_fields, default_unused);

        mcig_enum(cc, def, "balancingMode", 0, mcig_mode_names,
                  &o->balancing_mode);
        mcig_enum(cc, def, "trafficDuration", 0, mcig_traffic_names,
                  &o->traffic_duration);
        mcig_int(cc, def, "timeoutSec", 0, 1, 3600, &o->timeout_sec);
        mcig_int(cc, def, "maxInFlightRequestsPerEndpoint", 0, 1, 1000000,
                 &o->max_in_flight);
        mcig_bool(cc, def, "dryRun", &o->dry_run);

        metrics = mcig_want(cc, def, "customMetrics", YN_SEQ, 0);

        for (x = metrics ? metrics->first : NULL; x; x = x->next) {
            if (mcig_deref(x)->type != YN_MAP) {
                mcig_report(cc, 0, mcig_deref(x), NULL, "a custom metric is "
                            "a mapping with a name");
                continue;
            }

            mcig_fields(cc, x, metric_fields, NULL);

            memset(&name, 0, sizeof(name));
            memset(&util, 0, sizeof(util));
            memset(&percent, 0, sizeof(percent));
            memset(&dry, 0, sizeof(dry));

            mcig_int(cc, x, "maxUtilization", 0, 0, 100, &util);
            mcig_int(cc, x, "maxUtilizationPercent", 0, 0, 100, &percent);
            mcig_bool(cc, x, "dryRun", &dry);

            if (util.set && percent.set) {
                mcig_report(cc, 0, mcig_get(x, "maxUtilizationPercent"),
                            NULL, "maxUtilization is set too; set one");
            }

            if (mcig_str(cc, x, "name", 1, MCIG_STR_MAX, &name) == 1) {
                export = name.value + sizeof(MCIG_NAMED_METRICS) - 1;

                if (strncmp(name.value, MCIG_NAMED_METRICS,
                            sizeof(MCIG_NAMED_METRICS) - 1) != 0
                    || *export == '\0')
                {
                    mcig_report(cc, 0, mcig_get(x, "name"), NULL,
                                "\"%.64s\" is not gke.named_metrics."
                                "<exportName>", name.value);
                    continue;
                }

                name.value = export;
            }

            if (x != metrics->first) {
                mcig_report(cc, 1, mcig_deref(x), NULL, "only the first "
                            "custom metric is used; this one is ignored");
                continue;
            }

            o->custom_metric = name;
            o->max_utilization = util.set ? util : percent;

            if (dry.set) {
                o->dry_run = dry;
            }
        }

        if (o->balancing_mode.set
            && o->balancing_mode.value == MCIG_MANIFEST_MODE_CUSTOM_METRICS
            && (mcig_get(def, "customMetrics") == NULL
                || (metrics != NULL && metrics->n == 0)))
        {
            mcig_report(cc, 0, mcig_get(def, "balancingMode"), NULL,
                        "CUSTOM_METRICS needs spec.default.customMetrics");
        }
    }

    if (cc->errors == 0 && rc == 1) {
        mcig_keep(cc, &o->obj);
    }
}


/* a health check setting at spec.default or at spec.default.config */
static void
mcig_health_int(mcig_cc_t *cc, mcig_yn_t *def, mcig_yn_t *config,
    const char *key, int64_t min, int64_t max, mcig_manifest_int_t *out)
{
    mcig_manifest_int_t  other;

    memset(&other, 0, sizeof(other));

    mcig_int(cc, def, key, 0, min, max, out);

    if (config != NULL && mcig_int(cc, config, key, 0, min, max, &other) == 1)
    {
        if (mcig_get(def, key) != NULL) {
            mcig_report(cc, 0, mcig_get(config, key), NULL,
                        "%s is set at spec.default too; set one", key);
            return;
        }

        *out = other;
    }
}


static void
mcig_compile_health(mcig_cc_t *cc, mcig_yn_t *root, int kind_index)
{
    static const char  *spec_fields[] = { "targetRef", "default", NULL };
    static const char  *default_fields[] = {
        "checkIntervalSec", "timeoutSec", "healthyThreshold",
        "unhealthyThreshold", "config", NULL
    };
    static const char  *default_unused[] = { "logConfig", NULL };
    static const char  *config_fields[] = {
        "type", "httpHealthCheck", "checkIntervalSec", "timeoutSec",
        "healthyThreshold", "unhealthyThreshold", NULL
    };
    static const char  *config_unused[] = {
        "httpsHealthCheck", "http2HealthCheck", "grpcHealthCheck",
        "tcpHealthCheck", NULL
    };
    static const char  *http_fields[] = {
        "requestPath", "port", "portSpecification", NULL
    };
    static const char  *http_unused[] = {
        "portName", "host", "response", "proxyHeader", NULL
    };
    static const char  *port_specs[] = {
        "USE_FIXED_PORT", "USE_SERVING_PORT", "USE_NAMED_PORT", NULL
    };

    int                  rc;
    mcig_yn_t           *spec, *def, *config, *http, *v;
    mcig_ohealth_t      *o;
    mcig_manifest_int_t  portspec;

    o = mcig_arena_alloc(&cc->m->arena, sizeof(mcig_ohealth_t));
    if (o == NULL) {
        mcig_oom(cc->m);
        return;
    }

    if (mcig_meta(cc, root, kind_index, &o->obj) != 0) {
        return;
    }

    spec = mcig_want(cc, root, "spec", YN_MAP, 1);
    if (spec == NULL) {
        return;
    }

    mcig_fields(cc, spec, spec_fields, NULL);

    rc = mcig_pool_ref(cc, spec, "targetRef", 1, &o->target);

    def = mcig_want(cc, spec, "default", YN_MAP, 0);
    config = mcig_want(cc, def, "config", YN_MAP, 0);

    mcig_fields(cc, def, default_fields, default_unused);
    mcig_fields(cc, config, config_fields, config_unused);

    mcig_health_int(cc, def, config, "checkIntervalSec", 1, 300,
                    &o->interval);
    mcig_health_int(cc, def, config, "timeoutSec", 1, 300, &o->timeout);
    mcig_health_int(cc, def, config, "healthyThreshold", 1, 10, &o->healthy);
    mcig_health_int(cc, def, config, "unhealthyThreshold", 1, 10,
                    &o->unhealthy);

    v = mcig_get(config, "type");

    if (v != NULL && !(v->type == YN_SCALAR && v->cls == YS_STR
                       && v->n == 4 && memcmp(v->s, "HTTP", 4) == 0))
    {
        char  desc[MCIG_QUOTE_MAX + 16];

        mcig_desc(v, desc, sizeof(desc));
        mcig_report(cc, 0, v, NULL, "%s is not supported: the gateway "
                    "checks health over HTTP only", desc);
    }

    http = mcig_want(cc, config, "httpHealthCheck", YN_MAP, 0);

    if (http != NULL) {
        mcig_fields(cc, http, http_fields, http_unused);

        if (mcig_str(cc, http, "requestPath", 0, MCIG_STR_MAX, &o->path) == 1
            && o->path.value[0] != '/')
        {
            mcig_report(cc, 0, mcig_get(http, "requestPath"), NULL,
                        "\"%.64s\" does not start with /", o->path.value);
        }

        mcig_int(cc, http, "port", 0, 1, 65535, &o->port);

        memset(&portspec, 0, sizeof(portspec));

        if (mcig_enum(cc, http, "portSpecification", 0, port_specs,
                      &portspec) == 1)
        {
            if (portspec.value == 3) {
                mcig_report(cc, 0, mcig_get(http, "portSpecification"), NULL,
                            "USE_NAMED_PORT is not supported; use "
                            "USE_FIXED_PORT with a port");

            } else if (portspec.value == 1 && !o->port.set) {
                mcig_report(cc, 0, http, "port", "this field is required "
                            "with USE_FIXED_PORT");

            } else if (portspec.value == 2 && o->port.set) {
                mcig_report(cc, 1, mcig_get(http, "port"), NULL,
                            "the port is not used with USE_SERVING_PORT");
                memset(&o->port, 0, sizeof(o->port));
            }
        }
    }

    if (cc->errors == 0 && rc == 1) {
        mcig_keep(cc, &o->obj);
    }
}


/* an exported metric: the Prometheus metric and the name it is known by */
static int
mcig_export(mcig_cc_t *cc, mcig_yn_t *item, const char *metric_key,
    const char *name_key, mcig_manifest_export_t *e)
{
    char                 desc[MCIG_QUOTE_MAX + 16];
    mcig_prom_spec_t     spec;
    mcig_manifest_str_t  metric, name;
    mcig_prom_spec_rc_e  rc;

    memset(&metric, 0, sizeof(metric));
    memset(&name, 0, sizeof(name));

    if (mcig_str(cc, item, metric_key, 1, MCIG_STR_MAX, &metric) != 1
        || mcig_str(cc, item, name_key, 1, MCIG_NAME_MAX, &name) != 1)
    {
        return -1;
    }

    rc = mcig_prom_spec_parse(&spec, metric.value, strlen(metric.value));

    if (rc != MCIG_PROM_SPEC_OK) {
        mcig_desc(mcig_get(item, metric_key), desc, sizeof(desc));
        mcig_report(cc, 0, mcig_get(item, metric_key), NULL,
                    "%s is not a metric: %s", desc,
                    mcig_prom_spec_rc_text(rc));
        return -1;
    }

    e->name = name.value;
    e->metric = metric.value;
    e->src = metric.src;

    return 0;
}


/* an endpoint {port, path} of an AutoscalingMetric */
static void
mcig_metrics_endpoint(mcig_cc_t *cc, mcig_yn_t *ep, mcig_msource_t *s)
{
    static const char  *endpoint_fields[] = { "port", "path", NULL };

    if (mcig_deref(ep)->type != YN_MAP) {
        mcig_report(cc, 0, mcig_deref(ep), NULL, "an endpoint is a mapping "
                    "with a port and a path");
        return;
    }

    mcig_fields(cc, ep, endpoint_fields, NULL);
    mcig_int(cc, ep, "port", 0, 1, 65535, &s->port);

    if (mcig_str(cc, ep, "path", 0, MCIG_STR_MAX, &s->path) == 1
        && s->path.value[0] != '/')
    {
        mcig_report(cc, 0, mcig_get(ep, "path"), NULL,
                    "\"%.64s\" does not start with /", s->path.value);
    }
}


static void
mcig_metrics_selector(mcig_cc_t *cc, mcig_yn_t *parent, mcig_msource_t *s)
{
    static const char  *selector_fields[] = { "matchLabels", NULL };

    mcig_yn_t  *sel;

    sel = mcig_want(cc, parent, "selector", YN_MAP, 0);

    s->src = mcig_src(cc, sel ? sel : mcig_deref(parent));

    if (sel != NULL) {
        mcig_fields(cc, sel, selector_fields, NULL);
        sel = mcig_want(cc, sel, "matchLabels", YN_MAP, 0);
        mcig_labels(cc, sel, &s->nlabels, &s->labels);
    }
}


static void
mcig_add_export(mcig_cc_t *cc, mcig_yn_t *at, mcig_msource_t *s,
    const mcig_manifest_export_t *e)
{
    uint32_t  i;

    for (i = 0; i < s->nexports; i++) {
        if (strcmp(s->exports[i].name, e->name) == 0) {
            mcig_report(cc, 0, at, NULL, "the export name \"%.64s\" is "
                        "used twice", e->name);
            return;
        }
    }

    s->exports[s->nexports++] = *e;
}


static void
mcig_compile_ametric(mcig_cc_t *cc, mcig_yn_t *root, int kind_index)
{
    static const char  *spec_fields[] = {
        "selector", "endpoints", "metrics", NULL
    };
    static const char  *metric_fields[] = { "name", "exportName", NULL };
    static const char  *item_fields[] = { "pod", NULL };
    static const char  *pod_fields[] = { "selector", "containers", NULL };
    static const char  *container_fields[] = {
        "name", "endpoint", "metrics", NULL
    };
    static const char  *gauge_item_fields[] = { "gauge", NULL };
    static const char  *gauge_fields[] = {
        "name", "prometheusMetricName", NULL
    };

    uint32_t                 ncontainers, nguide;
    mcig_yn_t               *spec, *metrics, *x, *pod, *cs, *c, *g, *gauge;
    mcig_yn_t               *eps, *gauges;
    mcig_msource_t          *s, *guide;
    mcig_oametric_t         *o;
    mcig_manifest_export_t   e;

    o = mcig_arena_alloc(&cc->m->arena, sizeof(mcig_oametric_t));
    if (o == NULL) {
        mcig_oom(cc->m);
        return;
    }

    if (mcig_meta(cc, root, kind_index, &o->obj) != 0) {
        return;
    }

    spec = mcig_want(cc, root, "spec", YN_MAP, 1);
    if (spec == NULL) {
        return;
    }

    mcig_fields(cc, spec, spec_fields, NULL);

    metrics = mcig_want(cc, spec, "metrics", YN_SEQ, 1);
    if (metrics == NULL) {
        return;
    }

    /* the guide's metrics make one source, each pod container another */
    ncontainers = 0;
    nguide = 0;

    for (x = metrics->first; x; x = x->next) {
        pod = mcig_get(x, "pod");
        cs = pod ? mcig_get(pod, "containers") : NULL;

        if (cs != NULL && cs->type == YN_SEQ) {
            ncontainers += cs->n;

        } else if (pod == NULL) {
            nguide++;
        }
    }

    o->sources = mcig_arena_alloc(&cc->m->arena,
                                  sizeof(mcig_msource_t) * (ncontainers + 1));
    if (o->sources == NULL) {
        mcig_oom(cc->m);
        return;
    }

    guide = NULL;

    if (nguide || mcig_get(spec, "selector") || mcig_get(spec, "endpoints")) {
        guide = &o->sources[o->nsources++];
        guide->exports = mcig_arena_alloc(&cc->m->arena,
                                      sizeof(mcig_manifest_export_t) * nguide
                                      + 1);
        if (guide->exports == NULL) {
            mcig_oom(cc->m);
            return;
        }

        mcig_metrics_selector(cc, spec, guide);

        eps = mcig_want(cc, spec, "endpoints", YN_SEQ, 0);

        for (x = eps ? eps->first : NULL; x; x = x->next) {
            if (x != eps->first) {
                mcig_report(cc, 1, mcig_deref(x), NULL, "only the first "
                            "endpoint is used; this one is ignored");
                continue;
            }

            mcig_metrics_endpoint(cc, x, guide);
        }
    }

    for (x = metrics->first; x; x = x->next) {
        if (mcig_deref(x)->type != YN_MAP) {
            mcig_report(cc, 0, mcig_deref(x), NULL, "a metric is a mapping "
                        "with a name and an exportName");
            continue;
        }

        pod = mcig_get(x, "pod");

        if (pod == NULL) {
            mcig_fields(cc, x, metric_fields, NULL);

            if (mcig_export(cc, x, "name", "exportName", &e) == 0) {
                mcig_add_export(cc, mcig_get(x, "exportName"), guide, &e);
            }

            continue;
        }

        mcig_fields(cc, x, item_fields, NULL);

        pod = mcig_want(cc, x, "pod", YN_MAP, 1);
        if (pod == NULL) {
            continue;
        }

        mcig_fields(cc, pod, pod_fields, NULL);

        cs = mcig_want(cc, pod, "containers", YN_SEQ, 1);

        for (c = cs ? cs->first : NULL; c; c = c->next) {
            if (mcig_deref(c)->type != YN_MAP) {
                mcig_report(cc, 0, mcig_deref(c), NULL, "a container is a "
                            "mapping with an endpoint and metrics");
                continue;
            }

            mcig_fields(cc, c, container_fields, NULL);

            s = &o->sources[o->nsources++];
            mcig_metrics_selector(cc, pod, s);

            eps = mcig_want(cc, c, "endpoint", YN_MAP, 0);

            if (eps != NULL) {
                mcig_metrics_endpoint(cc, eps, s);
            }

            gauges = mcig_want(cc, c, "metrics", YN_SEQ, 1);
            if (gauges == NULL) {
                continue;
            }

            s->exports = mcig_arena_alloc(&cc->m->arena,
                                      sizeof(mcig_manifest_export_t)
                                      * gauges->n + 1);
            if (s->exports == NULL) {
                mcig_oom(cc->m);
                return;
            }

            for (g = gauges->first; g; g = g->next) {
                mcig_fields(cc, g, gauge_item_fields, NULL);

                gauge = mcig_want(cc, g, "gauge", YN_MAP, 1);
                if (gauge == NULL) {
                    continue;
                }

                mcig_fields(cc, gauge, gauge_fields, NULL);

                if (mcig_export(cc, gauge, "prometheusMetricName", "name", &e)
                    == 0)
                {
                    mcig_add_export(cc, mcig_get(gauge, "name"), s, &e);
                }
            }
        }
    }

    if (cc->errors == 0) {
        mcig_keep(cc, &o->obj);
    }
}


static int
mcig_host_name(const char *s, size_t n)
{
    size_t  i;

    if (n == 0 || n > MCIG_NAME_MAX) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '.'))
        {
            return 0;
        }
    }

    return 1;
}


static void
mcig_compile_slice(mcig_cc_t *cc, mcig_yn_t *root, int kind_index)
{
    static const char  *top_fields[] = {
        "apiVersion", "kind", "metadata", "addressType", "endpoints",
        "ports", NULL
    };
    static const char  *endpoint_fields[] = {
        "addresses", "conditions", "zone", "nodeName", "hostname",
        "targetRef", "hints", "deprecatedTopology", "topology", NULL
    };
    static const char  *condition_fields[] = {
        "ready", "serving", "terminating", NULL
    };
    static const char  *port_fields[] = {
        "name", "port", "protocol", "appProtocol", NULL
    };
    static const char  *address_types[] = { "IPv4", "IPv6", "FQDN", NULL };
    static const char  *protocols[] = { "TCP", "UDP", "SCTP", NULL };

    int                  v4, v6;
    char                 desc[MCIG_QUOTE_MAX + 16];
    unsigned char        buf[16];
    mcig_yn_t           *eps, *ep, *addrs, *cond, *ports, *x;
    mcig_oslice_t       *o;
    mcig_endpoint_t     *e;
    mcig_manifest_int_t  type, ready, port, proto;
    mcig_manifest_str_t  addr, zone;

    o = mcig_arena_alloc(&cc->m->arena, sizeof(mcig_oslice_t));
    if (o == NULL) {
        mcig_oom(cc->m);
        return;
    }

    if (mcig_meta(cc, root, kind_index, &o->obj) != 0) {
        return;
    }

    mcig_fields(cc, root, top_fields, NULL);

    memset(&type, 0, sizeof(type));
    mcig_enum(cc, root, "addressType", 0, address_types, &type);

    eps = mcig_want(cc, root, "endpoints", YN_SEQ, 0);

    if (eps != NULL) {
        o->endpoints = mcig_arena_alloc(&cc->m->arena,
                                        sizeof(mcig_endpoint_t) * eps->n);
        if (o->endpoints == NULL) {
            mcig_oom(cc->m);
            return;
        }
    }

    for (ep = eps ? eps->first : NULL; ep; ep = ep->next) {
        if (mcig_deref(ep)->type != YN_MAP) {
            mcig_report(cc, 0, mcig_deref(ep), NULL, "an endpoint is a "
                        "mapping with addresses");
            continue;
        }

        mcig_fields(cc, ep, endpoint_fields, NULL);

        memset(&addr, 0, sizeof(addr));
        memset(&zone, 0, sizeof(zone));
        memset(&ready, 0, sizeof(ready));

        addrs = mcig_want(cc, ep, "addresses", YN_SEQ, 1);
        if (addrs == NULL) {
            continue;
        }

        if (addrs->n == 0) {
            mcig_report(cc, 0, addrs, NULL, "the list is empty");
            continue;
        }

        if (mcig_as_str(cc, addrs->first, MCIG_NAME_MAX, 0, &addr) != 1) {
            continue;
        }

        v4 = inet_pton(AF_INET, addr.value, buf) == 1;
        v6 = !v4 && inet_pton(AF_INET6, addr.value, buf) == 1;

        if ((type.set && type.value == 1 && !v4)
            || (type.set && type.value == 2 && !v6)
            || (!v4 && !v6 && !mcig_host_name(addr.value,
                                               strlen(addr.value))))
        {
            mcig_desc(addrs->first, desc, sizeof(desc));
            mcig_report(cc, 0, mcig_deref(addrs->first), NULL,
                        "%s is not %s", desc,
                        (type.set && type.value == 1) ? "an IPv4 address"
                        : (type.set && type.value == 2) ? "an IPv6 address"
                        : "an IP address or a host name");
            continue;
        }

        cond = mcig_want(cc, ep, "conditions", YN_MAP, 0);

        if (cond != NULL) {
            mcig_fields(cc, cond, condition_fields, NULL);
            mcig_bool(cc, cond, "ready", &ready);
        }

        mcig_str(cc, ep, "zone", 0, MCIG_NAME_MAX, &zone);

        e = &o->endpoints[o->nendpoints++];
        e->address = addr.value;
        e->ipv6 = v6;
        e->ready = ready.set ? (int) ready.value : 1;
        e->zone = zone.set ? zone.value : NULL;
        e->src = addr.src;
    }

    ports = mcig_want(cc, root, "ports", YN_SEQ, 0);

    if (ports != NULL) {
        o->ports = mcig_arena_alloc(&cc->m->arena,
                                    sizeof(uint32_t) * ports->n + 1);
        if (o->ports == NULL) {
            mcig_oom(cc->m);
            return;
        }
    }

    for (x = ports ? ports->first : NULL; x; x = x->next) {
        if (mcig_deref(x)->type != YN_MAP) {
            mcig_report(cc, 0, mcig_deref(x), NULL, "a port is a mapping "
                        "with a port number");
            continue;
        }

        mcig_fields(cc, x, port_fields, NULL);

        memset(&port, 0, sizeof(port));
        memset(&proto, 0, sizeof(proto));

        mcig_enum(cc, x, "protocol", 0, protocols, &proto);

        if (mcig_int(cc, x, "port", 0, 1, 65535, &port) == 1
            && (!proto.set || proto.value == 1))
        {
            o->ports[o->nports++] = (uint32_t) port.value;
        }
    }

    if (cc->errors == 0) {
        mcig_keep(cc, &o->obj);
    }
}


static void
mcig_compile_gateway(mcig_cc_t *cc, mcig_yn_t *root, int kind_index)
{
    mcig_yn_t                 *spec, *ls, *x;
    mcig_ogateway_t           *o;
    mcig_manifest_int_t        port;
    mcig_manifest_str_t        name, proto;
    mcig_manifest_listener_t  *l;

    o = mcig_arena_alloc(&cc->m->arena, sizeof(mcig_ogateway_t));
    if (o == NULL) {
        mcig_oom(cc->m);
        return;
    }

    if (mcig_meta(cc, root, kind_index, &o->obj) != 0) {
        return;
    }

    spec = mcig_want(cc, root, "spec", YN_MAP, 0);
    ls = mcig_want(cc, spec, "listeners", YN_SEQ, 0);

    if (ls != NULL) {
        o->listeners = mcig_arena_alloc(&cc->m->arena,
                                     sizeof(mcig_manifest_listener_t) * ls->n);
        if (o->listeners == NULL) {
            mcig_oom(cc->m);
            return;
        }
    }

    for (x = ls ? ls->first : NULL; x; x = x->next) {
        memset(&name, 0, sizeof(name));
        memset(&proto, 0, sizeof(proto));
        memset(&port, 0, sizeof(port));

        if (mcig_deref(x)->type != YN_MAP
            || mcig_str(cc, x, "name", 0, MCIG_NAME_MAX, &name) < 0
            || mcig_str(cc, x, "protocol", 0, MCIG_NAME_MAX, &proto) < 0
            || mcig_int(cc, x, "port", 0, 1, 65535, &port) < 0)
        {
            continue;
        }

        l = &o->listeners[o->nlisteners++];
        l->gateway = o->obj.id;
        l->name = name.set ? name.value : "";
        l->protocol = proto.set ? proto.value : "";
        l->port = port.set ? (uint32_t) port.value : 0;
        l->src = mcig_src(cc, mcig_deref(x));
    }

    mcig_keep(cc, &o->obj);
}


static void
mcig_compile_route(mcig_cc_t *cc, mcig_yn_t *root, int kind_index)
{
    int                     i, nmatch;
    mcig_yn_t              *spec, *rules, *r, *matches, *refs, *ref, *x, *h;
    mcig_oroute_t          *o;
    mcig_manifest_int_t     weight;
    mcig_manifest_str_t     kind, name, ptype, pvalue, hname, hvalue;
    mcig_manifest_route_t  *e;

    o = mcig_arena_alloc(&cc->m->arena, sizeof(mcig_oroute_t));
    if (o == NULL) {
        mcig_oom(cc->m);
        return;
    }

    if (mcig_meta(cc, root, kind_index, &o->obj) != 0) {
        return;
    }

    spec = mcig_want(cc, root, "spec", YN_MAP, 0);
    rules = mcig_want(cc, spec, "rules", YN_SEQ, 0);

    for (r = rules ? rules->first : NULL; r; r = r->next) {
        matches = mcig_want(cc, r, "matches", YN_SEQ, 0);
        refs = mcig_want(cc, r, "backendRefs", YN_SEQ, 0);

        for (ref = refs ? refs->first : NULL; ref; ref = ref->next) {
            memset(&kind, 0, sizeof(kind));
            memset(&name, 0, sizeof(name));
            memset(&weight, 0, sizeof(weight));

            if (mcig_deref(ref)->type != YN_MAP
                || mcig_str(cc, ref, "kind", 0, MCIG_NAME_MAX, &kind) != 1
                || mcig_in(kind.value, strlen(kind.value), mcig_pool_kinds)
                   < 0
                || mcig_str(cc, ref, "name", 1, MCIG_NAME_MAX, &name) != 1
                || mcig_int(cc, ref, "weight", 0, 0, 1000000, &weight) < 0)
            {
                continue;
            }

            /* a rule without matches matches every request */
            nmatch = (matches && matches->n) ? (int) matches->n : 1;
            x = (matches && matches->n) ? matches->first : NULL;

            for (i = 0; i < nmatch; i++, x = x ? x->next : NULL) {
                memset(&ptype, 0, sizeof(ptype));
                memset(&pvalue, 0, sizeof(pvalue));
                memset(&hvalue, 0, sizeof(hvalue));

                if (x != NULL) {
                    mcig_str(cc, mcig_get(x, "path"), "type", 0,
                             MCIG_NAME_MAX, &ptype);
                    mcig_str(cc, mcig_get(x, "path"), "value", 0,
                             MCIG_STR_MAX, &pvalue);

                    h = mcig_want(cc, x, "headers", YN_SEQ, 0);

                    for (h = h ? h->first : NULL; h; h = h->next) {
                        memset(&hname, 0, sizeof(hname));

                        if (mcig_str(cc, h, "name", 0, MCIG_NAME_MAX, &hname)
                            == 1
                            && strcasecmp(hname.value, MCIG_MODEL_HEADER) == 0
                            && (mcig_get(h, "type") == NULL
                                || (mcig_get(h, "type")->type == YN_SCALAR
                                    && strcmp(mcig_get(h, "type")->s,
                                              "Exact") == 0)))
                        {
                            mcig_str(cc, h, "value", 0,
                                     MCIG_MANIFEST_MODEL_MAX, &hvalue);
                        }
                    }
                }

                e = mcig_arena_alloc(&cc->m->arena,
                                     sizeof(mcig_manifest_route_t));
                if (e == NULL
                    || mcig_list_add(&cc->m->arena, &o->entries, e) != 0)
                {
                    mcig_oom(cc->m);
                    return;
                }

                e->route = o->obj.id;
                e->path_type = ptype.set ? ptype.value : "PathPrefix";
                e->path = pvalue.set ? pvalue.value : "/";
                e->model = hvalue.set ? hvalue.value : NULL;
                e->pool = name.value;
                e->weight = weight.set ? (uint32_t) weight.value : 1;
                e->src = mcig_src(cc, mcig_deref(ref));
            }
        }
    }

    mcig_keep(cc, &o->obj);
}


static void
mcig_compile_import(mcig_cc_t *cc, mcig_yn_t *root, int kind_index)
{
    mcig_obj_t   *o;
    mcig_seed_t  *seed;

    o = mcig_arena_alloc(&cc->m->arena, sizeof(mcig_obj_t));
    if (o == NULL) {
        mcig_oom(cc->m);
        return;
    }

    if (mcig_meta(cc, root, kind_index, o) != 0) {
        return;
    }

    seed = mcig_seed(cc->m, o->name, strlen(o->name));
    if (seed == NULL) {
        mcig_oom(cc->m);
        return;
    }

    seed->imported = 1;
    mcig_keep(cc, o);
}


static void
mcig_compile_object(mcig_load_t *ld, mcig_yn_t *root, const char *list_kind,
    const char *list_api, int in_list)
{
    int                  i;
    char                 desc[MCIG_QUOTE_MAX + 16], base[MCIG_NAME_MAX + 1];
    size_t               n;
    mcig_cc_t            cc;
    mcig_yn_t           *items, *item, *at;
    const char          *kind, *api, *near;
    const mcig_kind_t   *k;
    mcig_manifest_str_t  skind, sapi;
    const char          *names[sizeof(mcig_kinds) / sizeof(mcig_kinds[0])];

    memset(&cc, 0, sizeof(cc));
    cc.m = ld->m;
    cc.file = ld->file;
    cc.kind = "the object";

    root = mcig_deref(root);

    if (root->type == YN_SCALAR && root->cls == YS_NULL) {
        if (in_list) {
            mcig_report(&cc, 1, root, NULL, "an empty item is ignored");
        }

        return;
    }

    if (root->type != YN_MAP) {
        mcig_desc(root, desc, sizeof(desc));
        mcig_report(&cc, 0, root, NULL, "%s %s, not a Kubernetes object "
                    "(a mapping)", in_list ? "the item is" : "the document is",
                    desc);
        return;
    }

    memset(&skind, 0, sizeof(skind));
    memset(&sapi, 0, sizeof(sapi));

    if (mcig_str(&cc, root, "apiVersion", list_api == NULL, MCIG_NAME_MAX,
                 &sapi) < 0
        || mcig_str(&cc, root, "kind", list_kind == NULL, MCIG_NAME_MAX,
                    &skind) < 0
        || cc.errors)
    {
        return;
    }

    kind = skind.set ? skind.value : list_kind;
    api = sapi.set ? sapi.value : list_api;
    at = skind.set ? mcig_get(root, "kind") : root;

    n = strlen(kind);

    if (strcmp(kind, "List") == 0
        || (n > 4 && strcmp(kind + n - 4, "List") == 0
            && mcig_get(root, "items") != NULL))
    {
        if (in_list) {
            mcig_report(&cc, 1, at, NULL, "a List inside a List is ignored");
            return;
        }

        /* a typed list, EndpointSliceList: its items may omit their kind */
        if (strcmp(kind, "List") != 0) {
            snprintf(base, sizeof(base), "%.*s", (int) (n - 4), kind);
        }

        items = mcig_want(&cc, root, "items", YN_SEQ, 0);

        for (item = items ? items->first : NULL; item; item = item->next) {
            mcig_compile_object(ld, item,
                                strcmp(kind, "List") ? base : NULL,
                                strcmp(kind, "List") ? api : NULL, 1);
        }

        return;
    }

    for (i = 0; mcig_kinds[i].name; i++) {
        names[i] = mcig_kinds[i].name;

        if (strcmp(mcig_kinds[i].name, kind) == 0) {
            break;
        }
    }

    k = &mcig_kinds[i];

    if (k->name == NULL) {
        names[i] = NULL;
        near = mcig_suggest(kind, names);

        mcig_report(&cc, !ld->m->strict, at, NULL, "%.64s (%.64s) is not a "
                    "kind the gateway uses%s%s%s; %s", kind, api,
                    near ? " (did you mean " : "", near ? near : "",
                    near ? "?)" : "",
                    ld->m->strict ? "strict manifests have only the kinds "
                                    "the gateway reads"
                                  : "the object is ignored");
        return;
    }

    cc.kind = k->name;
    cc.lenient = (k->kind == K_GATEWAY || k->kind == K_ROUTE);

    if (!mcig_api_version_ok(api, k)) {
        at = sapi.set ? mcig_get(root, "apiVersion") : root;
        mcig_report(&cc, 0, at, NULL, "\"%.64s\" is not an API version of "
                    "%s (%s%s%s)", api, k->name, k->versions[0],
                    k->versions[1] ? " or " : "",
                    k->versions[1] ? k->versions[1] : "");
        return;
    }

    if (ld->m->nobjects >= MCIG_MANIFEST_OBJECTS_MAX) {
        if (ld->m->nobjects++ == MCIG_MANIFEST_OBJECTS_MAX) {
            mcig_report(&cc, 0, root, NULL, "there are more than %d objects",
                        MCIG_MANIFEST_OBJECTS_MAX);
        }

        return;
    }

    ld->m->nobjects++;

    if (k->kind != K_SLICE && k->kind != K_IMPORT && !cc.lenient) {
        mcig_fields(&cc, root, mcig_top_fields, NULL);
    }

    switch (k->kind) {

    case K_POOL:
        mcig_compile_pool(&cc, root, i, api);
        break;

    case K_OBJECTIVE:
        mcig_compile_objective(&cc, root, i);
        break;

    case K_REWRITE:
        mcig_compile_rewrite(&cc, root, i);
        break;

    case K_BACKEND:
        mcig_compile_backend(&cc, root, i);
        break;

    case K_HEALTH:
        mcig_compile_health(&cc, root, i);
        break;

    case K_AMETRIC:
        mcig_compile_ametric(&cc, root, i);
        break;

    case K_SLICE:
        mcig_compile_slice(&cc, root, i);
        break;

    case K_GATEWAY:
        mcig_compile_gateway(&cc, root, i);
        break;

    case K_ROUTE:
        mcig_compile_route(&cc, root, i);
        break;

    default: /* K_IMPORT */
        mcig_compile_import(&cc, root, i);
        break;
    }
}


static void
mcig_compile_document(mcig_load_t *ld, mcig_yn_t *root)
{
    mcig_compile_object(ld, root, NULL, NULL, 0);
}


/* the public side: model and loading */

mcig_manifest_t *
mcig_manifest_create(void)
{
    return calloc(1, sizeof(mcig_manifest_t));
}


void
mcig_manifest_destroy(mcig_manifest_t *m)
{
    if (m == NULL) {
        return;
    }

    mcig_hash_free(&m->objects);
    mcig_hash_free(&m->pool_names);
    mcig_hash_free(&m->pool_index);
    mcig_arena_free(&m->arena);
    free(m->diags);
    free(m->build);
    free(m->pools);
    free(m);
}


int
mcig_manifest_add_known_pool(mcig_manifest_t *m, const char *name,
    size_t len)
{
    mcig_seed_t  *seed;

    if (m->resolved || len == 0 || memchr(name, '\0', len) != NULL) {
        return MCIG_MANIFEST_ERROR;
    }

    seed = mcig_seed(m, name, len);
    if (seed == NULL) {
        mcig_oom(m);
        return MCIG_MANIFEST_ERROR;
    }

    seed->registered = 1;

    return MCIG_MANIFEST_OK;
}


void
mcig_manifest_set_strict(mcig_manifest_t *m, int strict)
{
    m->strict = (strict != 0);
}


static int
mcig_loaded_after_resolve(mcig_manifest_t *m, const char *name)
{
    mcig_manifest_src_t  src;

    if (!m->resolved) {
        return 0;
    }

    memset(&src, 0, sizeof(src));
    src.file = name;
    mcig_diag(m, MCIG_MANIFEST_SEV_ERROR, &src, "manifests are loaded after "
              "they were resolved");

    return 1;
}


int
mcig_manifest_load_buffer(mcig_manifest_t *m, const char *name,
    const char *data, size_t len)
{
    size_t               errors;
    mcig_load_t          ld;
    mcig_manifest_src_t  src;

    if (mcig_loaded_after_resolve(m, name)) {
        return MCIG_MANIFEST_ERROR;
    }

    errors = m->nerrors;

    memset(&ld, 0, sizeof(ld));
    ld.m = m;
    ld.data = data;
    ld.len = len;
    ld.file = mcig_arena_strndup(&m->arena, name, strlen(name));

    if (ld.file == NULL) {
        mcig_oom(m);
        return MCIG_MANIFEST_ERROR;
    }

    if (len > MCIG_MANIFEST_FILE_MAX) {
        memset(&src, 0, sizeof(src));
        src.file = ld.file;
        mcig_diag(m, MCIG_MANIFEST_SEV_ERROR, &src, "the file is larger than "
                  "%d bytes", MCIG_MANIFEST_FILE_MAX);
        return MCIG_MANIFEST_ERROR;
    }

    mcig_parse(&ld);

    return (m->nerrors == errors) ? MCIG_MANIFEST_OK : MCIG_MANIFEST_ERROR;
}


int
mcig_manifest_load_file(mcig_manifest_t *m, const char *path)
{
    int                  rc;
    FILE                *f;
    char                *data;
    size_t               n, size;
    struct stat          st;
    mcig_manifest_src_t  src;

    if (mcig_loaded_after_resolve(m, path)) {
        return MCIG_MANIFEST_ERROR;
    }

    memset(&src, 0, sizeof(src));
    src.file = mcig_arena_strndup(&m->arena, path, strlen(path));

    if (src.file == NULL) {
        mcig_oom(m);
        return MCIG_MANIFEST_ERROR;
    }

    /* not opened when it is not a file: a FIFO would block the open */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        mcig_diag(m, MCIG_MANIFEST_SEV_ERROR, &src, "not a regular file");
        return MCIG_MANIFEST_ERROR;
    }

    f = fopen(path, "rb");

    if (f == NULL) {
        mcig_diag(m, MCIG_MANIFEST_SEV_ERROR, &src, "cannot open the file: %s",
                  strerror(errno));
        return MCIG_MANIFEST_ERROR;
    }

    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        mcig_diag(m, MCIG_MANIFEST_SEV_ERROR, &src, "not a regular file");
        fclose(f);
        return MCIG_MANIFEST_ERROR;
    }

    if (st.st_size > MCIG_MANIFEST_FILE_MAX) {
        mcig_diag(m, MCIG_MANIFEST_SEV_ERROR, &src, "the file is larger than "
                  "%d bytes", MCIG_MANIFEST_FILE_MAX);
        fclose(f);
        return MCIG_MANIFEST_ERROR;
    }

    /* one byte more than allowed tells a file that grew since */
    size = (size_t) st.st_size + 1;

    data = malloc(size);
    if (data == NULL) {
        fclose(f);
        mcig_oom(m);
        return MCIG_MANIFEST_ERROR;
    }

    n = fread(data, 1, size, f);

    if (ferror(f)) {
        mcig_diag(m, MCIG_MANIFEST_SEV_ERROR, &src, "cannot read the file: %s",
                  strerror(errno));
        free(data);
        fclose(f);
        return MCIG_MANIFEST_ERROR;
    }

    fclose(f);

    if (n == size) {
        mcig_diag(m, MCIG_MANIFEST_SEV_ERROR, &src, "the file changed while "
                  "it was read");
        free(data);
        return MCIG_MANIFEST_ERROR;
    }

    rc = mcig_manifest_load_buffer(m, path, data, n);

    free(data);

    return rc;
}


int
mcig_manifest_load_glob(mcig_manifest_t *m, const char *pattern)
{
    int                  rc, grc;
    size_t               i;
    glob_t               g;
    struct stat          st;
    mcig_manifest_src_t  src;

    if (strpbrk(pattern, "*?[") == NULL) {
        return mcig_manifest_load_file(m, pattern);
    }

    if (mcig_loaded_after_resolve(m, pattern)) {
        return MCIG_MANIFEST_ERROR;
    }

    memset(&src, 0, sizeof(src));
    src.file = mcig_arena_strndup(&m->arena, pattern, strlen(pattern));

    if (src.file == NULL) {
        mcig_oom(m);
        return MCIG_MANIFEST_ERROR;
    }

    memset(&g, 0, sizeof(g));

    grc = glob(pattern, 0, NULL, &g);

    if (grc == GLOB_NOMATCH) {
        mcig_diag(m, MCIG_MANIFEST_SEV_WARNING, &src, "no file matches");
        globfree(&g);
        return MCIG_MANIFEST_OK;
    }

    if (grc == GLOB_NOSPACE) {
        globfree(&g);
        mcig_oom(m);
        return MCIG_MANIFEST_ERROR;
    }

    if (grc != 0) {
        mcig_diag(m, MCIG_MANIFEST_SEV_ERROR, &src, "cannot read the "
                  "directory: %s", strerror(errno));
        globfree(&g);
        return MCIG_MANIFEST_ERROR;
    }

    rc = MCIG_MANIFEST_OK;

    for (i = 0; i < g.gl_pathc; i++) {
        if (stat(g.gl_pathv[i], &st) != 0 || !S_ISREG(st.st_mode)) {
            continue;
        }

        if (mcig_manifest_load_file(m, g.gl_pathv[i]) != MCIG_MANIFEST_OK) {
            rc = MCIG_MANIFEST_ERROR;
        }
    }

    globfree(&g);

    return rc;
}


/* resolving */

enum {
    V_INT = 0,
    V_BOOL,
    V_MODE,
    V_TRAFFIC
};


static const char *
mcig_value_text(const mcig_manifest_int_t *v, int type, char *buf,
    size_t size)
{
    switch (type) {

    case V_BOOL:
        return v->value ? "true" : "false";

    case V_MODE:
        return mcig_mode_names[v->value - 1];

    case V_TRAFFIC:
        return mcig_traffic_names[v->value - 1];
    }

    snprintf(buf, size, "%lld", (long long) v->value);

    return buf;
}


static mcig_manifest_pool_t *
mcig_find_pool(mcig_manifest_t *m, const char *name, size_t len)
{
    void  **slot;

    slot = mcig_hash_find(&m->pool_index, 0, name, len, 0);

    return slot ? &m->pools[(uintptr_t) *slot - 1] : NULL;
}


static void
mcig_merge_int(mcig_manifest_t *m, const mcig_manifest_pool_t *p,
    mcig_manifest_int_t *dst, const mcig_manifest_int_t *v, int type)
{
    char  a[32], b[32];

    if (!v->set) {
        return;
    }

    if (!dst->set) {
        *dst = *v;
        return;
    }

    if (dst->value == v->value) {
        return;
    }

    mcig_diag(m, MCIG_MANIFEST_SEV_ERROR, &v->src, "%s: %s conflicts with %s "
              "for pool \"%s\" (%s:%u:%u)%s", v->src.field,
              mcig_value_text(v, type, a, sizeof(a)),
              mcig_value_text(dst, type, b, sizeof(b)), p->name,
              dst->src.file, dst->src.line, dst->src.column,
              type == V_MODE ? "; the two modes are exclusive" : "");
}


static void
mcig_merge_str(mcig_manifest_t *m, const mcig_manifest_pool_t *p,
    mcig_manifest_str_t *dst, const mcig_manifest_str_t *v)
{
    if (!v->set) {
        return;
    }

    if (!dst->set) {
        *dst = *v;
        return;
    }

    if (strcmp(dst->value, v->value) == 0) {
        return;
    }

    mcig_diag(m, MCIG_MANIFEST_SEV_ERROR, &v->src, "%s: \"%.64s\" conflicts "
              "with \"%.64s\" for pool \"%s\" (%s:%u:%u)", v->src.field,
              v->value, dst->value, p->name, dst->src.file, dst->src.line,
              dst->src.column);
}


static mcig_manifest_pool_t *
mcig_target_pool(mcig_manifest_t *m, const mcig_manifest_str_t *target)
{
    mcig_manifest_pool_t  *p;

    p = mcig_find_pool(m, target->value, strlen(target->value));

    if (p == NULL) {
        mcig_diag(m, MCIG_MANIFEST_SEV_ERROR, &target->src,
                  "%s: no pool is named \"%s\" (no InferencePool, "
                  "GCPInferencePoolImport or upstream with mcig_pool)",
                  target->src.field, target->value);
    }

    return p;
}


static void
mcig_resolve_policies(mcig_manifest_t *m)
{
    int                    interval;
    size_t                 i;
    mcig_link_t           *l;
    mcig_ohealth_t        *h;
    mcig_obackend_t       *b;
    mcig_manifest_pool_t  *p;

    for (l = m->kinds[K_BACKEND].head; l; l = l->next) {
        b = l->data;

        p = mcig_target_pool(m, &b->target);
        if (p == NULL) {
            continue;
        }

        mcig_merge_int(m, p, &p->balancing_mode, &b->balancing_mode, V_MODE);
        mcig_merge_int(m, p, &p->max_utilization, &b->max_utilization,
                       V_INT);
        mcig_merge_int(m, p, &p->dry_run, &b->dry_run, V_BOOL);
        mcig_merge_int(m, p, &p->max_in_flight, &b->max_in_flight, V_INT);
        mcig_merge_int(m, p, &p->timeout_sec, &b->timeout_sec, V_INT);
        mcig_merge_int(m, p, &p->traffic_duration, &b->traffic_duration,
                       V_TRAFFIC);
        mcig_merge_str(m, p, &p->custom_metric, &b->custom_metric);
    }

    for (l = m->kinds[K_HEALTH].head; l; l = l->next) {
        h = l->data;

        p = mcig_target_pool(m, &h->target);
        if (p == NULL) {
            continue;
        }

        if (!p->health_check) {
            p->health_check = 1;
            p->health_check_src = h->obj.src;
        }

        mcig_merge_str(m, p, &p->health_path, &h->path);
        mcig_merge_int(m, p, &p->health_port, &h->port, V_INT);
        mcig_merge_int(m, p, &p->health_interval_sec, &h->interval, V_INT);
        mcig_merge_int(m, p, &p->health_timeout_sec, &h->timeout, V_INT);
        mcig_merge_int(m, p, &p->healthy_threshold, &h->healthy, V_INT);
        mcig_merge_int(m, p, &p->unhealthy_threshold, &h->unhealthy, V_INT);
    }

    /* GCP refuses a timeout longer than the interval, defaults included */
    for (i = 0; i < m->npools; i++) {
        p = &m->pools[i];

        interval = p->health_interval_sec.set
                   ? (int) p->health_interval_sec.value
                   : MCIG_MANIFEST_HC_INTERVAL;

        if (p->health_timeout_sec.set
            && p->health_timeout_sec.value > interval)
        {
            mcig_diag(m, MCIG_MANIFEST_SEV_ERROR, &p->health_timeout_sec.src,
                      "%s: %lld is greater than checkIntervalSec (%d%s)",
                      p->health_timeout_sec.src.field,
                      (long long) p->health_timeout_sec.value, interval,
                      p->health_interval_sec.set ? "" : ", the default");

        } else if (!p->health_timeout_sec.set && p->health_interval_sec.set
                   && p->health_interval_sec.value
                      < MCIG_MANIFEST_HC_TIMEOUT)
        {
            mcig_diag(m, MCIG_MANIFEST_SEV_ERROR,
                      &p->health_interval_sec.src,
                      "%s: %lld is less than timeoutSec (%d, the default)",
                      p->health_interval_sec.src.field,
                      (long long) p->health_interval_sec.value,
                      MCIG_MANIFEST_HC_TIMEOUT);
        }
    }
}


/* every label of the selector is on the other set */
static int
mcig_selects(uint32_t nsel, const mcig_manifest_label_t *sel,
    uint32_t nlabels, const mcig_manifest_label_t *labels)
{
    uint32_t  i, j;

    for (i = 0; i < nsel; i++) {
        for (j = 0; j < nlabels; j++) {
            if (strcmp(sel[i].key, labels[j].key) == 0
                && strcmp(sel[i].value, labels[j].value) == 0)
            {
                break;
            }
        }

        if (j == nlabels) {
            return 0;
        }
    }

    return 1;
}


static void
mcig_resolve_metrics(mcig_manifest_t *m)
{
    int                      found;
    size_t                   i;
    uint32_t                 j, k;
    mcig_link_t             *l, *x;
    mcig_msource_t          *s;
    mcig_pbuild_t           *b;
    mcig_oametric_t         *o;
    mcig_manifest_pool_t    *p;
    mcig_manifest_export_t  *e, *have;

    for (l = m->kinds[K_AMETRIC].head; l; l = l->next) {
        o = l->data;

        for (j = 0; j < o->nsources; j++) {
            s = &o->sources[j];
            found = 0;

            for (i = 0; i < m->npools; i++) {
                p = &m->pools[i];
                b = &m->build[i];

                if (!mcig_selects(s->nlabels, s->labels, p->nlabels,
                                  p->labels))
                {
                    continue;
                }

                found = 1;

                mcig_merge_int(m, p, &p->metrics_port, &s->port, V_INT);
                mcig_merge_str(m, p, &p->metrics_path, &s->path);

                for (k = 0; k < s->nexports; k++) {
                    e = &s->exports[k];
                    have = NULL;

                    for (x = b->exports.head; x; x = x->next) {
                        have = x->data;

                        if (strcmp(have->name, e->name) == 0) {
                            break;
                        }

                        have = NULL;
                    }

                    if (have == NULL) {
                        if (mcig_list_add(&m->arena, &b->exports, e) != 0) {
                            mcig_oom(m);
                            return;
                        }

                    } else if (strcmp(have->metric, e->metric) != 0) {
                        mcig_diag(m, MCIG_MANIFEST_SEV_ERROR, &e->src,
                                  "%s: pool \"%s\" exports \"%.64s\" as "
                                  "%.64s already (%s:%u:%u)", e->src.field,
                                  p->name, e->name, have->metric,
                                  have->src.file, have->src.line,
                                  have->src.column);
                    }
                }
            }

            if (!found) {
                mcig_diag(m, MCIG_MANIFEST_SEV_WARNING, &s->src,
                          "%s: AutoscalingMetric %s selects no pool",
                          s->src.field, o->obj.id);
            }
        }
    }

    for (i = 0; i < m->npools; i++) {
        p = &m->pools[i];

        if (!p->custom_metric.set) {
            continue;
        }

        for (x = m->build[i].exports.head; x; x = x->next) {
            e = x->data;

            if (strcmp(e->name, p->custom_metric.value) == 0) {
                p->kv_metric.set = 1;
                p->kv_metric.value = e->metric;
                p->kv_metric.src = e->src;
                break;
            }
        }

        if (!p->kv_metric.set) {
            mcig_diag(m, MCIG_MANIFEST_SEV_ERROR, &p->custom_metric.src,
                      "%s: no AutoscalingMetric exports \"%.64s\" for pool "
                      "\"%s\"", p->custom_metric.src.field,
                      p->custom_metric.value, p->name);
        }
    }
}


static void
mcig_resolve_objectives(mcig_manifest_t *m)
{
    void                       **slot;
    mcig_hash_t                  names;
    mcig_link_t                 *l;
    mcig_oobjective_t           *o;
    mcig_manifest_pool_t        *p;
    mcig_manifest_objective_t   *obj, *first;

    memset(&names, 0, sizeof(names));

    for (l = m->kinds[K_OBJECTIVE].head; l; l = l->next) {
        o = l->data;

        p = mcig_find_pool(m, o->pool.value, strlen(o->pool.value));

        if (p == NULL) {
            mcig_diag(m, MCIG_MANIFEST_SEV_WARNING, &o->pool.src,
                      "%s: no pool is named \"%s\"; the objective %s "
                      "applies to no pool", o->pool.src.field, o->pool.value,
                      o->obj.name);
            continue;
        }

        slot = mcig_hash_find(&names, (uintptr_t) (p - m->pools) + 1,
                              o->obj.name, strlen(o->obj.name), 1);
        if (slot == NULL) {
            mcig_oom(m);
            break;
        }

        if (*slot != NULL) {
            first = *slot;
            mcig_diag(m, MCIG_MANIFEST_SEV_ERROR, &o->obj.src,
                      "%s: pool \"%s\" has an objective %s already (%s:%u:%u)",
                      o->obj.src.field, p->name, o->obj.name,
                      first->src.file, first->src.line, first->src.column);
            continue;
        }

        obj = mcig_arena_alloc(&m->arena, sizeof(mcig_manifest_objective_t));
        if (obj == NULL) {
            mcig_oom(m);
            break;
        }

        obj->name = o->obj.name;
        obj->priority = o->priority;
        obj->src = o->obj.src;
        *slot = obj;

        if (mcig_list_add(&m->arena, &m->build[p - m->pools].objectives, obj)
            != 0)
        {
            mcig_oom(m);
            break;
        }
    }

    mcig_hash_free(&names);
}


static void
mcig_resolve_rewrites(mcig_manifest_t *m)
{
    void                 **slot;
    uint32_t               i, j;
    mcig_hash_t            models;
    mcig_link_t           *l;
    mcig_orewrite_t       *o;
    mcig_manifest_rule_t  *r, *first;
    mcig_manifest_pool_t  *p;

    memset(&models, 0, sizeof(models));

    for (l = m->kinds[K_REWRITE].head; l; l = l->next) {
        o = l->data;

        p = mcig_find_pool(m, o->pool.value, strlen(o->pool.value));

        if (p == NULL) {
            mcig_diag(m, MCIG_MANIFEST_SEV_WARNING, &o->pool.src,
                      "%s: no pool is named \"%s\"; the rewrite %s applies "
                      "to no pool", o->pool.src.field, o->pool.value,
                      o->obj.name);
            continue;
        }

        for (i = 0; i < o->nrules; i++) {
            r = &o->rules[i];

            /* "" stands for the rule without matches */
            for (j = 0; j < r->nmodels || (j == 0 && r->nmodels == 0); j++) {
                slot = mcig_hash_find(&models,
                                      (uintptr_t) (p - m->pools) + 1,
                                      r->nmodels ? r->models[j] : "",
                                      r->nmodels ? strlen(r->models[j]) : 0,
                                      1);
                if (slot == NULL) {
                    mcig_oom(m);
                    goto done;
                }

                if (*slot == NULL) {
                    *slot = r;
                    continue;
                }

                first = *slot;

                if (first == r) {
                    continue;
                }

                if (r->nmodels) {
                    mcig_diag(m, MCIG_MANIFEST_SEV_WARNING, &r->src,
                              "%s: model \"%.64s\" of pool \"%s\" is matched "
                              "by an earlier rule (%s:%u:%u); this rule "
                              "never applies to it", r->src.field,
                              r->models[j], p->name, first->src.file,
                              first->src.line, first->src.column);

                } else {
                    mcig_diag(m, MCIG_MANIFEST_SEV_WARNING, &r->src,
                              "%s: an earlier rule without matches of pool "
                              "\"%s\" (%s:%u:%u) applies first; this rule "
                              "never applies", r->src.field, p->name,
                              first->src.file, first->src.line,
                              first->src.column);
                }
            }

            if (mcig_list_add(&m->arena, &m->build[p - m->pools].rules, r)
                != 0)
            {
                mcig_oom(m);
                goto done;
            }
        }
    }

done:

    mcig_hash_free(&models);
}


/* the region of a zone: europe-west3-a -> europe-west3, us-east-1a -> ... */
static const char *
mcig_region_of(mcig_manifest_t *m, const char *zone)
{
    size_t  n;

    n = strlen(zone);

    if (n >= 3 && zone[n - 2] == '-' && zone[n - 1] >= 'a'
        && zone[n - 1] <= 'z')
    {
        return mcig_arena_strndup(&m->arena, zone, n - 2);
    }

    if (n >= 2 && zone[n - 2] >= '0' && zone[n - 2] <= '9'
        && zone[n - 1] >= 'a' && zone[n - 1] <= 'z')
    {
        return mcig_arena_strndup(&m->arena, zone, n - 1);
    }

    return zone;
}


static int
mcig_add_members(mcig_manifest_t *m, mcig_hash_t *seen, mcig_oslice_t *o,
    size_t pi)
{
    char                     text[MCIG_NAME_MAX + 16];
    void                   **slot;
    size_t                   len;
    uint32_t                 i, j, nports;
    const uint32_t          *ports;
    uint32_t                 target[MCIG_MANIFEST_TARGET_PORTS_MAX];
    mcig_endpoint_t         *e;
    mcig_manifest_pool_t    *p;
    mcig_manifest_member_t  *mb, *first;

    p = &m->pools[pi];

    if (p->manifest && p->ntarget_ports) {
        for (i = 0; i < p->ntarget_ports; i++) {
            target[i] = (uint32_t) p->target_ports[i].value;
        }

        ports = target;
        nports = p->ntarget_ports;

    } else {
        ports = o->ports;
        nports = o->nports;
    }

    if (nports == 0 && o->nendpoints) {
        mcig_diag(m, MCIG_MANIFEST_SEV_ERROR, &o->obj.src, "%s: EndpointSlice "
                  "%s has no port, and pool \"%s\" has no targetPorts",
                  o->obj.src.field, o->obj.id, p->name);
        return 0;
    }

    for (i = 0; i < o->nendpoints; i++) {
        e = &o->endpoints[i];

        for (j = 0; j < nports; j++) {
            len = (size_t) snprintf(text, sizeof(text),
                                    e->ipv6 ? "[%s]:%u" : "%s:%u",
                                    e->address, ports[j]);

            mb = mcig_arena_alloc(&m->arena, sizeof(mcig_manifest_member_t));
            if (mb == NULL) {
                return -1;
            }

            mb->text = mcig_arena_strndup(&m->arena, text, len);
            if (mb->text == NULL) {
                return -1;
            }

            if (m->nmembers >= MCIG_MANIFEST_MEMBERS_MAX) {
                return 1;
            }

            slot = mcig_hash_find(seen, pi + 1, mb->text, len, 1);
            if (slot == NULL) {
                return -1;
            }

            if (*slot != NULL) {
                first = *slot;
                mcig_diag(m, MCIG_MANIFEST_SEV_WARNING, &e->src,
                          "%s: member %s of pool \"%s\" is listed already "
                          "(%s:%u:%u); it is kept once", e->src.field,
                          mb->text, p->name, first->src.file,
                          first->src.line, first->src.column);
                continue;
            }

            *slot = mb;

            mb->address = e->address;
            mb->port = ports[j];
            mb->zone = e->zone;
            mb->region = e->zone ? mcig_region_of(m, e->zone) : NULL;
            mb->ready = e->ready;
            mb->slice = o->obj.id;
            mb->src = e->src;

            if (e->zone && mb->region == NULL) {
                return -1;
            }

            if (mcig_list_add(&m->arena, &m->build[pi].members, mb) != 0) {
                return -1;
            }

            m->nmembers++;
        }
    }

    return 0;
}


static void
mcig_resolve_slices(mcig_manifest_t *m)
{
    int                    found, rc;
    size_t                 i;
    uint32_t               j;
    mcig_hash_t            seen;
    mcig_link_t           *l;
    const char            *named;
    mcig_oslice_t         *o;
    mcig_manifest_pool_t  *p;

    memset(&seen, 0, sizeof(seen));
    rc = 0;
    o = NULL;

    for (l = m->kinds[K_SLICE].head; l; l = l->next) {
        o = l->data;
        p = NULL;
        named = NULL;

        for (j = 0; j < o->obj.nlabels; j++) {
            if (strcmp(o->obj.labels[j].key, MCIG_POOL_LABEL) == 0) {
                named = o->obj.labels[j].value;
                break;
            }
        }

        if (named != NULL) {
            p = mcig_find_pool(m, named, strlen(named));

            if (p == NULL) {
                mcig_diag(m, MCIG_MANIFEST_SEV_WARNING, &o->obj.src,
                          "%s: the label %s of EndpointSlice %s names no "
                          "pool; the slice is ignored", o->obj.src.field,
                          MCIG_POOL_LABEL, o->obj.id);
                continue;
            }
        }

        for (j = 0; p == NULL && j < o->obj.nlabels; j++) {
            if (strcmp(o->obj.labels[j].key, MCIG_SERVICE_LABEL) == 0) {
                named = o->obj.labels[j].value;
                p = mcig_find_pool(m, named, strlen(named));
            }
        }

        if (p != NULL) {
            rc = mcig_add_members(m, &seen, o, p - m->pools);

            if (rc != 0) {
                break;
            }

            continue;
        }

        found = 0;

        for (i = 0; i < m->npools; i++) {
            p = &m->pools[i];

            if (p->nlabels == 0
                || !mcig_selects(p->nlabels, p->labels, o->obj.nlabels,
                                 o->obj.labels))
            {
                continue;
            }

            found = 1;
            rc = mcig_add_members(m, &seen, o, i);

            if (rc != 0) {
                goto done;
            }
        }

        if (!found) {
            mcig_diag(m, MCIG_MANIFEST_SEV_WARNING, &o->obj.src,
                      "%s: EndpointSlice %s belongs to no pool and is "
                      "ignored", o->obj.src.field, o->obj.id);
        }
    }

done:

    mcig_hash_free(&seen);

    if (rc < 0) {
        mcig_oom(m);

    } else if (rc > 0) {
        mcig_diag(m, MCIG_MANIFEST_SEV_ERROR, &o->obj.src, "%s: EndpointSlice "
                  "%s brings the members of all pools over %d",
                  o->obj.src.field, o->obj.id, MCIG_MANIFEST_MEMBERS_MAX);
    }
}


static void
mcig_resolve_routes(mcig_manifest_t *m)
{
    size_t                     n;
    mcig_link_t               *l, *x;
    mcig_oroute_t             *r;
    mcig_ogateway_t           *g;
    mcig_manifest_route_t     *e;

    n = 0;

    for (l = m->kinds[K_ROUTE].head; l; l = l->next) {
        r = l->data;
        n += r->entries.n;
    }

    if (n) {
        m->routes = mcig_arena_alloc(&m->arena,
                                     sizeof(mcig_manifest_route_t) * n);
        if (m->routes == NULL) {
            mcig_oom(m);
            return;
        }
    }

    for (l = m->kinds[K_ROUTE].head; l; l = l->next) {
        r = l->data;

        for (x = r->entries.head; x; x = x->next) {
            e = &m->routes[m->nroutes++];
            *e = *(mcig_manifest_route_t *) x->data;
            e->pool_known = mcig_find_pool(m, e->pool, strlen(e->pool))
                            != NULL;

            if (!e->pool_known) {
                mcig_diag(m, MCIG_MANIFEST_SEV_WARNING, &e->src,
                          "%s: no pool is named \"%s\"; the route entry is "
                          "kept for information", e->src.field, e->pool);
            }
        }
    }

    n = 0;

    for (l = m->kinds[K_GATEWAY].head; l; l = l->next) {
        g = l->data;
        n += g->nlisteners;
    }

    if (n) {
        m->listeners = mcig_arena_alloc(&m->arena,
                                        sizeof(mcig_manifest_listener_t) * n);
        if (m->listeners == NULL) {
            mcig_oom(m);
            return;
        }
    }

    for (l = m->kinds[K_GATEWAY].head; l; l = l->next) {
        g = l->data;

        if (g->nlisteners == 0) {
            continue;
        }

        memcpy(&m->listeners[m->nlisteners], g->listeners,
               sizeof(mcig_manifest_listener_t) * g->nlisteners);
        m->nlisteners += g->nlisteners;
    }
}


static int
mcig_build_pools(mcig_manifest_t *m)
{
    size_t                 i;
    void                 **slot;
    mcig_link_t           *l;
    mcig_seed_t           *seed;
    mcig_opool_t          *o;
    mcig_manifest_pool_t  *p;

    m->npools = m->seeds.n;

    if (m->npools == 0) {
        return 0;
    }

    m->pools = calloc(m->npools, sizeof(mcig_manifest_pool_t));
    m->build = calloc(m->npools, sizeof(mcig_pbuild_t));

    if (m->pools == NULL || m->build == NULL) {
        m->npools = 0;
        return -1;
    }

    for (i = 0, l = m->seeds.head; l; i++, l = l->next) {
        seed = l->data;
        p = &m->pools[i];

        p->name = seed->name;
        p->registered = seed->registered;
        p->imported = seed->imported;

        slot = mcig_hash_find(&m->pool_index, 0, p->name, strlen(p->name), 1);
        if (slot == NULL) {
            return -1;
        }

        *slot = (void *) (uintptr_t) (i + 1);

        o = seed->pool;

        if (o == NULL) {
            /* the InferencePool Helm chart's selector: app: <pool name> */
            p->default_selector = 1;
            m->build[i].app.key = "app";
            m->build[i].app.value = p->name;
            p->nlabels = 1;
            p->labels = &m->build[i].app;
            continue;
        }

        p->manifest = 1;
        p->src = o->obj.src;
        p->ntarget_ports = o->ntarget_ports;
        memcpy(p->target_ports, o->target_ports, sizeof(p->target_ports));
        p->nlabels = o->nlabels;
        p->labels = o->labels;
        p->picker = o->picker;
        p->picker_port = o->picker_port;
        p->picker_failure_mode = o->picker_failure_mode;
    }

    return 0;
}


int
mcig_manifest_resolve(mcig_manifest_t *m)
{
    size_t                 i, errors;
    mcig_pbuild_t         *b;
    mcig_manifest_pool_t  *p;

    if (m->resolved) {
        return m->resolve_rc;
    }

    m->resolved = 1;
    errors = m->nerrors;

    if (mcig_build_pools(m) != 0) {
        mcig_oom(m);
        m->resolve_rc = MCIG_MANIFEST_ERROR;
        return m->resolve_rc;
    }

    mcig_resolve_policies(m);
    mcig_resolve_metrics(m);
    mcig_resolve_objectives(m);
    mcig_resolve_rewrites(m);
    mcig_resolve_slices(m);
    mcig_resolve_routes(m);

    for (i = 0; i < m->npools; i++) {
        p = &m->pools[i];
        b = &m->build[i];

        p->nexports = b->exports.n;
        p->exports = mcig_list_flatten(&m->arena, &b->exports,
                                       sizeof(mcig_manifest_export_t));
        p->nmembers = b->members.n;
        p->members = mcig_list_flatten(&m->arena, &b->members,
                                       sizeof(mcig_manifest_member_t));
        p->nobjectives = b->objectives.n;
        p->objectives = mcig_list_flatten(&m->arena, &b->objectives,
                                         sizeof(mcig_manifest_objective_t));
        p->nrules = b->rules.n;
        p->rules = mcig_list_flatten(&m->arena, &b->rules,
                                     sizeof(mcig_manifest_rule_t));

        if ((p->nexports && p->exports == NULL)
            || (p->nmembers && p->members == NULL)
            || (p->nobjectives && p->objectives == NULL)
            || (p->nrules && p->rules == NULL))
        {
            p->nexports = 0;
            p->nmembers = 0;
            p->nobjectives = 0;
            p->nrules = 0;
            mcig_oom(m);
        }
    }

    m->resolve_rc = (m->nerrors == errors) ? MCIG_MANIFEST_OK
                                           : MCIG_MANIFEST_ERROR;

    return m->resolve_rc;
}


/* the public side: reading */

size_t
mcig_manifest_ndiags(const mcig_manifest_t *m)
{
    return m->ndiags;
}


const mcig_manifest_diag_t *
mcig_manifest_diag(const mcig_manifest_t *m, size_t i)
{
    return (i < m->ndiags) ? &m->diags[i] : NULL;
}


size_t
mcig_manifest_nerrors(const mcig_manifest_t *m)
{
    return m->nerrors;
}


size_t
mcig_manifest_nwarnings(const mcig_manifest_t *m)
{
    return m->nwarnings;
}


size_t
mcig_manifest_ndropped(const mcig_manifest_t *m)
{
    return m->ndropped;
}


size_t
mcig_manifest_npools(const mcig_manifest_t *m)
{
    return m->resolved ? m->npools : 0;
}


const mcig_manifest_pool_t *
mcig_manifest_pool(const mcig_manifest_t *m, size_t i)
{
    return (m->resolved && i < m->npools) ? &m->pools[i] : NULL;
}


const mcig_manifest_pool_t *
mcig_manifest_pool_find(const mcig_manifest_t *m, const char *name,
    size_t len)
{
    if (!m->resolved) {
        return NULL;
    }

    /* the index is not changed by a look-up */
    return mcig_find_pool((mcig_manifest_t *) m, name, len);
}


size_t
mcig_manifest_nroutes(const mcig_manifest_t *m)
{
    return m->nroutes;
}


const mcig_manifest_route_t *
mcig_manifest_route(const mcig_manifest_t *m, size_t i)
{
    return (i < m->nroutes) ? &m->routes[i] : NULL;
}


size_t
mcig_manifest_nlisteners(const mcig_manifest_t *m)
{
    return m->nlisteners;
}


const mcig_manifest_listener_t *
mcig_manifest_listener(const mcig_manifest_t *m, size_t i)
{
    return (i < m->nlisteners) ? &m->listeners[i] : NULL;
}


const mcig_manifest_rule_t *
mcig_manifest_rewrite_rule(const mcig_manifest_pool_t *pool,
    const char *model, size_t len)
{
    uint32_t                     i, j;
    const mcig_manifest_rule_t  *r, *generic;

    generic = NULL;

    for (i = 0; i < pool->nrules; i++) {
        r = &pool->rules[i];

        if (r->nmodels == 0) {
            if (generic == NULL) {
                generic = r;
            }

            continue;
        }

        for (j = 0; j < r->nmodels; j++) {
            if (strlen(r->models[j]) == len
                && memcmp(r->models[j], model, len) == 0)
            {
                return r;
            }
        }
    }

    return generic;
}


const char *
mcig_manifest_rewrite_pick(const mcig_manifest_rule_t *rule, uint64_t draw)
{
    uint32_t  i;
    uint64_t  x;

    if (rule->ntargets == 0 || rule->total_weight == 0) {
        return NULL;
    }

    x = draw % rule->total_weight;

    for (i = 0; i < rule->ntargets - 1; i++) {
        if (x < rule->targets[i].weight) {
            break;
        }

        x -= rule->targets[i].weight;
    }

    return rule->targets[i].model;
}
