/*
 * Unit tests of the manifest loader: every kind read back, every
 * diagnostic with its exact text, files, globs and limits, and the
 * manifests of conf.d/.  Run from the repository root.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "mcig_manifest.h"


#define DIAGS_TEXT_MAX  65536


/* a model from one buffer named t.yaml, pools registered first */
static mcig_manifest_t *
load(const char *pools, const char *yaml)
{
    const char       *p, *comma;
    mcig_manifest_t  *m;

    m = mcig_manifest_create();
    assert_non_null(m);

    for (p = pools; p && *p; p = comma ? comma + 1 : p + strlen(p)) {
        comma = strchr(p, ',');
        assert_int_equal(mcig_manifest_add_known_pool(m, p,
                             comma ? (size_t) (comma - p) : strlen(p)),
                         MCIG_MANIFEST_OK);
    }

    mcig_manifest_load_buffer(m, "t.yaml", yaml, strlen(yaml));
    mcig_manifest_resolve(m);

    return m;
}


/* every diagnostic as "E text" or "W text", one a line */
static void
expect_diags(const mcig_manifest_t *m, const char *expected)
{
    char                         *buf;
    size_t                        i, n;
    const mcig_manifest_diag_t   *d;

    buf = malloc(DIAGS_TEXT_MAX);
    assert_non_null(buf);

    n = 0;
    buf[0] = '\0';

    for (i = 0; i < mcig_manifest_ndiags(m); i++) {
        d = mcig_manifest_diag(m, i);
        n += snprintf(buf + n, DIAGS_TEXT_MAX - n, "%c %s\n",
                      d->severity == MCIG_MANIFEST_SEV_ERROR ? 'E' : 'W',
                      d->text);
        assert_true(n < DIAGS_TEXT_MAX);
    }

    if (strcmp(buf, expected) != 0) {
        fprintf(stderr, "diagnostics:\n%s", buf);
    }

    assert_string_equal(buf, expected);
    free(buf);
}


/* the model of one buffer must have these diagnostics, and nothing else */
static void
check(const char *pools, const char *yaml, const char *expected)
{
    mcig_manifest_t  *m;

    m = load(pools, yaml);
    expect_diags(m, expected);
    mcig_manifest_destroy(m);
}


static const mcig_manifest_pool_t *
pool(const mcig_manifest_t *m, const char *name)
{
    const mcig_manifest_pool_t  *p;

    p = mcig_manifest_pool_find(m, name, strlen(name));
    assert_non_null(p);
    assert_string_equal(p->name, name);

    return p;
}


static void
assert_src(const mcig_manifest_src_t *src, const char *file, uint32_t line,
    uint32_t column, const char *field)
{
    assert_string_equal(src->file, file);
    assert_int_equal(src->line, line);
    assert_int_equal(src->column, column);
    assert_string_equal(src->field, field);
}


static char *
read_file(const char *path)
{
    long   n;
    FILE  *f;
    char  *data;

    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);

    data = malloc(n + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, n, f), n);
    data[n] = '\0';
    fclose(f);

    return data;
}


static void
write_file(const char *path, const char *text)
{
    FILE  *f;

    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}


/* the kinds, read back */

static const char  pool_v1[] =
    "apiVersion: inference.networking.k8s.io/v1\n"
    "kind: InferencePool\n"
    "metadata:\n"
    "  name: vllm-llama3-8b-instruct\n"
    "  namespace: default\n"
    "spec:\n"
    "  selector:\n"
    "    matchLabels:\n"
    "      app: vllm-llama3-8b-instruct\n"
    "  targetPorts:\n"
    "  - number: 8000\n"
    "  - number: 8001\n"
    "  endpointPickerRef:\n"
    "    name: vllm-llama3-8b-instruct-epp\n"
    "    port:\n"
    "      number: 9002\n"
    "    failureMode: FailClose\n";


static void
test_inference_pool(void **state)
{
    mcig_manifest_t             *m;
    const mcig_manifest_pool_t  *p;

    (void) state;

    m = load(NULL, pool_v1);
    expect_diags(m, "");

    assert_int_equal(mcig_manifest_npools(m), 1);
    p = mcig_manifest_pool(m, 0);
    assert_ptr_equal(p, pool(m, "vllm-llama3-8b-instruct"));

    assert_true(p->manifest);
    assert_false(p->registered);
    assert_false(p->default_selector);
    assert_src(&p->src, "t.yaml", 4, 9, "metadata.name");

    assert_int_equal(p->ntarget_ports, 2);
    assert_int_equal(p->target_ports[0].value, 8000);
    assert_int_equal(p->target_ports[1].value, 8001);
    assert_src(&p->target_ports[1].src, "t.yaml", 12, 13,
               "spec.targetPorts[1].number");

    assert_int_equal(p->nlabels, 1);
    assert_string_equal(p->labels[0].key, "app");
    assert_string_equal(p->labels[0].value, "vllm-llama3-8b-instruct");

    assert_true(p->picker.set);
    assert_string_equal(p->picker.value, "vllm-llama3-8b-instruct-epp");
    assert_int_equal(p->picker_port.value, 9002);
    assert_string_equal(p->picker_failure_mode.value, "FailClose");

    /* nothing else is set */
    assert_false(p->balancing_mode.set);
    assert_false(p->timeout_sec.set);
    assert_false(p->health_check);
    assert_false(p->metrics_port.set);
    assert_int_equal(p->nmembers, 0);
    assert_int_equal(p->nobjectives, 0);
    assert_int_equal(p->nrules, 0);

    assert_null(mcig_manifest_pool_find(m, "other", 5));
    assert_null(mcig_manifest_pool(m, 1));

    mcig_manifest_destroy(m);
}


static void
test_inference_pool_v1alpha2(void **state)
{
    mcig_manifest_t             *m;
    const mcig_manifest_pool_t  *p;

    (void) state;

    m = load(NULL,
             "apiVersion: inference.networking.x-k8s.io/v1alpha2\n"
             "kind: InferencePool\n"
             "metadata:\n"
             "  name: old\n"
             "spec:\n"
             "  selector:\n"
             "    app: old\n"
             "  targetPortNumber: 8000\n"
             "  extensionRef:\n"
             "    name: old-epp\n"
             "    portNumber: 9002\n"
             "    failureMode: FailOpen\n");
    expect_diags(m, "");

    p = pool(m, "old");
    assert_int_equal(p->ntarget_ports, 1);
    assert_int_equal(p->target_ports[0].value, 8000);
    assert_int_equal(p->nlabels, 1);
    assert_string_equal(p->labels[0].value, "old");
    assert_string_equal(p->picker.value, "old-epp");
    assert_int_equal(p->picker_port.value, 9002);
    assert_string_equal(p->picker_failure_mode.value, "FailOpen");

    mcig_manifest_destroy(m);
}


static void
test_objectives(void **state)
{
    mcig_manifest_t             *m;
    const mcig_manifest_pool_t  *p;

    (void) state;

    m = load("pool-a",
             "apiVersion: inference.networking.x-k8s.io/v1alpha2\n"
             "kind: InferenceObjective\n"
             "metadata:\n"
             "  name: food-review\n"
             "spec:\n"
             "  priority: 10\n"
             "  poolRef:\n"
             "    name: pool-a\n"
             "    group: \"inference.networking.k8s.io\"\n"
             "---\n"
             "apiVersion: inference.networking.x-k8s.io/v1alpha2\n"
             "kind: InferenceObjective\n"
             "metadata:\n"
             "  name: batch\n"
             "spec:\n"
             "  priority: -1\n"
             "  poolRef: {name: pool-a}\n"
             "---\n"
             "apiVersion: inference.networking.x-k8s.io/v1alpha2\n"
             "kind: InferenceObjective\n"
             "metadata:\n"
             "  name: plain\n"
             "spec:\n"
             "  poolRef: {name: pool-a, kind: InferencePool}\n");
    expect_diags(m, "");

    p = pool(m, "pool-a");
    assert_true(p->registered);
    assert_true(p->default_selector);
    assert_int_equal(p->nobjectives, 3);

    assert_string_equal(p->objectives[0].name, "food-review");
    assert_true(p->objectives[0].priority.set);
    assert_int_equal(p->objectives[0].priority.value, 10);
    assert_src(&p->objectives[0].priority.src, "t.yaml", 6, 13,
               "spec.priority");
    assert_src(&p->objectives[0].src, "t.yaml", 4, 9, "metadata.name");

    assert_string_equal(p->objectives[1].name, "batch");
    assert_int_equal(p->objectives[1].priority.value, -1);

    /* unset is 0 */
    assert_string_equal(p->objectives[2].name, "plain");
    assert_false(p->objectives[2].priority.set);
    assert_int_equal(p->objectives[2].priority.value, 0);

    mcig_manifest_destroy(m);
}


static const char  rewrites[] =
    "apiVersion: inference.networking.x-k8s.io/v1alpha2\n"
    "kind: InferenceModelRewrite\n"
    "metadata:\n"
    "  name: canary\n"
    "spec:\n"
    "  poolRef:\n"
    "    group: inference.networking.k8s.io\n"
    "    name: pool-a\n"
    "  rules:\n"
    "  - matches:\n"
    "    - model:\n"
    "        type: Exact\n"
    "        value: food-review\n"
    "    - model: {value: food}\n"
    "    targets:\n"
    "    - modelRewrite: food-review-v1\n"
    "      weight: 90\n"
    "    - modelRewrite: food-review-v2\n"
    "      weight: 10\n"
    "---\n"
    "apiVersion: inference.networking.k8s.io/v1alpha2\n"
    "kind: InferenceModelRewrite\n"
    "metadata:\n"
    "  name: fallback\n"
    "spec:\n"
    "  poolRef: {name: pool-a}\n"
    "  rules:\n"
    "  - matches: []\n"
    "    targets:\n"
    "    - modelRewrite: base\n"
    "    - modelRewrite: base-2\n"
    "  - targets:\n"
    "    - modelRewrite: never\n"
    "  - matches:\n"
    "    - model: {value: food}\n"
    "    targets:\n"
    "    - modelRewrite: shadowed\n";


static void
test_rewrites(void **state)
{
    const char                  *pick;
    mcig_manifest_t             *m;
    const mcig_manifest_rule_t  *r;
    const mcig_manifest_pool_t  *p;

    (void) state;

    m = load("pool-a", rewrites);
    expect_diags(m,
        "W t.yaml:32:5: spec.rules[1]: an earlier rule without matches of "
        "pool \"pool-a\" (t.yaml:28:5) applies first; this rule never "
        "applies\n"
        "W t.yaml:34:5: spec.rules[2]: model \"food\" of pool \"pool-a\" is "
        "matched by an earlier rule (t.yaml:10:5); this rule never applies "
        "to it\n");

    p = pool(m, "pool-a");
    assert_int_equal(p->nrules, 4);

    r = &p->rules[0];
    assert_string_equal(r->rewrite, "default/canary");
    assert_int_equal(r->nmodels, 2);
    assert_string_equal(r->models[0], "food-review");
    assert_string_equal(r->models[1], "food");
    assert_int_equal(r->ntargets, 2);
    assert_string_equal(r->targets[0].model, "food-review-v1");
    assert_int_equal(r->targets[0].weight, 90);
    assert_int_equal(r->targets[1].weight, 10);
    assert_int_equal(r->total_weight, 100);
    assert_src(&r->src, "t.yaml", 10, 5, "spec.rules[0]");

    /* no weights: equal ones */
    r = &p->rules[1];
    assert_int_equal(r->nmodels, 0);
    assert_int_equal(r->ntargets, 2);
    assert_int_equal(r->targets[0].weight, 1);
    assert_int_equal(r->total_weight, 2);

    /* exact matches win over the rule without matches, the first wins */
    assert_ptr_equal(mcig_manifest_rewrite_rule(p, "food-review", 11),
                     &p->rules[0]);
    assert_ptr_equal(mcig_manifest_rewrite_rule(p, "food", 4), &p->rules[0]);
    assert_ptr_equal(mcig_manifest_rewrite_rule(p, "other", 5),
                     &p->rules[1]);
    assert_ptr_equal(mcig_manifest_rewrite_rule(p, "foo", 3), &p->rules[1]);

    r = &p->rules[0];
    assert_string_equal(mcig_manifest_rewrite_pick(r, 0), "food-review-v1");
    assert_string_equal(mcig_manifest_rewrite_pick(r, 89), "food-review-v1");
    assert_string_equal(mcig_manifest_rewrite_pick(r, 90), "food-review-v2");
    assert_string_equal(mcig_manifest_rewrite_pick(r, 99), "food-review-v2");
    assert_string_equal(mcig_manifest_rewrite_pick(r, 100),
                        "food-review-v1");

    pick = mcig_manifest_rewrite_pick(&p->rules[1], 1);
    assert_string_equal(pick, "base-2");

    mcig_manifest_destroy(m);

    /* without rules of exact matches, none applies to a pool without any */
    m = load("pool-b", pool_v1);
    assert_null(mcig_manifest_rewrite_rule(pool(m, "pool-b"), "x", 1));
    mcig_manifest_destroy(m);
}


static const char  backend_policy[] =
    "apiVersion: networking.gke.io/v1\n"
    "kind: GCPBackendPolicy\n"
    "metadata:\n"
    "  name: my-backend-policy\n"
    "spec:\n"
    "  targetRef:\n"
    "    group: \"networking.gke.io\"\n"
    "    kind: GCPInferencePoolImport\n"
    "    name: pool-a\n"
    "  default:\n"
    "    timeoutSec: 100\n"
    "    balancingMode: CUSTOM_METRICS\n"
    "    trafficDuration: LONG\n"
    "    maxInFlightRequestsPerEndpoint: 300\n"
    "    customMetrics:\n"
    "    - name: gke.named_metrics.kv-cache\n"
    "      dryRun: true\n"
    "      maxUtilizationPercent: 70\n"
    "---\n"
    "apiVersion: autoscaling.gke.io/v1beta1\n"
    "kind: AutoscalingMetric\n"
    "metadata:\n"
    "  name: gpu-cache\n"
    "spec:\n"
    "  selector:\n"
    "    matchLabels:\n"
    "      app: pool-a\n"
    "  endpoints:\n"
    "  - port: 9400\n"
    "    path: /stats\n"
    "  metrics:\n"
    "  - name: vllm:kv_cache_usage_perc{engine=\"0\"}\n"
    "    exportName: kv-cache\n"
    "  - name: vllm:gpu_cache_usage_perc\n"
    "    exportName: kv-cache-old\n";


static void
test_backend_policy(void **state)
{
    mcig_manifest_t             *m;
    const mcig_manifest_pool_t  *p;

    (void) state;

    m = load("pool-a", backend_policy);
    expect_diags(m, "");

    p = pool(m, "pool-a");

    assert_true(p->balancing_mode.set);
    assert_int_equal(p->balancing_mode.value,
                     MCIG_MANIFEST_MODE_CUSTOM_METRICS);
    assert_src(&p->balancing_mode.src, "t.yaml", 12, 20,
               "spec.default.balancingMode");

    assert_int_equal(p->timeout_sec.value, 100);
    assert_src(&p->timeout_sec.src, "t.yaml", 11, 17,
               "spec.default.timeoutSec");
    assert_int_equal(p->traffic_duration.value, MCIG_MANIFEST_TRAFFIC_LONG);
    assert_int_equal(p->max_in_flight.value, 300);

    assert_string_equal(p->custom_metric.value, "kv-cache");
    assert_int_equal(p->max_utilization.value, 70);
    assert_src(&p->max_utilization.src, "t.yaml", 18, 30,
               "spec.default.customMetrics[0].maxUtilizationPercent");
    assert_true(p->dry_run.set);
    assert_int_equal(p->dry_run.value, 1);

    /* the AutoscalingMetric, by the default selector app: pool-a */
    assert_int_equal(p->metrics_port.value, 9400);
    assert_string_equal(p->metrics_path.value, "/stats");
    assert_int_equal(p->nexports, 2);
    assert_string_equal(p->exports[0].name, "kv-cache");
    assert_string_equal(p->exports[1].metric, "vllm:gpu_cache_usage_perc");

    assert_true(p->kv_metric.set);
    assert_string_equal(p->kv_metric.value,
                        "vllm:kv_cache_usage_perc{engine=\"0\"}");
    assert_src(&p->kv_metric.src, "t.yaml", 32, 11, "spec.metrics[0].name");

    assert_false(p->health_check);

    mcig_manifest_destroy(m);
}


static void
test_autoscaling_metric_pod_shape(void **state)
{
    mcig_manifest_t             *m;
    const mcig_manifest_pool_t  *p;

    (void) state;

    /* the newer shape, selected through an InferencePool's selector */
    m = load(NULL,
             "apiVersion: inference.networking.k8s.io/v1\n"
             "kind: InferencePool\n"
             "metadata: {name: pool-a}\n"
             "spec:\n"
             "  selector: {matchLabels: {app: vllm, tier: gpu}}\n"
             "  targetPorts: [{number: 8000}]\n"
             "---\n"
             "apiVersion: autoscaling.gke.io/v1beta1\n"
             "kind: AutoscalingMetric\n"
             "metadata: {name: gpu-cache, namespace: serving}\n"
             "spec:\n"
             "  metrics:\n"
             "  - pod:\n"
             "      selector:\n"
             "        matchLabels:\n"
             "          app: vllm\n"
             "      containers:\n"
             "      - endpoint:\n"
             "          port: 8000\n"
             "          path: /metrics\n"
             "        metrics:\n"
             "        - gauge:\n"
             "            name: kv-cache\n"
             "            prometheusMetricName: vllm:kv_cache_usage_perc\n"
             "---\n"
             "apiVersion: autoscaling.gke.io/v1beta1\n"
             "kind: AutoscalingMetric\n"
             "metadata: {name: elsewhere}\n"
             "spec:\n"
             "  selector: {matchLabels: {app: other}}\n"
             "  metrics:\n"
             "  - {name: m, exportName: m}\n");
    expect_diags(m,
        "W t.yaml:30:13: spec.selector: AutoscalingMetric default/elsewhere "
        "selects no pool\n");

    p = pool(m, "pool-a");
    assert_int_equal(p->metrics_port.value, 8000);
    assert_string_equal(p->metrics_path.value, "/metrics");
    assert_int_equal(p->nexports, 1);
    assert_string_equal(p->exports[0].name, "kv-cache");
    assert_string_equal(p->exports[0].metric, "vllm:kv_cache_usage_perc");
    assert_false(p->kv_metric.set);

    mcig_manifest_destroy(m);
}


static const char  health_policy[] =
    "apiVersion: networking.gke.io/v1\n"
    "kind: HealthCheckPolicy\n"
    "metadata:\n"
    "  name: health-check-policy\n"
    "  namespace: default\n"
    "spec:\n"
    "  targetRef:\n"
    "    group: \"networking.gke.io\"\n"
    "    kind: GCPInferencePoolImport\n"
    "    name: pool-a\n"
    "  default:\n"
    "    checkIntervalSec: 10\n"
    "    timeoutSec: 3\n"
    "    healthyThreshold: 1\n"
    "    logConfig: {enabled: true}\n"
    "    config:\n"
    "      type: HTTP\n"
    "      unhealthyThreshold: 4\n"
    "      httpHealthCheck:\n"
    "        requestPath: /ready\n"
    "        port: 8000\n"
    "        portSpecification: USE_FIXED_PORT\n";


static void
test_health_check_policy(void **state)
{
    mcig_manifest_t             *m;
    const mcig_manifest_pool_t  *p;

    (void) state;

    m = load("pool-a", health_policy);
    expect_diags(m,
        "W t.yaml:15:5: spec.default.logConfig: this field is not used by "
        "the gateway and ignored\n");

    p = pool(m, "pool-a");
    assert_true(p->health_check);
    assert_src(&p->health_check_src, "t.yaml", 4, 9, "metadata.name");
    assert_string_equal(p->health_path.value, "/ready");
    assert_int_equal(p->health_port.value, 8000);
    assert_int_equal(p->health_interval_sec.value, 10);
    assert_int_equal(p->health_timeout_sec.value, 3);
    assert_int_equal(p->healthy_threshold.value, 1);
    assert_int_equal(p->unhealthy_threshold.value, 4);
    assert_src(&p->unhealthy_threshold.src, "t.yaml", 18, 27,
               "spec.default.config.unhealthyThreshold");

    mcig_manifest_destroy(m);

    /* nothing but the policy: every setting unset, GCP's defaults apply */
    m = load("pool-a",
             "apiVersion: networking.gke.io/v1\n"
             "kind: HealthCheckPolicy\n"
             "metadata: {name: hc}\n"
             "spec:\n"
             "  targetRef: {kind: InferencePool, name: pool-a}\n");
    expect_diags(m, "");

    p = pool(m, "pool-a");
    assert_true(p->health_check);
    assert_false(p->health_path.set);
    assert_false(p->health_port.set);
    assert_false(p->health_interval_sec.set);
    assert_false(p->healthy_threshold.set);

    mcig_manifest_destroy(m);
}


static const char  slices[] =
    "apiVersion: inference.networking.k8s.io/v1\n"
    "kind: InferencePool\n"
    "metadata: {name: pool-a}\n"
    "spec:\n"
    "  selector: {matchLabels: {app: vllm}}\n"
    "  targetPorts: [{number: 8000}, {number: 8001}]\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: List\n"
    "items:\n"
    "- apiVersion: discovery.k8s.io/v1\n"
    "  kind: EndpointSlice\n"
    "  metadata:\n"
    "    name: vllm-abcde\n"
    "    namespace: default\n"
    "    labels:\n"
    "      app: vllm\n"
    "      kubernetes.io/service-name: vllm\n"
    "    ownerReferences: [{kind: Service, name: vllm}]\n"
    "  addressType: IPv4\n"
    "  endpoints:\n"
    "  - addresses: [\"10.0.0.11\"]\n"
    "    conditions: {ready: true, serving: true, terminating: false}\n"
    "    nodeName: node-1\n"
    "    zone: europe-west3-a\n"
    "    targetRef: {kind: Pod, name: vllm-1}\n"
    "  - addresses: [\"10.0.0.12\"]\n"
    "    conditions: {ready: false}\n"
    "    zone: europe-west3-b\n"
    "  ports:\n"
    "  - {name: http, port: 9999, protocol: TCP}\n"
    "- apiVersion: discovery.k8s.io/v1\n"
    "  kind: EndpointSlice\n"
    "  metadata:\n"
    "    name: east\n"
    "    labels: {kubernetes.io/service-name: pool-b}\n"
    "  addressType: IPv6\n"
    "  endpoints:\n"
    "  - addresses: [\"fd00::5\"]\n"
    "    zone: us-east4-a\n"
    "  - addresses: [\"fd00::6\"]\n"
    "  ports: [{port: 8000}, {port: 53, protocol: UDP}]\n"
    "---\n"
    "apiVersion: discovery.k8s.io/v1\n"
    "kind: EndpointSliceList\n"
    "items:\n"
    "- metadata:\n"
    "    name: named\n"
    "    labels:\n"
    "      inference.networking.k8s.io/pool-name: pool-b\n"
    "      app: vllm\n"
    "  endpoints:\n"
    "  - addresses: [\"vllm-0.vllm.default.svc\"]\n"
    "    zone: us-east-1a\n"
    "  - addresses: [\"fd00::5\"]\n"
    "  ports: [{port: 8000}]\n"
    "- metadata: {name: lost, labels: {app: nothing}}\n"
    "  endpoints: [{addresses: [\"10.1.1.1\"]}]\n"
    "  ports: [{port: 80}]\n";


static void
test_endpoint_slices(void **state)
{
    mcig_manifest_t               *m;
    const mcig_manifest_pool_t    *p;
    const mcig_manifest_member_t  *mb;

    (void) state;

    m = load("pool-b", slices);
    expect_diags(m,
        "W t.yaml:55:17: items[0].endpoints[1].addresses[0]: member "
        "[fd00::5]:8000 of pool \"pool-b\" is listed already (t.yaml:39:17); "
        "it is kept once\n"
        "W t.yaml:57:20: items[1].metadata.name: EndpointSlice default/lost "
        "belongs to no pool and is ignored\n");

    /* by the pool's selector: each address on each targetPort */
    p = pool(m, "pool-a");
    assert_int_equal(p->nmembers, 4);

    mb = &p->members[0];
    assert_string_equal(mb->address, "10.0.0.11");
    assert_int_equal(mb->port, 8000);
    assert_string_equal(mb->text, "10.0.0.11:8000");
    assert_string_equal(mb->zone, "europe-west3-a");
    assert_string_equal(mb->region, "europe-west3");
    assert_true(mb->ready);
    assert_string_equal(mb->slice, "default/vllm-abcde");
    assert_src(&mb->src, "t.yaml", 22, 17,
               "items[0].endpoints[0].addresses[0]");

    assert_string_equal(p->members[1].text, "10.0.0.11:8001");
    assert_string_equal(p->members[2].text, "10.0.0.12:8000");
    assert_false(p->members[2].ready);
    assert_string_equal(p->members[2].region, "europe-west3");
    assert_string_equal(p->members[3].text, "10.0.0.12:8001");

    /*
     * pool-b has no InferencePool: the slices' TCP ports; by service-name,
     * then by the pool-name label (which wins over the selector app: vllm)
     */
    p = pool(m, "pool-b");
    assert_int_equal(p->nmembers, 3);
    assert_string_equal(p->members[0].text, "[fd00::5]:8000");
    assert_string_equal(p->members[0].address, "fd00::5");
    assert_string_equal(p->members[0].region, "us-east4");
    assert_true(p->members[0].ready);
    assert_string_equal(p->members[1].text, "[fd00::6]:8000");
    assert_null(p->members[1].zone);
    assert_null(p->members[1].region);
    assert_string_equal(p->members[2].text, "vllm-0.vllm.default.svc:8000");
    assert_string_equal(p->members[2].region, "us-east-1");
    assert_string_equal(p->members[2].slice, "default/named");

    mcig_manifest_destroy(m);

    /* a slice without port for a pool without targetPorts */
    check("pool-a",
          "apiVersion: discovery.k8s.io/v1\n"
          "kind: EndpointSlice\n"
          "metadata:\n"
          "  name: s\n"
          "  labels: {kubernetes.io/service-name: pool-a}\n"
          "endpoints: [{addresses: [\"10.0.0.1\"]}]\n",
          "E t.yaml:4:9: metadata.name: EndpointSlice default/s has no port, "
          "and pool \"pool-a\" has no targetPorts\n");

    check("pool-a",
          "apiVersion: discovery.k8s.io/v1\n"
          "kind: EndpointSlice\n"
          "metadata:\n"
          "  name: s\n"
          "  labels: {inference.networking.k8s.io/pool-name: pool-x}\n"
          "addressType: IPv4\n"
          "endpoints:\n"
          "- addresses: [\"10.0.0.300\"]\n"
          "- addresses: []\n"
          "- addresses: [\"::1\"]\n"
          "  conditions: {ready: yes}\n",
          "E t.yaml:8:15: endpoints[0].addresses[0]: \"10.0.0.300\" is not "
          "an IPv4 address\n"
          "E t.yaml:9:14: endpoints[1].addresses: the list is empty\n"
          "E t.yaml:10:15: endpoints[2].addresses[0]: \"::1\" is not an IPv4 "
          "address\n");

    check("pool-a",
          "apiVersion: discovery.k8s.io/v1\n"
          "kind: EndpointSlice\n"
          "metadata:\n"
          "  name: s\n"
          "  labels: {inference.networking.k8s.io/pool-name: pool-x}\n"
          "endpoints:\n"
          "- addresses: [\"10.0.0.1\"]\n"
          "  conditions: {ready: yes}\n",
          "E t.yaml:8:23: endpoints[0].conditions.ready: \"yes\" is not a "
          "boolean (true or false)\n");

    check("pool-a",
          "apiVersion: discovery.k8s.io/v1\n"
          "kind: EndpointSlice\n"
          "metadata:\n"
          "  name: s\n"
          "  labels: {inference.networking.k8s.io/pool-name: pool-x}\n"
          "endpoints: [{addresses: [\"10.0.0.1\"]}]\n"
          "ports: [{port: 80}]\n",
          "W t.yaml:4:9: metadata.name: the label "
          "inference.networking.k8s.io/pool-name of EndpointSlice default/s "
          "names no pool; the slice is ignored\n");
}


static const char  gateway_route[] =
    "apiVersion: gateway.networking.k8s.io/v1\n"
    "kind: Gateway\n"
    "metadata: {name: gw}\n"
    "spec:\n"
    "  gatewayClassName: gke-l7-cross-regional-internal-managed-mc\n"
    "  listeners:\n"
    "  - {name: http, protocol: HTTP, port: 80}\n"
    "  - {name: https, protocol: HTTPS, port: \"443\"}\n"
    "---\n"
    "apiVersion: gateway.networking.k8s.io/v1\n"
    "kind: HTTPRoute\n"
    "metadata: {name: route}\n"
    "spec:\n"
    "  parentRefs: [{name: gw}]\n"
    "  rules:\n"
    "  - matches:\n"
    "    - path: {type: PathPrefix, value: /v1/}\n"
    "      headers:\n"
    "      - {name: x-gateway-model-name, value: food-review}\n"
    "    - path: {type: Exact, value: /v1/models}\n"
    "    backendRefs:\n"
    "    - {group: networking.gke.io, kind: GCPInferencePoolImport,\n"
    "       name: pool-a, weight: 3}\n"
    "    - {kind: Service, name: other}\n"
    "  - backendRefs:\n"
    "    - {kind: InferencePool, name: pool-z}\n"
    "    - {kind: InferencePool, name: pool-a, weight: many}\n";


static void
test_gateway_httproute(void **state)
{
    mcig_manifest_t                 *m;
    const mcig_manifest_route_t     *r;
    const mcig_manifest_listener_t  *l;

    (void) state;

    m = load("pool-a", gateway_route);
    expect_diags(m,
        "W t.yaml:8:42: spec.listeners[1].port: \"443\" is not an integer\n"
        "W t.yaml:27:51: spec.rules[1].backendRefs[1].weight: \"many\" is "
        "not an integer\n"
        "W t.yaml:26:7: spec.rules[1].backendRefs[0]: no pool is named "
        "\"pool-z\"; the route entry is kept for information\n");
    assert_int_equal(mcig_manifest_nerrors(m), 0);

    assert_int_equal(mcig_manifest_nlisteners(m), 1);
    l = mcig_manifest_listener(m, 0);
    assert_string_equal(l->gateway, "default/gw");
    assert_string_equal(l->name, "http");
    assert_string_equal(l->protocol, "HTTP");
    assert_int_equal(l->port, 80);
    assert_null(mcig_manifest_listener(m, 1));

    assert_int_equal(mcig_manifest_nroutes(m), 3);

    r = mcig_manifest_route(m, 0);
    assert_string_equal(r->route, "default/route");
    assert_string_equal(r->path_type, "PathPrefix");
    assert_string_equal(r->path, "/v1/");
    assert_string_equal(r->model, "food-review");
    assert_string_equal(r->pool, "pool-a");
    assert_true(r->pool_known);
    assert_int_equal(r->weight, 3);
    assert_src(&r->src, "t.yaml", 22, 7, "spec.rules[0].backendRefs[0]");

    r = mcig_manifest_route(m, 1);
    assert_string_equal(r->path_type, "Exact");
    assert_string_equal(r->path, "/v1/models");
    assert_null(r->model);

    /* no matches: every path */
    r = mcig_manifest_route(m, 2);
    assert_string_equal(r->path_type, "PathPrefix");
    assert_string_equal(r->path, "/");
    assert_string_equal(r->pool, "pool-z");
    assert_false(r->pool_known);
    assert_int_equal(r->weight, 1);

    assert_null(mcig_manifest_route(m, 3));

    mcig_manifest_destroy(m);
}


static void
test_import_and_known_pools(void **state)
{
    mcig_manifest_t             *m;
    const mcig_manifest_pool_t  *p;

    (void) state;

    m = mcig_manifest_create();
    assert_non_null(m);

    assert_int_equal(mcig_manifest_add_known_pool(m, "zeta", 4),
                     MCIG_MANIFEST_OK);
    assert_int_equal(mcig_manifest_load_buffer(m, "t.yaml",
                         "apiVersion: networking.gke.io/v1\n"
                         "kind: GCPInferencePoolImport\n"
                         "metadata: {name: imported}\n"
                         "status: {controllers: []}\n"
                         "---\n"
                         "apiVersion: inference.networking.k8s.io/v1\n"
                         "kind: InferencePool\n"
                         "metadata: {name: zeta}\n"
                         "spec:\n"
                         "  selector: {matchLabels: {app: z}}\n"
                         "  targetPorts: [{number: 80}]\n", 277),
                     MCIG_MANIFEST_OK);
    assert_int_equal(mcig_manifest_add_known_pool(m, "alpha", 5),
                     MCIG_MANIFEST_OK);

    /* nothing is readable before resolve */
    assert_int_equal(mcig_manifest_npools(m), 0);
    assert_null(mcig_manifest_pool_find(m, "zeta", 4));

    assert_int_equal(mcig_manifest_resolve(m), MCIG_MANIFEST_OK);
    expect_diags(m, "");

    /* in the order they became known */
    assert_int_equal(mcig_manifest_npools(m), 3);
    p = mcig_manifest_pool(m, 0);
    assert_string_equal(p->name, "zeta");
    assert_true(p->registered);
    assert_true(p->manifest);
    assert_false(p->default_selector);
    assert_string_equal(p->labels[0].value, "z");

    p = mcig_manifest_pool(m, 1);
    assert_string_equal(p->name, "imported");
    assert_true(p->imported);
    assert_false(p->manifest);
    assert_true(p->default_selector);
    assert_string_equal(p->labels[0].key, "app");
    assert_string_equal(p->labels[0].value, "imported");

    p = mcig_manifest_pool(m, 2);
    assert_string_equal(p->name, "alpha");

    /* once resolved, nothing more is taken */
    assert_int_equal(mcig_manifest_resolve(m), MCIG_MANIFEST_OK);
    assert_int_equal(mcig_manifest_add_known_pool(m, "late", 4),
                     MCIG_MANIFEST_ERROR);
    assert_int_equal(mcig_manifest_load_buffer(m, "late.yaml", "a: 1\n", 5),
                     MCIG_MANIFEST_ERROR);
    expect_diags(m, "E late.yaml: manifests are loaded after they were "
                    "resolved\n");

    mcig_manifest_destroy(m);
}


/* validation */

static void
test_wrong_types(void **state)
{
    (void) state;

    check("pool-a",
          "apiVersion: inference.networking.k8s.io/v1\n"
          "kind: InferencePool\n"
          "metadata:\n"
          "  name: 42\n"
          "spec: {}\n"
          "---\n"
          "apiVersion: inference.networking.x-k8s.io/v1alpha2\n"
          "kind: InferenceObjective\n"
          "metadata: {name: o}\n"
          "spec:\n"
          "  priority: high\n"
          "  poolRef: [pool-a]\n"
          "---\n"
          "apiVersion: inference.networking.x-k8s.io/v1alpha2\n"
          "kind: InferenceObjective\n"
          "metadata: {name: p}\n"
          "spec:\n"
          "  priority: {value: 1}\n"
          "  poolRef: {name: pool-a}\n"
          "---\n"
          "apiVersion: inference.networking.x-k8s.io/v1alpha2\n"
          "kind: InferenceObjective\n"
          "metadata: {name: q}\n"
          "spec:\n"
          "  priority: 1.5\n"
          "  poolRef: {name: \"\"}\n"
          "---\n"
          "apiVersion: networking.gke.io/v1\n"
          "kind: GCPBackendPolicy\n"
          "metadata: {name: b}\n"
          "spec:\n"
          "  targetRef: {kind: InferencePool, name: pool-a}\n"
          "  default:\n"
          "    timeoutSec: \"100\"\n"
          "    customMetrics: {name: x}\n"
          "    dryRun: 0\n",
          "E t.yaml:4:9: metadata.name: 42 is not a string\n"
          "E t.yaml:11:13: spec.priority: \"high\" is not an integer\n"
          "E t.yaml:12:12: spec.poolRef: a list is not a mapping\n"
          "E t.yaml:18:13: spec.priority: a mapping is not an integer\n"
          "E t.yaml:25:13: spec.priority: 1.5 is not an integer\n"
          "E t.yaml:26:19: spec.poolRef.name: the value is empty\n"
          "E t.yaml:34:17: spec.default.timeoutSec: \"100\" is not an "
          "integer\n"
          "E t.yaml:36:13: spec.default.dryRun: 0 is not a boolean (true or "
          "false)\n"
          "E t.yaml:35:20: spec.default.customMetrics: a mapping is not a "
          "list\n");
}


static void
test_out_of_range(void **state)
{
    (void) state;

    check("pool-a",
          "apiVersion: networking.gke.io/v1\n"
          "kind: GCPBackendPolicy\n"
          "metadata:\n"
          "  name: backend\n"
          "spec:\n"
          "  targetRef:\n"
          "    kind: InferencePool\n"
          "    name: pool-a\n"
          "  default:\n"
          "    timeoutSec: 3601\n"
          "    maxInFlightRequestsPerEndpoint: 0\n"
          "    customMetrics:\n"
          "    - name: gke.named_metrics.kv-cache\n"
          "      maxUtilization: 150\n"
          "    - name: gke.named_metrics.other\n"
          "      maxUtilizationPercent: -1\n"
          "---\n"
          "apiVersion: networking.gke.io/v1\n"
          "kind: HealthCheckPolicy\n"
          "metadata: {name: hc}\n"
          "spec:\n"
          "  targetRef: {kind: InferencePool, name: pool-a}\n"
          "  default:\n"
          "    checkIntervalSec: 0\n"
          "    timeoutSec: 301\n"
          "    healthyThreshold: 0\n"
          "    unhealthyThreshold: 11\n"
          "    config:\n"
          "      httpHealthCheck: {port: 65536}\n"
          "---\n"
          "apiVersion: inference.networking.k8s.io/v1\n"
          "kind: InferencePool\n"
          "metadata: {name: pool-b}\n"
          "spec:\n"
          "  selector: {matchLabels: {app: b}}\n"
          "  targetPorts: [{number: 0}]\n"
          "---\n"
          "apiVersion: inference.networking.k8s.io/v1\n"
          "kind: InferencePool\n"
          "metadata: {name: pool-c}\n"
          "spec:\n"
          "  selector: {matchLabels: {app: c}}\n"
          "  targetPorts: [{number: 1}, {number: 2}, {number: 3}, {number: 4},"
          " {number: 5}, {number: 6}, {number: 7}, {number: 8}, {number: 9}]\n"
          "---\n"
          "apiVersion: inference.networking.x-k8s.io/v1alpha2\n"
          "kind: InferenceObjective\n"
          "metadata: {name: o}\n"
          "spec:\n"
          "  priority: -1000001\n"
          "  poolRef: {name: pool-a}\n"
          "---\n"
          "apiVersion: inference.networking.x-k8s.io/v1alpha2\n"
          "kind: InferenceObjective\n"
          "metadata: {name: big}\n"
          "spec:\n"
          "  priority: 99999999999999999999999\n"
          "  poolRef: {name: pool-a}\n",
          "E t.yaml:10:17: spec.default.timeoutSec: 3601 is out of range "
          "(1-3600)\n"
          "E t.yaml:11:37: spec.default.maxInFlightRequestsPerEndpoint: 0 is "
          "out of range (1-1000000)\n"
          "E t.yaml:14:23: spec.default.customMetrics[0].maxUtilization: 150 "
          "is out of range (0-100)\n"
          "E t.yaml:16:30: spec.default.customMetrics[1]"
          ".maxUtilizationPercent: -1 is out of range (0-100)\n"
          "W t.yaml:15:7: spec.default.customMetrics[1]: only the first "
          "custom metric is used; this one is ignored\n"
          "E t.yaml:24:23: spec.default.checkIntervalSec: 0 is out of range "
          "(1-300)\n"
          "E t.yaml:25:17: spec.default.timeoutSec: 301 is out of range "
          "(1-300)\n"
          "E t.yaml:26:23: spec.default.healthyThreshold: 0 is out of range "
          "(1-10)\n"
          "E t.yaml:27:25: spec.default.unhealthyThreshold: 11 is out of "
          "range (1-10)\n"
          "E t.yaml:29:31: spec.default.config.httpHealthCheck.port: 65536 "
          "is out of range (1-65535)\n"
          "E t.yaml:36:26: spec.targetPorts[0].number: 0 is out of range "
          "(1-65535)\n"
          "E t.yaml:43:16: spec.targetPorts: 9 ports are listed; 1 to 8 are "
          "needed\n"
          "E t.yaml:49:13: spec.priority: -1000001 is out of range (-1000000 "
          "to 1000000)\n"
          "E t.yaml:56:13: spec.priority: 99999999999999999999999 is out of "
          "range (-1000000 to 1000000)\n");
}


static void
test_enums_and_formats(void **state)
{
    (void) state;

    check("pool-a",
          "apiVersion: networking.gke.io/v1\n"
          "kind: GCPBackendPolicy\n"
          "metadata: {name: b}\n"
          "spec:\n"
          "  targetRef: {kind: InferencePool, name: pool-a}\n"
          "  default:\n"
          "    balancingMode: RATE\n"
          "    trafficDuration: long\n"
          "    customMetrics:\n"
          "    - name: kv-cache\n"
          "---\n"
          "apiVersion: networking.gke.io/v1\n"
          "kind: GCPBackendPolicy\n"
          "metadata: {name: c}\n"
          "spec:\n"
          "  targetRef: {kind: InferencePool, name: pool-a}\n"
          "  default:\n"
          "    balancingMode: CUSTOM_METRICS\n"
          "---\n"
          "apiVersion: networking.gke.io/v1\n"
          "kind: HealthCheckPolicy\n"
          "metadata: {name: hc}\n"
          "spec:\n"
          "  targetRef: {kind: InferencePool, name: pool-a}\n"
          "  default:\n"
          "    config:\n"
          "      type: TCP\n"
          "      httpHealthCheck:\n"
          "        requestPath: health\n"
          "        portSpecification: USE_NAMED_PORT\n"
          "---\n"
          "apiVersion: inference.networking.x-k8s.io/v1alpha2\n"
          "kind: InferenceModelRewrite\n"
          "metadata: {name: r}\n"
          "spec:\n"
          "  poolRef: {name: pool-a, kind: Service}\n"
          "  rules:\n"
          "  - matches: [{model: {type: Prefix, value: x}}]\n"
          "    targets: [{modelRewrite: y, weight: 1}, {modelRewrite: z}]\n"
          "---\n"
          "apiVersion: autoscaling.gke.io/v1beta1\n"
          "kind: AutoscalingMetric\n"
          "metadata: {name: am}\n"
          "spec:\n"
          "  endpoints: [{port: 8000, path: metrics}]\n"
          "  metrics:\n"
          "  - {name: \"vllm:kv{\", exportName: kv}\n"
          "  - {name: a, exportName: a}\n"
          "  - {name: b, exportName: a}\n",
          "E t.yaml:7:20: spec.default.balancingMode: \"RATE\" is not one of "
          "CUSTOM_METRICS or IN_FLIGHT\n"
          "E t.yaml:8:22: spec.default.trafficDuration: \"long\" is not one "
          "of LONG or SHORT\n"
          "E t.yaml:10:13: spec.default.customMetrics[0].name: \"kv-cache\" "
          "is not gke.named_metrics.<exportName>\n"
          "E t.yaml:18:20: spec.default.balancingMode: CUSTOM_METRICS needs "
          "spec.default.customMetrics\n"
          "E t.yaml:27:13: spec.default.config.type: \"TCP\" is not "
          "supported: the gateway checks health over HTTP only\n"
          "E t.yaml:29:22: spec.default.config.httpHealthCheck.requestPath: "
          "\"health\" does not start with /\n"
          "E t.yaml:30:28: spec.default.config.httpHealthCheck"
          ".portSpecification: USE_NAMED_PORT is not supported; use "
          "USE_FIXED_PORT with a port\n"
          "E t.yaml:36:33: spec.poolRef.kind: \"Service\" is not "
          "InferencePool\n"
          "E t.yaml:38:30: spec.rules[0].matches[0].model.type: \"Prefix\" is "
          "not Exact\n"
          "E t.yaml:39:14: spec.rules[0].targets: a weight is set on 1 of the "
          "2 targets; set it on every target or on none\n"
          "E t.yaml:45:34: spec.endpoints[0].path: \"metrics\" does not start "
          "with /\n"
          "E t.yaml:47:12: spec.metrics[0].name: \"vllm:kv{\" is not a "
          "metric: the labels are not {name=\"value\",...} with each name "
          "once\n"
          "E t.yaml:49:27: spec.metrics[2].exportName: the export name \"a\" "
          "is used twice\n");
}


static void
test_missing_fields(void **state)
{
    (void) state;

    check(NULL,
          "apiVersion: inference.networking.k8s.io/v1\n"
          "kind: InferencePool\n"
          "metadata:\n"
          "  namespace: x\n"
          "---\n"
          "apiVersion: inference.networking.k8s.io/v1\n"
          "kind: InferencePool\n"
          "metadata: {name: p}\n"
          "spec:\n"
          "  selector: {}\n"
          "---\n"
          "kind: InferencePool\n"
          "metadata: {name: q}\n"
          "---\n"
          "apiVersion: networking.gke.io/v1\n"
          "metadata: {name: q}\n"
          "---\n"
          "apiVersion: networking.gke.io/v1\n"
          "kind: GCPBackendPolicy\n"
          "spec: {}\n"
          "---\n"
          "apiVersion: networking.gke.io/v1\n"
          "kind: GCPBackendPolicy\n"
          "metadata: {name: b}\n"
          "spec:\n"
          "  targetRef: {kind: InferencePool}\n"
          "  default:\n"
          "    customMetrics: [{maxUtilization: 5}]\n",
          "E t.yaml:4:3: metadata.name: this required field is missing\n"
          "E t.yaml:10:13: spec.selector.matchLabels: this required field is "
          "missing\n"
          "E t.yaml:10:3: spec.targetPorts: this required field is missing\n"
          "E t.yaml:12:1: apiVersion: this required field is missing\n"
          "E t.yaml:15:1: kind: this required field is missing\n"
          "E t.yaml:18:1: metadata: this required field is missing\n"
          "E t.yaml:26:14: spec.targetRef.name: this required field is "
          "missing\n"
          "E t.yaml:28:21: spec.default.customMetrics[0].name: this required "
          "field is missing\n");
}


static void
test_bad_names_and_versions(void **state)
{
    (void) state;

    check(NULL,
          "apiVersion: inference.networking.k8s.io/v1\n"
          "kind: InferencePool\n"
          "metadata: {name: Pool_A}\n"
          "---\n"
          "apiVersion: inference.networking.k8s.io/v1beta1\n"
          "kind: InferencePool\n"
          "metadata: {name: p}\n"
          "---\n"
          "apiVersion: networking.gke.io/v2\n"
          "kind: GCPBackendPolicy\n"
          "metadata: {name: p}\n"
          "---\n"
          "- a list\n"
          "---\n"
          "just text\n",
          "E t.yaml:3:18: metadata.name: \"Pool_A\" is not a valid name "
          "(lowercase letters, digits, '-' and '.', starting and ending with "
          "a letter or digit)\n"
          "E t.yaml:5:13: apiVersion: \"inference.networking.k8s.io/v1beta1\" "
          "is not an API version of InferencePool "
          "(inference.networking.k8s.io/v1 or "
          "inference.networking.x-k8s.io/v1alpha2)\n"
          "E t.yaml:9:13: apiVersion: \"networking.gke.io/v2\" is not an API "
          "version of GCPBackendPolicy (networking.gke.io/v1)\n"
          "E t.yaml:13:1: the document is a list, not a Kubernetes object (a "
          "mapping)\n"
          "E t.yaml:15:1: the document is \"just text\", not a Kubernetes "
          "object (a mapping)\n");
}


static void
test_modes_conflict(void **state)
{
    (void) state;

    check("pool-a",
          "apiVersion: networking.gke.io/v1\n"
          "kind: GCPBackendPolicy\n"
          "metadata: {name: custom}\n"
          "spec:\n"
          "  targetRef: {kind: GCPInferencePoolImport, name: pool-a}\n"
          "  default:\n"
          "    balancingMode: CUSTOM_METRICS\n"
          "    timeoutSec: 100\n"
          "    customMetrics: [{name: gke.named_metrics.kv}]\n"
          "---\n"
          "apiVersion: networking.gke.io/v1\n"
          "kind: GCPBackendPolicy\n"
          "metadata: {name: in-flight}\n"
          "spec:\n"
          "  targetRef: {kind: InferencePool, name: pool-a}\n"
          "  default:\n"
          "    balancingMode: IN_FLIGHT\n"
          "    timeoutSec: 200\n"
          "    trafficDuration: SHORT\n"
          "---\n"
          "apiVersion: networking.gke.io/v1\n"
          "kind: GCPBackendPolicy\n"
          "metadata: {name: same}\n"
          "spec:\n"
          "  targetRef: {kind: InferencePool, name: pool-a}\n"
          "  default:\n"
          "    timeoutSec: 100\n"
          "---\n"
          "apiVersion: autoscaling.gke.io/v1beta1\n"
          "kind: AutoscalingMetric\n"
          "metadata: {name: am}\n"
          "spec:\n"
          "  metrics: [{name: vllm:kv_cache_usage_perc, exportName: kv}]\n",
          "E t.yaml:17:20: spec.default.balancingMode: IN_FLIGHT conflicts "
          "with CUSTOM_METRICS for pool \"pool-a\" (t.yaml:7:20); the two "
          "modes are exclusive\n"
          "E t.yaml:18:17: spec.default.timeoutSec: 200 conflicts with 100 "
          "for pool \"pool-a\" (t.yaml:8:17)\n");
}


static void
test_unknown_pools_and_metrics(void **state)
{
    (void) state;

    check("pool-a",
          "apiVersion: networking.gke.io/v1\n"
          "kind: GCPBackendPolicy\n"
          "metadata: {name: b}\n"
          "spec:\n"
          "  targetRef: {kind: GCPInferencePoolImport, name: pool-x}\n"
          "  default: {timeoutSec: 10}\n"
          "---\n"
          "apiVersion: networking.gke.io/v1\n"
          "kind: HealthCheckPolicy\n"
          "metadata: {name: h}\n"
          "spec:\n"
          "  targetRef: {kind: InferencePool, name: pool-y}\n"
          "---\n"
          "apiVersion: networking.gke.io/v1\n"
          "kind: HealthCheckPolicy\n"
          "metadata: {name: svc}\n"
          "spec:\n"
          "  targetRef: {group: \"\", kind: Service, name: pool-a}\n"
          "---\n"
          "apiVersion: networking.gke.io/v1\n"
          "kind: GCPBackendPolicy\n"
          "metadata: {name: c}\n"
          "spec:\n"
          "  targetRef: {kind: InferencePool, name: pool-a}\n"
          "  default:\n"
          "    balancingMode: CUSTOM_METRICS\n"
          "    customMetrics: [{name: gke.named_metrics.kv-cache}]\n"
          "---\n"
          "apiVersion: inference.networking.x-k8s.io/v1alpha2\n"
          "kind: InferenceModelRewrite\n"
          "metadata: {name: r}\n"
          "spec:\n"
          "  poolRef: {name: pool-q}\n"
          "  rules: [{targets: [{modelRewrite: m}]}]\n",
          "W t.yaml:18:32: spec.targetRef.kind: the policy targets a "
          "Service, not an InferencePool or GCPInferencePoolImport, and is "
          "ignored\n"
          "E t.yaml:5:51: spec.targetRef.name: no pool is named \"pool-x\" "
          "(no InferencePool, GCPInferencePoolImport or upstream with "
          "mcig_pool)\n"
          "E t.yaml:12:42: spec.targetRef.name: no pool is named \"pool-y\" "
          "(no InferencePool, GCPInferencePoolImport or upstream with "
          "mcig_pool)\n"
          "E t.yaml:27:28: spec.default.customMetrics[0].name: no "
          "AutoscalingMetric exports \"kv-cache\" for pool \"pool-a\"\n"
          "W t.yaml:33:19: spec.poolRef.name: no pool is named \"pool-q\"; "
          "the rewrite r applies to no pool\n");
}


static void
test_health_timeouts(void **state)
{
    (void) state;

    check("pool-a,pool-b",
          "apiVersion: networking.gke.io/v1\n"
          "kind: HealthCheckPolicy\n"
          "metadata: {name: a}\n"
          "spec:\n"
          "  targetRef: {kind: InferencePool, name: pool-a}\n"
          "  default:\n"
          "    timeoutSec: 10\n"
          "---\n"
          "apiVersion: networking.gke.io/v1\n"
          "kind: HealthCheckPolicy\n"
          "metadata: {name: b}\n"
          "spec:\n"
          "  targetRef: {kind: InferencePool, name: pool-b}\n"
          "  default:\n"
          "    checkIntervalSec: 3\n"
          "    config:\n"
          "      checkIntervalSec: 3\n"
          "---\n"
          "apiVersion: networking.gke.io/v1\n"
          "kind: HealthCheckPolicy\n"
          "metadata: {name: c}\n"
          "spec:\n"
          "  targetRef: {kind: InferencePool, name: pool-b}\n"
          "  default:\n"
          "    checkIntervalSec: 3\n",
          "E t.yaml:17:25: spec.default.config.checkIntervalSec: "
          "checkIntervalSec is set at spec.default too; set one\n"
          "E t.yaml:7:17: spec.default.timeoutSec: 10 is greater than "
          "checkIntervalSec (5, the default)\n"
          "E t.yaml:25:23: spec.default.checkIntervalSec: 3 is less than "
          "timeoutSec (5, the default)\n");

    check("pool-a",
          "apiVersion: networking.gke.io/v1\n"
          "kind: HealthCheckPolicy\n"
          "metadata: {name: a}\n"
          "spec:\n"
          "  targetRef: {kind: InferencePool, name: pool-a}\n"
          "  default:\n"
          "    checkIntervalSec: 20\n"
          "    config:\n"
          "      timeoutSec: 30\n",
          "E t.yaml:9:19: spec.default.config.timeoutSec: 30 is greater than "
          "checkIntervalSec (20)\n");
}


static void
test_duplicates(void **state)
{
    (void) state;

    check("pool-a",
          "apiVersion: networking.gke.io/v1\n"
          "kind: GCPBackendPolicy\n"
          "metadata: {name: b}\n"
          "spec:\n"
          "  targetRef: {kind: InferencePool, name: pool-a}\n"
          "---\n"
          "apiVersion: networking.gke.io/v1\n"
          "kind: GCPBackendPolicy\n"
          "metadata: {name: b, namespace: default}\n"
          "spec:\n"
          "  targetRef: {kind: InferencePool, name: pool-a}\n"
          "---\n"
          "apiVersion: networking.gke.io/v1\n"
          "kind: GCPBackendPolicy\n"
          "metadata: {name: b, namespace: other}\n"
          "spec:\n"
          "  targetRef: {kind: InferencePool, name: pool-a}\n"
          "---\n"
          "apiVersion: networking.gke.io/v1\n"
          "kind: HealthCheckPolicy\n"
          "metadata: {name: b}\n"
          "spec:\n"
          "  targetRef: {kind: InferencePool, name: pool-a}\n"
          "---\n"
          "apiVersion: inference.networking.k8s.io/v1\n"
          "kind: InferencePool\n"
          "metadata: {name: p, namespace: one}\n"
          "spec: {selector: {matchLabels: {a: b}}, targetPorts: "
          "[{number: 1}]}\n"
          "---\n"
          "apiVersion: inference.networking.k8s.io/v1\n"
          "kind: InferencePool\n"
          "metadata: {name: p, namespace: two}\n"
          "spec: {selector: {matchLabels: {a: b}}, targetPorts: "
          "[{number: 1}]}\n"
          "---\n"
          "apiVersion: inference.networking.x-k8s.io/v1alpha2\n"
          "kind: InferenceObjective\n"
          "metadata: {name: o, namespace: one}\n"
          "spec: {poolRef: {name: pool-a}}\n"
          "---\n"
          "apiVersion: inference.networking.x-k8s.io/v1alpha2\n"
          "kind: InferenceObjective\n"
          "metadata: {name: o, namespace: two}\n"
          "spec: {poolRef: {name: pool-a}}\n",
          "E t.yaml:9:18: metadata.name: GCPBackendPolicy default/b is "
          "defined twice; the first is at t.yaml:3:18\n"
          "E t.yaml:32:18: metadata.name: the pool p is also defined by "
          "InferencePool one/p at t.yaml:27:18; pools are upstreams, named "
          "without namespace\n"
          "E t.yaml:42:18: metadata.name: pool \"pool-a\" has an objective o "
          "already (t.yaml:37:18)\n");
}


static void
test_unknown_fields_and_kinds(void **state)
{
    (void) state;

    check("pool-a",
          "apiVersion: networking.gke.io/v1\n"
          "kind: GCPBackendPolicy\n"
          "metadata:\n"
          "  name: b\n"
          "  lables: {a: b}\n"
          "  annotations: {x: y}\n"
          "spec:\n"
          "  targetRef: {kind: InferencePool, name: pool-a}\n"
          "  default:\n"
          "    timeoutSecs: 10\n"
          "    logging: {enabled: true}\n"
          "    balancingmode: IN_FLIGHT\n"
          "    customMetrics:\n"
          "    - {name: gke.named_metrics.kv, maxUtilisation: 50}\n"
          "  extra: 1\n"
          "sepc: {}\n"
          "---\n"
          "apiVersion: apps/v1\n"
          "kind: Deployment\n"
          "metadata: {name: vllm}\n"
          "---\n"
          "apiVersion: inference.networking.k8s.io/v1\n"
          "kind: InferencePol\n"
          "metadata: {name: p}\n"
          "---\n"
          "apiVersion: v1\n"
          "kind: List\n"
          "items:\n"
          "- {apiVersion: v1, kind: Service, metadata: {name: s}}\n"
          "- {apiVersion: v1, kind: List, items: []}\n"
          "-\n"
          "---\n"
          "apiVersion: autoscaling.gke.io/v1beta1\n"
          "kind: AutoscalingMetric\n"
          "metadata: {name: kv}\n"
          "spec:\n"
          "  metrics: [{name: vllm:kv_cache_usage_perc, exportName: kv}]\n",
          "W t.yaml:16:1: sepc: this field is unknown to GCPBackendPolicy and "
          "ignored (did you mean spec?)\n"
          "W t.yaml:5:3: metadata.lables: this field is unknown to "
          "GCPBackendPolicy and ignored (did you mean labels?)\n"
          "W t.yaml:15:3: spec.extra: this field is unknown to "
          "GCPBackendPolicy and ignored\n"
          "W t.yaml:10:5: spec.default.timeoutSecs: this field is unknown to "
          "GCPBackendPolicy and ignored (did you mean timeoutSec?)\n"
          "W t.yaml:11:5: spec.default.logging: this field is not used by "
          "the gateway and ignored\n"
          "W t.yaml:12:5: spec.default.balancingmode: this field is unknown "
          "to GCPBackendPolicy and ignored (did you mean balancingMode?)\n"
          "W t.yaml:14:36: spec.default.customMetrics[0].maxUtilisation: "
          "this field is unknown to GCPBackendPolicy and ignored (did you "
          "mean maxUtilization?)\n"
          "W t.yaml:19:7: kind: Deployment (apps/v1) is not a kind the "
          "gateway uses; the object is ignored\n"
          "W t.yaml:23:7: kind: InferencePol "
          "(inference.networking.k8s.io/v1) is not a kind the gateway uses "
          "(did you mean InferencePool?); the object is ignored\n"
          "W t.yaml:29:26: items[0].kind: Service (v1) is not a kind the "
          "gateway uses; the object is ignored\n"
          "W t.yaml:30:26: items[1].kind: a List inside a List is ignored\n"
          "W t.yaml:31:2: items[2]: an empty item is ignored\n");
}


/* the documents of test_unknown_fields_and_kinds, with a key not a string */
static const char  *strict_yaml =
    "apiVersion: networking.gke.io/v1\n"
    "kind: GCPBackendPolicy\n"
    "metadata:\n"
    "  name: b\n"
    "  lables: {a: b}\n"
    "spec:\n"
    "  targetRef: {kind: InferencePool, name: pool-a}\n"
    "  default:\n"
    "    timeoutSecs: 10\n"
    "    logging: {enabled: true}\n"
    "    ? [a, b]\n"
    "    : 1\n"
    "---\n"
    "apiVersion: apps/v1\n"
    "kind: Deployment\n"
    "metadata: {name: vllm}\n"
    "---\n"
    "apiVersion: v1\n"
    "kind: List\n"
    "items:\n"
    "- {apiVersion: v1, kind: Service, metadata: {name: s}}\n"
    "- {apiVersion: v1, kind: List, items: []}\n"
    "-\n";


static void
test_strict(void **state)
{
    const char       *pod = "kind: Pod\napiVersion: v1\n";
    const char       *slice =
        "apiVersion: discovery.k8s.io/v1beta1\n"
        "kind: EndpointSlice\n"
        "metadata:\n"
        "  name: s\n"
        "  labels: {inference.networking.k8s.io/pool-name: pool-a}\n"
        "addressType: IPv4\n"
        "endpoints:\n"
        "- addresses: [10.0.0.1]\n"
        "  conditions: {ready: true}\n"
        "  topology: {kubernetes.io/hostname: n1}\n"
        "ports: [{name: http, port: 8000, protocol: TCP}]\n";
    mcig_manifest_t  *m;

    (void) state;

    /* unknown fields and kinds are errors; the rest stays as it was */
    m = mcig_manifest_create();
    assert_non_null(m);
    assert_int_equal(mcig_manifest_add_known_pool(m, "pool-a", 6),
                     MCIG_MANIFEST_OK);
    mcig_manifest_set_strict(m, 1);
    assert_int_equal(mcig_manifest_load_buffer(m, "t.yaml", strict_yaml,
                                               strlen(strict_yaml)),
                     MCIG_MANIFEST_ERROR);
    (void) mcig_manifest_resolve(m);
    expect_diags(m,
        "E t.yaml:5:3: metadata.lables: this field is unknown to "
        "GCPBackendPolicy (did you mean labels?); strict manifests have only "
        "the fields the gateway knows\n"
        "E t.yaml:9:5: spec.default.timeoutSecs: this field is unknown to "
        "GCPBackendPolicy (did you mean timeoutSec?); strict manifests have "
        "only the fields the gateway knows\n"
        "W t.yaml:10:5: spec.default.logging: this field is not used by "
        "the gateway and ignored\n"
        "E t.yaml:11:7: spec.default.?: a key that is a list is not a field; "
        "strict manifests have only the fields the gateway knows\n"
        "E t.yaml:15:7: kind: Deployment (apps/v1) is not a kind the "
        "gateway uses; strict manifests have only the kinds the gateway "
        "reads\n"
        "E t.yaml:21:26: items[0].kind: Service (v1) is not a kind the "
        "gateway uses; strict manifests have only the kinds the gateway "
        "reads\n"
        "W t.yaml:22:26: items[1].kind: a List inside a List is ignored\n"
        "W t.yaml:23:2: items[2]: an empty item is ignored\n");
    assert_int_equal(mcig_manifest_nerrors(m), 5);
    assert_int_equal(mcig_manifest_nwarnings(m), 3);
    mcig_manifest_destroy(m);

    /* it holds for the loads after the call, until the next */
    m = mcig_manifest_create();
    assert_non_null(m);
    assert_int_equal(mcig_manifest_load_buffer(m, "a.yaml", pod,
                                               strlen(pod)),
                     MCIG_MANIFEST_OK);
    mcig_manifest_set_strict(m, 1);
    assert_int_equal(mcig_manifest_load_buffer(m, "b.yaml", pod,
                                               strlen(pod)),
                     MCIG_MANIFEST_ERROR);
    mcig_manifest_set_strict(m, 0);
    assert_int_equal(mcig_manifest_load_buffer(m, "c.yaml", pod,
                                               strlen(pod)),
                     MCIG_MANIFEST_OK);
    expect_diags(m,
        "W a.yaml:1:7: kind: Pod (v1) is not a kind the gateway uses; the "
        "object is ignored\n"
        "E b.yaml:1:7: kind: Pod (v1) is not a kind the gateway uses; "
        "strict manifests have only the kinds the gateway reads\n"
        "W c.yaml:1:7: kind: Pod (v1) is not a kind the gateway uses; the "
        "object is ignored\n");
    mcig_manifest_destroy(m);

    /* Gateway and HTTPRoute are read for information: lenient still */
    m = mcig_manifest_create();
    assert_non_null(m);
    assert_int_equal(mcig_manifest_add_known_pool(m, "pool-a", 6),
                     MCIG_MANIFEST_OK);
    mcig_manifest_set_strict(m, 1);
    assert_int_equal(mcig_manifest_load_buffer(m, "t.yaml", gateway_route,
                                               strlen(gateway_route)),
                     MCIG_MANIFEST_OK);
    assert_int_equal(mcig_manifest_resolve(m), MCIG_MANIFEST_OK);
    assert_int_equal(mcig_manifest_nerrors(m), 0);
    assert_int_equal(mcig_manifest_nroutes(m), 3);
    mcig_manifest_destroy(m);

    /* kubectl's EndpointSlices, v1beta1 with its topology, pass */
    m = mcig_manifest_create();
    assert_non_null(m);
    assert_int_equal(mcig_manifest_add_known_pool(m, "pool-a", 6),
                     MCIG_MANIFEST_OK);
    mcig_manifest_set_strict(m, 1);
    assert_int_equal(mcig_manifest_load_buffer(m, "s.yaml", slice,
                                               strlen(slice)),
                     MCIG_MANIFEST_OK);
    assert_int_equal(mcig_manifest_resolve(m), MCIG_MANIFEST_OK);
    expect_diags(m, "");
    assert_int_equal(pool(m, "pool-a")->nmembers, 1);
    mcig_manifest_destroy(m);

    /* conf.d's manifests are strict-clean */
    m = mcig_manifest_create();
    assert_non_null(m);
    mcig_manifest_add_known_pool(m, "vllm-llama3-8b-instruct", 23);
    mcig_manifest_set_strict(m, 1);
    assert_int_equal(mcig_manifest_load_glob(m, "conf.d/*.yaml"),
                     MCIG_MANIFEST_OK);
    assert_int_equal(mcig_manifest_resolve(m), MCIG_MANIFEST_OK);
    assert_int_equal(mcig_manifest_nerrors(m), 0);
    assert_int_equal(mcig_manifest_nwarnings(m), 1);
    mcig_manifest_destroy(m);
}


static void
test_malformed_yaml(void **state)
{
    (void) state;

    check(NULL, "apiVersion: v1\nkind: [List\nitems: []\n",
          "E t.yaml:3:6: malformed YAML: did not find expected ',' or ']' "
          "(while parsing a flow sequence at line 2, column 7)\n");

    check(NULL, "a:\n  b: 1\n c: 2\n",
          "E t.yaml:3:2: malformed YAML: did not find expected key (while "
          "parsing a block mapping at line 1, column 1)\n");

    check(NULL, "kind: \"open\n",
          "E t.yaml:2:1: malformed YAML: found unexpected end of stream "
          "(while scanning a quoted scalar at line 1, column 7)\n");

    check(NULL, "a: 1\n\tb: 2\n",
          "E t.yaml:2:1: malformed YAML: found a tab character that violates "
          "indentation (while scanning a plain scalar at line 1, column "
          "4)\n");

    check(NULL, "apiVersion: v1\nkind: \xff\n",
          "E t.yaml:2:7: malformed YAML: invalid leading UTF-8 octet\n");

    check(NULL, "metadata:\n  name: a\n  name: b\n",
          "E t.yaml:3:3: metadata.name: the key is repeated in its mapping; "
          "the first is at line 2, column 3\n");

    check(NULL, "a: *nowhere\n",
          "E t.yaml:1:4: malformed YAML: the alias *nowhere names no "
          "anchor\n");

    check(NULL, "a: &self [1, *self]\n",
          "E t.yaml:1:14: malformed YAML: the alias *self is inside the node "
          "it names\n");

    /* the documents before the fault are taken */
    check(NULL,
          "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"
          "---\n"
          "a: [\n",
          "W t.yaml:2:7: kind: Deployment (apps/v1) is not a kind the gateway "
          "uses; the object is ignored\n"
          "E t.yaml:6:1: malformed YAML: did not find expected node content "
          "(while parsing a flow node at line 6, column 1)\n");
}


static void
test_aliases(void **state)
{
    mcig_manifest_t             *m;
    const mcig_manifest_pool_t  *p;

    (void) state;

    /* anchors and aliases work where they make sense */
    m = load("pool-a",
             "apiVersion: networking.gke.io/v1\n"
             "kind: HealthCheckPolicy\n"
             "metadata: {name: h}\n"
             "spec:\n"
             "  targetRef: &pool {kind: InferencePool, name: pool-a}\n"
             "  default:\n"
             "    checkIntervalSec: &five 5\n"
             "    timeoutSec: *five\n"
             "---\n"
             "apiVersion: networking.gke.io/v1\n"
             "kind: GCPBackendPolicy\n"
             "metadata: {name: b}\n"
             "spec:\n"
             "  targetRef: {kind: InferencePool, name: pool-a}\n"
             "  default: {timeoutSec: 60}\n");
    expect_diags(m, "");

    p = pool(m, "pool-a");
    assert_int_equal(p->health_timeout_sec.value, 5);
    assert_int_equal(p->timeout_sec.value, 60);

    mcig_manifest_destroy(m);
}


static void
test_multi_document(void **state)
{
    mcig_manifest_t  *m;

    (void) state;

    /* empty documents, comments only, and "..." ends */
    m = load("pool-a",
             "# a comment only\n"
             "---\n"
             "---\n"
             "apiVersion: inference.networking.x-k8s.io/v1alpha2\n"
             "kind: InferenceObjective\n"
             "metadata: {name: one}\n"
             "spec: {poolRef: {name: pool-a}}\n"
             "...\n"
             "---\n"
             "# nothing\n"
             "---\n"
             "apiVersion: inference.networking.x-k8s.io/v1alpha2\n"
             "kind: InferenceObjective\n"
             "metadata: {name: two}\n"
             "spec: {poolRef: {name: pool-a}, priority: 2}\n"
             "---\n");
    expect_diags(m, "");

    assert_int_equal(pool(m, "pool-a")->nobjectives, 2);
    assert_string_equal(pool(m, "pool-a")->objectives[1].name, "two");
    assert_int_equal(pool(m, "pool-a")->objectives[1].priority.value, 2);
    assert_int_equal(mcig_manifest_pool(m, 0)->objectives[1].src.line, 14);

    mcig_manifest_destroy(m);
}


static void
test_more_checks(void **state)
{
    (void) state;

    check("pool-a,pool-b",
          "apiVersion: networking.gke.io/v1\n"
          "kind: GCPBackendPolicy\n"
          "metadata: {name: b}\n"
          "spec:\n"
          "  targetRef: {kind: InferencePool, name: pool-a}\n"
          "  default:\n"
          "    customMetrics:\n"
          "    - name: gke.named_metrics.kv\n"
          "      maxUtilization: 50\n"
          "      maxUtilizationPercent: 50\n"
          "---\n"
          "apiVersion: networking.gke.io/v1\n"
          "kind: HealthCheckPolicy\n"
          "metadata: {name: h1}\n"
          "spec:\n"
          "  targetRef: {kind: InferencePool, name: pool-a}\n"
          "  default:\n"
          "    config:\n"
          "      httpHealthCheck:\n"
          "        requestPath: /health\n"
          "        port: 8000\n"
          "        portSpecification: USE_SERVING_PORT\n"
          "        host: example.com\n"
          "---\n"
          "apiVersion: networking.gke.io/v1\n"
          "kind: HealthCheckPolicy\n"
          "metadata: {name: h2}\n"
          "spec:\n"
          "  targetRef: {kind: InferencePool, name: pool-a}\n"
          "  default:\n"
          "    config:\n"
          "      httpHealthCheck: {requestPath: /ready}\n"
          "---\n"
          "apiVersion: inference.networking.k8s.io/v1\n"
          "kind: InferencePool\n"
          "metadata: {name: pool-c}\n"
          "spec:\n"
          "  selector: {matchLabels: {app: vllm}}\n"
          "  targetPorts: [{number: 8000}]\n"
          "  appProtocol: kubernetes.io/h2c\n"
          "---\n"
          "apiVersion: autoscaling.gke.io/v1beta1\n"
          "kind: AutoscalingMetric\n"
          "metadata: {name: m1}\n"
          "spec:\n"
          "  selector: {matchLabels: {app: pool-b}}\n"
          "  endpoints: [{port: 8000}, {port: 9000}]\n"
          "  metrics: [{name: vllm:a, exportName: kv}]\n"
          "---\n"
          "apiVersion: autoscaling.gke.io/v1beta1\n"
          "kind: AutoscalingMetric\n"
          "metadata: {name: m2}\n"
          "spec:\n"
          "  selector: {matchLabels: {app: pool-b}}\n"
          "  endpoints: [{port: 9100}]\n"
          "  metrics: [{name: vllm:b, exportName: kv}]\n"
          "---\n"
          "apiVersion: gateway.networking.k8s.io/v1beta1\n"
          "kind: Gateway\n"
          "metadata: {name: g}\n"
          "spec: {listeners: [{name: 80}]}\n"
          "---\n"
          "apiVersion: gateway.networking.k8s.io\n"
          "kind: Gateway\n"
          "metadata: {name: g2}\n",
          "E t.yaml:10:30: spec.default.customMetrics[0]"
          ".maxUtilizationPercent: maxUtilization is set too; set one\n"
          "W t.yaml:23:9: spec.default.config.httpHealthCheck.host: this "
          "field is not used by the gateway and ignored\n"
          "W t.yaml:21:15: spec.default.config.httpHealthCheck.port: the "
          "port is not used with USE_SERVING_PORT\n"
          "W t.yaml:40:16: spec.appProtocol: the gateway speaks HTTP/1.1 to "
          "members, not h2c\n"
          "W t.yaml:47:29: spec.endpoints[1]: only the first endpoint is "
          "used; this one is ignored\n"
          "W t.yaml:61:27: spec.listeners[0].name: 80 is not a string\n"
          "W t.yaml:63:13: apiVersion: \"gateway.networking.k8s.io\" is not "
          "an API version of Gateway (gateway.networking.k8s.io/*)\n"
          "E t.yaml:32:38: spec.default.config.httpHealthCheck.requestPath: "
          "\"/ready\" conflicts with \"/health\" for pool \"pool-a\" "
          "(t.yaml:20:22)\n"
          "E t.yaml:55:22: spec.endpoints[0].port: 9100 conflicts with 8000 "
          "for pool \"pool-b\" (t.yaml:47:22)\n"
          "E t.yaml:56:20: spec.metrics[0].name: pool \"pool-b\" exports "
          "\"kv\" as vllm:a already (t.yaml:48:20)\n");
}


static void
test_object_and_member_caps(void **state)
{
    int               i;
    char             *yaml, *p;
    mcig_manifest_t  *m;

    (void) state;

    /* 65537 pool imports in one List: the last one is refused */
    yaml = malloc(100 * (MCIG_MANIFEST_OBJECTS_MAX + 2));
    assert_non_null(yaml);

    p = yaml;
    p += sprintf(p, "apiVersion: v1\nkind: List\nitems:\n");

    for (i = 0; i <= MCIG_MANIFEST_OBJECTS_MAX; i++) {
        p += sprintf(p, "- {apiVersion: networking.gke.io/v1, "
                        "kind: GCPInferencePoolImport, metadata: {name: "
                        "p%d}}\n", i);
    }

    m = load(NULL, yaml);
    expect_diags(m, "E t.yaml:65540:3: items[65536]: there are more than "
                    "65536 objects\n");
    assert_int_equal(mcig_manifest_npools(m), MCIG_MANIFEST_OBJECTS_MAX);
    mcig_manifest_destroy(m);

    /* 8193 endpoints on 8 ports */
    p = yaml;
    p += sprintf(p, "apiVersion: inference.networking.k8s.io/v1\n"
                    "kind: InferencePool\n"
                    "metadata: {name: big}\n"
                    "spec:\n"
                    "  selector: {matchLabels: {app: big}}\n"
                    "  targetPorts: [{number: 1}, {number: 2}, {number: 3},"
                    " {number: 4}, {number: 5}, {number: 6}, {number: 7},"
                    " {number: 8}]\n"
                    "---\n"
                    "apiVersion: discovery.k8s.io/v1\n"
                    "kind: EndpointSlice\n"
                    "metadata: {name: s, labels: {app: big}}\n"
                    "endpoints:\n");

    for (i = 0; i < 8193; i++) {
        p += sprintf(p, "- addresses: [\"10.%d.%d.%d\"]\n", i >> 16,
                     (i >> 8) & 255, i & 255);
    }

    m = load(NULL, yaml);
    expect_diags(m, "E t.yaml:10:18: metadata.name: EndpointSlice default/s "
                    "brings the members of all pools over 65536\n");
    assert_int_equal(pool(m, "big")->nmembers, MCIG_MANIFEST_MEMBERS_MAX);
    mcig_manifest_destroy(m);

    free(yaml);
}


/* files and globs */

static void
test_files_and_globs(void **state)
{
    int               rc;
    char              dir[] = "/tmp/mcig-manifest-XXXXXX";
    char              path[256], expected[2048];
    mcig_manifest_t  *m;

    (void) state;

    assert_non_null(mkdtemp(dir));

    snprintf(path, sizeof(path), "%s/b.yaml", dir);
    write_file(path,
               "apiVersion: inference.networking.x-k8s.io/v1alpha2\n"
               "kind: InferenceObjective\n"
               "metadata: {name: from-b}\n"
               "spec: {poolRef: {name: pool-a}}\n");

    snprintf(path, sizeof(path), "%s/a.yaml", dir);
    write_file(path,
               "apiVersion: inference.networking.x-k8s.io/v1alpha2\n"
               "kind: InferenceObjective\n"
               "metadata: {name: from-a}\n"
               "spec: {poolRef: {name: pool-a}, priority: one}\n");

    snprintf(path, sizeof(path), "%s/c.txt", dir);
    write_file(path, "not: [yaml\n");

    snprintf(path, sizeof(path), "%s/sub.yaml", dir);
    assert_int_equal(mkdir(path, 0700), 0);

    m = mcig_manifest_create();
    assert_non_null(m);
    mcig_manifest_add_known_pool(m, "pool-a", 6);

    /* sorted, directories skipped; an error in one file fails the glob */
    snprintf(path, sizeof(path), "%s/*.yaml", dir);
    assert_int_equal(mcig_manifest_load_glob(m, path), MCIG_MANIFEST_ERROR);

    snprintf(path, sizeof(path), "%s/*.none", dir);
    assert_int_equal(mcig_manifest_load_glob(m, path), MCIG_MANIFEST_OK);

    snprintf(path, sizeof(path), "%s/missing.yaml", dir);
    assert_int_equal(mcig_manifest_load_glob(m, path), MCIG_MANIFEST_ERROR);

    snprintf(path, sizeof(path), "%s/sub.yaml", dir);
    assert_int_equal(mcig_manifest_load_file(m, path), MCIG_MANIFEST_ERROR);

    snprintf(path, sizeof(path), "%s/b.yaml", dir);
    assert_int_equal(mcig_manifest_load_glob(m, path), MCIG_MANIFEST_ERROR);

    /* not read: too large, or not a file (a FIFO would block) */
    snprintf(path, sizeof(path), "%s/big.yml", dir);
    write_file(path, "");
    assert_int_equal(truncate(path, MCIG_MANIFEST_FILE_MAX + 1), 0);
    assert_int_equal(mcig_manifest_load_file(m, path), MCIG_MANIFEST_ERROR);

    snprintf(path, sizeof(path), "%s/fifo.yml", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(mcig_manifest_load_glob(m, path), MCIG_MANIFEST_ERROR);

    rc = mcig_manifest_resolve(m);
    assert_int_equal(rc, MCIG_MANIFEST_OK);

    snprintf(expected, sizeof(expected),
             "E %s/a.yaml:4:43: spec.priority: \"one\" is not an integer\n"
             "W %s/*.none: no file matches\n"
             "E %s/missing.yaml: cannot open the file: No such file or "
             "directory\n"
             "E %s/sub.yaml: not a regular file\n"
             "E %s/b.yaml:3:18: metadata.name: InferenceObjective "
             "default/from-b is defined twice; the first is at "
             "%s/b.yaml:3:18\n"
             "E %s/big.yml: the file is larger than 16777216 bytes\n"
             "E %s/fifo.yml: not a regular file\n",
             dir, dir, dir, dir, dir, dir, dir, dir);
    expect_diags(m, expected);

    assert_int_equal(pool(m, "pool-a")->nobjectives, 1);
    assert_string_equal(pool(m, "pool-a")->objectives[0].name, "from-b");
    assert_string_equal(pool(m, "pool-a")->objectives[0].src.file + strlen(dir),
                        "/b.yaml");

    mcig_manifest_destroy(m);

    snprintf(path, sizeof(path), "%s/a.yaml", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/b.yaml", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/c.txt", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/big.yml", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/fifo.yml", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/sub.yaml", dir);
    rmdir(path);
    assert_int_equal(rmdir(dir), 0);
}


/* conf.d, as shipped */

static void
test_conf_d(void **state)
{
    mcig_manifest_t             *m;
    const mcig_manifest_pool_t  *p;
    const mcig_manifest_route_t *r;

    (void) state;

    m = mcig_manifest_create();
    assert_non_null(m);

    /* the upstream of conf.d/nginx.conf */
    mcig_manifest_add_known_pool(m, "vllm-llama3-8b-instruct", 23);

    assert_int_equal(mcig_manifest_load_glob(m, "conf.d/*.yaml"),
                     MCIG_MANIFEST_OK);
    assert_int_equal(mcig_manifest_resolve(m), MCIG_MANIFEST_OK);

    /* the guide's objective names a pool that the guide does not create */
    expect_diags(m,
        "W conf.d/inference-objective.yaml:15:11: spec.poolRef.name: no pool "
        "is named \"llama3-8b-instruct\"; the objective food-review applies "
        "to no pool\n");

    assert_int_equal(mcig_manifest_npools(m), 1);
    p = pool(m, "vllm-llama3-8b-instruct");

    assert_int_equal(p->balancing_mode.value,
                     MCIG_MANIFEST_MODE_CUSTOM_METRICS);
    assert_string_equal(p->balancing_mode.src.file,
                        "conf.d/backend-policy.yaml");
    assert_int_equal(p->max_utilization.value, 60);
    assert_true(p->dry_run.set);
    assert_int_equal(p->dry_run.value, 0);
    assert_int_equal(p->traffic_duration.value, MCIG_MANIFEST_TRAFFIC_LONG);
    assert_false(p->timeout_sec.set);
    assert_false(p->max_in_flight.set);
    assert_string_equal(p->custom_metric.value, "kv-cache");
    assert_string_equal(p->kv_metric.value, "vllm:kv_cache_usage_perc");

    assert_int_equal(p->metrics_port.value, 8000);
    assert_string_equal(p->metrics_path.value, "/metrics");
    assert_int_equal(p->nexports, 2);

    assert_true(p->health_check);
    assert_string_equal(p->health_path.value, "/health");
    assert_int_equal(p->health_port.value, 8000);
    assert_string_equal(p->health_port.src.file, "conf.d/mcig.yaml");
    assert_false(p->health_interval_sec.set);

    assert_int_equal(mcig_manifest_nroutes(m), 1);
    r = mcig_manifest_route(m, 0);
    assert_string_equal(r->pool, "vllm-llama3-8b-instruct");
    assert_true(r->pool_known);
    assert_int_equal(mcig_manifest_nlisteners(m), 1);
    assert_int_equal(mcig_manifest_listener(m, 0)->port, 80);

    mcig_manifest_destroy(m);
}


/* the two other policies of the guide, commented in backend-policy.yaml */
static void
test_conf_d_variants(void **state)
{
    int                          n, closed;
    char                        *text, *line, *next, *doc[2];
    size_t                       len[2];
    mcig_manifest_t             *m;
    const mcig_manifest_pool_t  *p;

    (void) state;

    text = read_file("conf.d/backend-policy.yaml");

    doc[0] = calloc(1, strlen(text) + 1);
    doc[1] = calloc(1, strlen(text) + 1);
    assert_non_null(doc[0]);
    assert_non_null(doc[1]);
    len[0] = 0;
    len[1] = 0;
    n = -1;

    /*
     * Each commented document starts with "# kind: GCPBackendPolicy" or
     * "# apiVersion: networking.gke.io/v1", and ends at a "#" line or at
     * the first line that is not a comment.
     */
    closed = 1;

    for (line = text; *line; line = next) {
        next = strchr(line, '\n');
        next = next ? next + 1 : line + strlen(line);

        if (closed
            && (strncmp(line, "# kind: GCPBackendPolicy\n", 25) == 0
                || strncmp(line, "# apiVersion: networking.gke.io/v1\n", 35)
                   == 0))
        {
            n++;
            closed = 0;
        }

        if (strncmp(line, "# ", 2) != 0) {
            closed = 1;
        }

        if (closed || n < 0 || n > 1) {
            continue;
        }

        memcpy(doc[n] + len[n], line + 2, next - line - 2);
        len[n] += next - line - 2;
    }

    assert_int_equal(n, 1);

    m = mcig_manifest_create();
    mcig_manifest_add_known_pool(m, "vllm-llama3-8b-instruct", 23);
    assert_int_equal(mcig_manifest_load_buffer(m, "in-flight.yaml", doc[0],
                                               len[0]),
                     MCIG_MANIFEST_OK);
    assert_int_equal(mcig_manifest_resolve(m), MCIG_MANIFEST_OK);
    expect_diags(m, "");

    p = pool(m, "vllm-llama3-8b-instruct");
    assert_int_equal(p->balancing_mode.value, MCIG_MANIFEST_MODE_IN_FLIGHT);
    assert_int_equal(p->max_in_flight.value, 1000);
    assert_true(p->dry_run.set);
    assert_int_equal(p->dry_run.value, 0);
    assert_src(&p->max_in_flight.src, "in-flight.yaml", 13, 37,
               "spec.default.maxInFlightRequestsPerEndpoint");
    mcig_manifest_destroy(m);

    /* the timeout variant, with the guide's AutoscalingMetric */
    m = mcig_manifest_create();
    mcig_manifest_add_known_pool(m, "vllm-llama3-8b-instruct", 23);
    assert_int_equal(mcig_manifest_load_buffer(m, "timeout.yaml", doc[1],
                                               len[1]),
                     MCIG_MANIFEST_OK);
    assert_int_equal(mcig_manifest_load_file(m, "conf.d/metrics.yaml"),
                     MCIG_MANIFEST_OK);
    assert_int_equal(mcig_manifest_resolve(m), MCIG_MANIFEST_OK);
    expect_diags(m, "");

    p = pool(m, "vllm-llama3-8b-instruct");
    assert_int_equal(p->timeout_sec.value, 100);
    assert_int_equal(p->balancing_mode.value,
                     MCIG_MANIFEST_MODE_CUSTOM_METRICS);
    assert_false(p->max_utilization.set);
    assert_string_equal(p->kv_metric.value, "vllm:kv_cache_usage_perc");
    mcig_manifest_destroy(m);

    /* added to the shipped policy rather than replacing it: refused */
    m = mcig_manifest_create();
    mcig_manifest_add_known_pool(m, "vllm-llama3-8b-instruct", 23);
    mcig_manifest_load_file(m, "conf.d/metrics.yaml");
    mcig_manifest_load_file(m, "conf.d/backend-policy.yaml");
    mcig_manifest_load_buffer(m, "in-flight.yaml", doc[0], len[0]);
    mcig_manifest_resolve(m);
    expect_diags(m,
        "E in-flight.yaml:4:9: metadata.name: GCPBackendPolicy "
        "default/my-backend-policy is defined twice; the first is at "
        "conf.d/backend-policy.yaml:50:9\n");
    mcig_manifest_destroy(m);

    free(doc[0]);
    free(doc[1]);
    free(text);
}


/* limits */

static void
test_limits(void **state)
{
    int               i;
    char             *big, *p;
    size_t            n;
    mcig_manifest_t  *m;

    (void) state;

    /* nesting */
    big = malloc(100000);
    assert_non_null(big);

    for (i = 0; i < 70; i++) {
        big[i] = '[';
    }

    big[70] = '\0';

    check(NULL, big,
          "E t.yaml:1:65: lists and mappings are nested deeper than 64 "
          "levels\n");

    /* a billion laughs */
    p = big;
    p += sprintf(p, "a: &a [x, x, x, x, x, x, x, x, x, x]\n");

    for (i = 0; i < 8; i++) {
        p += sprintf(p, "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, "
                     "*%c, *%c]\n", 'b' + i, 'b' + i, 'a' + i, 'a' + i,
                     'a' + i, 'a' + i, 'a' + i, 'a' + i, 'a' + i, 'a' + i,
                     'a' + i, 'a' + i);
    }

    check(NULL, big,
          "E t.yaml:6:4: aliases expand the document to more than 1000000 "
          "nodes\n");

    /* documents */
    p = big;

    for (i = 0; i < MCIG_MANIFEST_DOCS_MAX + 1; i++) {
        p += sprintf(p, "---\n");
    }

    check(NULL, big, "E t.yaml:4097:1: the file has more than 4096 "
                     "documents\n");

    free(big);

    /* size: the buffer is not read at all */
    n = MCIG_MANIFEST_FILE_MAX + 1;
    big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);

    m = mcig_manifest_create();
    assert_int_equal(mcig_manifest_load_buffer(m, "big.yaml", big, n),
                     MCIG_MANIFEST_ERROR);
    expect_diags(m, "E big.yaml: the file is larger than 16777216 bytes\n");
    mcig_manifest_destroy(m);

    free(big);
}


static void
test_diagnostics_cap(void **state)
{
    int               i;
    char             *yaml, *p;
    mcig_manifest_t  *m;

    (void) state;

    /* 1200 unknown fields: 1000 warnings kept, all counted */
    yaml = malloc(64 * 1300);
    assert_non_null(yaml);

    p = yaml;
    p += sprintf(p, "apiVersion: networking.gke.io/v1\n"
                    "kind: GCPBackendPolicy\n"
                    "metadata: {name: b}\n"
                    "spec:\n"
                    "  targetRef: {kind: InferencePool, name: nowhere}\n"
                    "  default:\n");

    for (i = 0; i < 1200; i++) {
        p += sprintf(p, "    field%d: 1\n", i);
    }

    m = load(NULL, yaml);

    assert_int_equal(mcig_manifest_ndiags(m), MCIG_MANIFEST_DIAGS_MAX);
    assert_int_equal(mcig_manifest_nwarnings(m), 1200);
    assert_int_equal(mcig_manifest_nerrors(m), 1);
    assert_int_equal(mcig_manifest_ndropped(m), 201);
    assert_string_equal(mcig_manifest_diag(m, 999)->text,
                        "t.yaml:1006:5: spec.default.field999: this field is "
                        "unknown to GCPBackendPolicy and ignored");
    assert_null(mcig_manifest_diag(m, 1000));

    mcig_manifest_destroy(m);
    free(yaml);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_inference_pool),
        cmocka_unit_test(test_inference_pool_v1alpha2),
        cmocka_unit_test(test_objectives),
        cmocka_unit_test(test_rewrites),
        cmocka_unit_test(test_backend_policy),
        cmocka_unit_test(test_autoscaling_metric_pod_shape),
        cmocka_unit_test(test_health_check_policy),
        cmocka_unit_test(test_endpoint_slices),
        cmocka_unit_test(test_gateway_httproute),
        cmocka_unit_test(test_import_and_known_pools),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_enums_and_formats),
        cmocka_unit_test(test_missing_fields),
        cmocka_unit_test(test_bad_names_and_versions),
        cmocka_unit_test(test_modes_conflict),
        cmocka_unit_test(test_unknown_pools_and_metrics),
        cmocka_unit_test(test_health_timeouts),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_unknown_fields_and_kinds),
        cmocka_unit_test(test_strict),
        cmocka_unit_test(test_malformed_yaml),
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_multi_document),
        cmocka_unit_test(test_more_checks),
        cmocka_unit_test(test_object_and_member_caps),
        cmocka_unit_test(test_files_and_globs),
        cmocka_unit_test(test_conf_d),
        cmocka_unit_test(test_conf_d_variants),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_diagnostics_cap),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
