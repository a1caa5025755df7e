# mcig_manifests: pools configured by the GKE guide's Kubernetes manifests;
# directives win over them; validation errors stop nginx -t with the file,
# line, column and field; model rewrite by header and by
# InferenceModelRewrite, in memory, in a temporary file and chunked.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use Mcig;

# a member that shows the body and length it received
our $echo_member = $Mcig::members . <<'_EOC_';
    server {
        listen 127.0.0.2:$TEST_NGINX_RAND_PORT_1;
        client_body_buffer_size 64k;
        client_body_in_single_buffer on;

        location /v1/ {
            rewrite ^ /sink break;
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT;
            add_header X-Body $request_body always;
            add_header X-Length $http_content_length always;
            add_header X-Rewrite-Header "[$http_x_gateway_model_name_rewrite]"
                       always;
        }
    }

    upstream echo {
        server 127.0.0.2:$TEST_NGINX_RAND_PORT_1;
        mcig_pool;
    }
_EOC_

our $echo_location = <<'_EOC_';
    location /v1/ {
        proxy_pass http://echo;
        proxy_buffer_size 64k;
        proxy_buffers 4 64k;
        proxy_busy_buffers_size 64k;
        add_header X-Model $mcig_model always;
        add_header X-Target $mcig_target_model always;
    }

    location = /sink {
        return 200 "ok\n";
    }
_EOC_

our $ssi = <<'_EOC_';
    location = /t {
        ssi on;
        ssi_types *;
        default_type text/plain;
        return 200 '<!--# include virtual="/v1/a" wait="yes" --><!--# include virtual="/v1/b" wait="yes" -->';
    }
_EOC_

# what "nginx -t" says of the running configuration, as html/t.txt:
# warnings printed while the configuration is read go to its output
sub nginx_t {
    my $root = $Test::Nginx::Util::ServRoot;
    my $bin = $ENV{TEST_NGINX_BINARY} || "nginx";
    my $out = `$bin -t -p $root/ -c $root/conf/nginx.conf 2>&1`;
    Mcig::html_file("t.txt", $out);
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a GCPBackendPolicy and an AutoscalingMetric make the pool balance on KV usage
--- http_config eval
$::Mcig::members . <<'_EOC_';
    mcig_manifests ../html/*.yaml;

    upstream vllm {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config eval
"location /v1/ { proxy_pass http://vllm; }\n"
. "location = /status { mcig_status; }\n" . $::ssi
--- user_files
>>> policy.yaml
apiVersion: networking.gke.io/v1
kind: GCPBackendPolicy
metadata:
  name: my-backend-policy
spec:
  targetRef:
    group: "networking.gke.io"
    kind: GCPInferencePoolImport
    name: vllm
  default:
    balancingMode: CUSTOM_METRICS
    trafficDuration: LONG
    customMetrics:
    - name: gke.named_metrics.kv-cache
      dryRun: false
      maxUtilization: 60
>>> metrics.yaml
apiVersion: autoscaling.gke.io/v1beta1
kind: AutoscalingMetric
metadata:
  name: gpu-cache
  namespace: default
spec:
  selector:
    matchLabels:
      app: vllm
  endpoints:
  - port: $TEST_NGINX_SERVER_PORT
    path: /metrics
  metrics:
  - name: vllm:kv_cache_usage_perc
    exportName: kv-cache
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.5
>>> metrics-127.0.0.3.prom
vllm:kv_cache_usage_perc 0.1
--- init
select(undef, undef, undef, 0.6);
--- request
GET /t
--- response_body
127.0.0.3
127.0.0.3
--- no_error_log
[warn]



=== TEST 2: the pool's status shows the manifest's settings
--- http_config eval
$::Mcig::members . <<'_EOC_';
    mcig_manifests ../html/policy.yaml;

    upstream vllm {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location = /status { mcig_status; }
--- user_files
>>> policy.yaml
apiVersion: networking.gke.io/v1
kind: GCPBackendPolicy
metadata:
  name: in-flight
spec:
  targetRef:
    kind: InferencePool
    name: vllm
  default:
    balancingMode: IN_FLIGHT
    maxInFlightRequestsPerEndpoint: 7
    timeoutSec: 90
--- request
GET /status
--- response_body_like eval
qr/"balancing_mode":"in_flight","max_in_flight":7,/



=== TEST 3: InferenceObjectives from a manifest; a directive of the same name wins
--- http_config eval
$::Mcig::members . <<'_EOC_';
    mcig_manifests ../html/objectives.yaml;

    upstream vllm {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_objective batch priority=-5;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://vllm;
        add_header X-Priority "$mcig_objective=$mcig_priority" always;
    }
--- user_files
>>> objectives.yaml
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceObjective
metadata:
  name: food-review
spec:
  priority: 10
  poolRef:
    name: vllm
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceObjective
metadata:
  name: batch
spec:
  priority: -1
  poolRef:
    name: vllm
--- request eval
["POST /v1/completions\n{\"model\":\"m\"}",
 "POST /v1/completions\n{\"model\":\"m\"}",
 "POST /v1/completions\n{\"model\":\"m\"}"]
--- more_headers eval
["x-gateway-inference-objective: food-review",
 "x-gateway-inference-objective: batch",
 ""]
--- response_headers eval
[{"X-Priority" => "food-review=10"},
 {"X-Priority" => "batch=-5"},
 {"X-Priority" => "=0"}]



=== TEST 3b: nginx -t names the objective a directive overrides
--- http_config eval
$::Mcig::members . <<'_EOC_';
    mcig_manifests ../html/objectives.yaml;

    upstream vllm {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_objective batch priority=-5;
    }
_EOC_
--- config
    location = /t.txt { }
--- user_files
>>> objectives.yaml
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceObjective
metadata:
  name: batch
spec:
  priority: -1
  poolRef:
    name: vllm
--- init
main::nginx_t();
--- request
GET /t.txt
--- response_body_like eval
qr{\[warn\] \d+#\d+: "mcig_objective" in upstream "vllm" in \S+/nginx.conf:\d+ wins over metadata.name of \S+/html/objectives.yaml:4:9\n}



=== TEST 4: mcig_balancing_mode wins over the policy's mode, with a warning
--- http_config eval
$::Mcig::members . <<'_EOC_';
    mcig_manifests ../html/policy.yaml;

    upstream vllm {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_balancing_mode in_flight;
    }
_EOC_
--- config
    location = /status { mcig_status; }
    location = /t.txt { }
--- user_files
>>> policy.yaml
apiVersion: networking.gke.io/v1
kind: GCPBackendPolicy
metadata:
  name: p
spec:
  targetRef:
    kind: InferencePool
    name: vllm
  default:
    balancingMode: CUSTOM_METRICS
    customMetrics:
    - name: gke.named_metrics.kv-cache
      maxUtilization: 60
---
apiVersion: autoscaling.gke.io/v1beta1
kind: AutoscalingMetric
metadata:
  name: m
spec:
  selector:
    matchLabels:
      app: vllm
  endpoints:
  - path: /metrics
  metrics:
  - name: vllm:kv_cache_usage_perc
    exportName: kv-cache
--- init
main::nginx_t();
--- request eval
["GET /status", "GET /t.txt"]
--- response_body_like eval
[qr/"balancing_mode":"in_flight"/,
 qr{\[warn\] \d+#\d+: "mcig_balancing_mode" in upstream "vllm" in \S+/nginx.conf:\d+ wins over spec.default.balancingMode of \S+/html/policy.yaml:10:20\n}]



=== TEST 5: an out-of-range value stops nginx -t with its file, line, column and field
--- http_config
    mcig_manifests ../html/policy.yaml;

    upstream vllm {
        server 127.0.0.2:8000;
        mcig_pool;
    }
--- config
--- user_files
>>> policy.yaml
apiVersion: networking.gke.io/v1
kind: GCPBackendPolicy
metadata:
  name: p
spec:
  targetRef:
    kind: InferencePool
    name: vllm
  default:
    balancingMode: CUSTOM_METRICS
    customMetrics:
    - name: gke.named_metrics.kv-cache
      maxUtilization: 150
--- must_die
--- error_log eval
qr{\[emerg\] .*mcig_manifests: \S+/html/policy.yaml:13:23: spec.default.customMetrics\[0\].maxUtilization: 150 is out of range \(0-100\)}



=== TEST 6: a policy for a pool that does not exist
--- http_config
    mcig_manifests ../html/policy.yaml;

    upstream vllm {
        server 127.0.0.2:8000;
        mcig_pool;
    }
--- config
--- user_files
>>> policy.yaml
apiVersion: networking.gke.io/v1
kind: GCPBackendPolicy
metadata:
  name: p
spec:
  targetRef:
    kind: InferencePool
    name: vlm
  default:
    balancingMode: IN_FLIGHT
--- must_die
--- error_log eval
qr{\[emerg\] .*mcig_manifests: \S+/html/policy.yaml:8:11: spec.targetRef.name: .*vlm}



=== TEST 7: unknown fields and kinds are warnings that name them
--- http_config
    mcig_manifests ../html/a.yaml;

    upstream vllm {
        server 127.0.0.2:8000;
        mcig_pool;
    }
--- config
    location = /t.txt { }
--- user_files
>>> a.yaml
apiVersion: networking.gke.io/v1
kind: GCPBackendPolicy
metadata:
  name: p
spec:
  targetRef:
    kind: InferencePool
    name: vllm
  default:
    balancingMode: IN_FLIGHT
    maxInFlightRequestPerEndpoint: 50
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: c
--- init
main::nginx_t();
--- request
GET /t.txt
--- response_body_like eval
qr{\[warn\] \d+#\d+: mcig_manifests: \S+/html/a.yaml:11:5: spec.default.maxInFlightRequestPerEndpoint: this field is unknown to GCPBackendPolicy and ignored \(did you mean maxInFlightRequestsPerEndpoint\?\)\n.*\[warn\] \d+#\d+: mcig_manifests: \S+/html/a.yaml:14:7: kind: ConfigMap \(v1\) is not a kind the gateway uses}



=== TEST 7b: malformed YAML: libyaml's error with its position
--- http_config
    mcig_manifests ../html/a.yaml;

    upstream vllm {
        server 127.0.0.2:8000;
        mcig_pool;
    }
--- config
--- user_files
>>> a.yaml
apiVersion: networking.gke.io/v1
kind: GCPBackendPolicy
spec:
  extra: [unclosed
--- must_die
--- error_log eval
qr{\[emerg\] .*mcig_manifests: \S+/html/a.yaml:5:1: malformed YAML: did not find expected ',' or '\]' \(while parsing a flow sequence at line 4, column 10\)}



=== TEST 7c: strict: unknown fields and kinds stop nginx -t, with file, line and what they are
--- http_config
    mcig_manifests ../html/a.yaml strict;

    upstream vllm {
        server 127.0.0.2:8000;
        mcig_pool;
    }
--- config
--- user_files
>>> a.yaml
apiVersion: networking.gke.io/v1
kind: GCPBackendPolicy
metadata:
  name: p
spec:
  targetRef:
    kind: InferencePool
    name: vllm
  default:
    balancingMode: IN_FLIGHT
    maxInFlightRequestPerEndpoint: 50
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: c
--- must_die
--- error_log eval
[qr{\[emerg\] .*mcig_manifests: \S+/html/a.yaml:11:5: spec.default.maxInFlightRequestPerEndpoint: this field is unknown to GCPBackendPolicy \(did you mean maxInFlightRequestsPerEndpoint\?\); strict manifests have only the fields the gateway knows},
 qr{\[emerg\] .*mcig_manifests: \S+/html/a.yaml:14:7: kind: ConfigMap \(v1\) is not a kind the gateway uses; strict manifests have only the kinds the gateway reads},
 qr{\[emerg\] .*mcig_manifests could not load "../html/a.yaml" in \S+/nginx.conf:\d+}]



=== TEST 7d: strict is its directive's, for each of its files and globs
--- http_config
    mcig_manifests ../html/lenient.yaml;
    mcig_manifests ../html/policy.yaml ../html/bad*.yaml strict;

    upstream vllm {
        server 127.0.0.2:8000;
        mcig_pool;
    }
--- config
--- user_files
>>> lenient.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: c
>>> policy.yaml
apiVersion: networking.gke.io/v1
kind: HealthCheckPolicy
metadata:
  name: h
spec:
  targetRef: {kind: InferencePool, name: vllm}
  default:
    config:
      type: HTTP
      httpHealthCheck: {requestPath: /health, port: 8000}
>>> bad-1.yaml
apiVersion: networking.gke.io/v1
kind: HealthCheckPolicy
metadata:
  name: h2
spec:
  targetRef: {kind: InferencePool, name: vllm}
  default:
    checkIntervalSecs: 10
--- must_die
--- error_log eval
[qr{\[warn\] .*mcig_manifests: \S+/html/lenient.yaml:2:7: kind: ConfigMap \(v1\) is not a kind the gateway uses; the object is ignored},
 qr{\[emerg\] .*mcig_manifests: \S+/html/bad-1.yaml:8:5: spec.default.checkIntervalSecs: this field is unknown to HealthCheckPolicy \(did you mean checkIntervalSec\?\); strict manifests have only the fields the gateway knows},
 qr{\[emerg\] .*mcig_manifests could not load "../html/bad\*.yaml" in \S+/nginx.conf:\d+}]



=== TEST 7e: strict manifests that are clean load as lenient ones do
--- http_config
    mcig_manifests ../html/policy.yaml strict;

    upstream vllm {
        server 127.0.0.2:8000;
        mcig_pool;
    }
--- config
    location = /t.txt { }
--- user_files
>>> policy.yaml
apiVersion: networking.gke.io/v1
kind: HealthCheckPolicy
metadata:
  name: h
spec:
  targetRef: {kind: InferencePool, name: vllm}
  default:
    checkIntervalSec: 7
    config:
      type: HTTP
      httpHealthCheck: {requestPath: /healthz, port: 8000}
--- init
main::nginx_t();
--- request
GET /t.txt
--- response_body_like eval
qr{^(?!.*mcig_manifests).*test is successful}s



=== TEST 7f: "strict" anywhere but after the files is refused
--- http_config
    mcig_manifests strict ../html/a.yaml;

    upstream vllm {
        server 127.0.0.2:8000;
        mcig_pool;
    }
--- config
--- user_files
>>> a.yaml
apiVersion: v1
kind: List
items: []
--- must_die
--- error_log eval
qr{\[emerg\] .*"strict" of mcig_manifests must follow the files and globs, as its last parameter; a file of that name is written "\./strict" in \S+/nginx.conf:\d+}



=== TEST 7g: "strict" alone names no manifests
--- http_config
    mcig_manifests strict;

    upstream vllm {
        server 127.0.0.2:8000;
        mcig_pool;
    }
--- config
--- must_die
--- error_log eval
qr{\[emerg\] .*"strict" of mcig_manifests must follow the files and globs, as its last parameter}



=== TEST 8: the rewrite header replaces the body's model; the length follows
--- http_config eval: $::echo_member
--- config eval: $::echo_location
--- request
POST /v1/chat/completions
{"messages":[{"role":"user","content":"hi"}],"model":"food-review","stream":false}
--- more_headers
x-gateway-model-name-rewrite: food-review-2
--- response_headers
X-Body: {"messages":[{"role":"user","content":"hi"}],"model":"food-review-2","stream":false}
X-Length: 84
X-Rewrite-Header: []
X-Model: food-review
X-Target: food-review-2
--- response_body
ok



=== TEST 9: a body in a temporary file is rewritten without reading it back
--- http_config eval: $::echo_member
--- config eval
"client_body_buffer_size 1k;\n" . $::echo_location
--- request eval
"POST /v1/completions\n{\"prompt\":\"" . ("a" x 3000) . "\",\"model\":\"x\",\"max_tokens\":1}"
--- more_headers
x-gateway-model-name-rewrite: a "quoted" \ name
--- response_headers eval
{"X-Body" => "{\"prompt\":\"" . ("a" x 3000)
             . "\",\"model\":\"a \\\"quoted\\\" \\\\ name\",\"max_tokens\":1}",
 "X-Length" => 3046,
 "X-Target" => 'a "quoted" \ name'}
--- error_log
a client request body is buffered to a temporary file



=== TEST 10: a chunked body is rewritten
--- http_config eval: $::echo_member
--- config eval: $::echo_location
--- raw_request eval
"POST /v1/completions HTTP/1.1\r
Host: localhost\r
Connection: close\r
x-gateway-model-name-rewrite: longer-model-name\r
Transfer-Encoding: chunked\r
\r
9\r
{\"model\":\r
6\r
\"m\",\"p\r
8\r
\":\"hi\"}\n\r
0\r
\r
"
--- response_headers
X-Body: {"model":"longer-model-name","p":"hi"}
X-Target: longer-model-name



=== TEST 11: a rewrite header that is not a model name is refused
--- http_config eval: $::echo_member
--- config eval: $::echo_location
--- request
POST /v1/completions
{"model":"m"}
--- more_headers eval
"x-gateway-model-name-rewrite: " . ("x" x 300)
--- error_code: 400
--- response_body_like eval
qr/"code":"invalid_model_rewrite"/



=== TEST 12: InferenceModelRewrite splits a model by weight
--- http_config eval
$::echo_member . <<'_EOC_';
    mcig_manifests ../html/rewrite.yaml;
_EOC_
--- config eval: $::echo_location . "location = /split.txt { }\n"
--- user_files
>>> rewrite.yaml
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModelRewrite
metadata:
  name: food-review-canary
spec:
  poolRef:
    name: echo
  rules:
  - matches:
    - model:
        type: Exact
        value: food-review
    targets:
    - modelRewrite: food-review-1
      weight: 75
    - modelRewrite: food-review-2
      weight: 25
--- init
my $port = $Test::Nginx::Util::ServerPortForClient;
my %n;
for (1 .. 400) {
    my $h = `curl -s -D - -o /dev/null -H 'Content-Type: application/json' -d '{"model":"food-review"}' http://127.0.0.1:$port/v1/completions`;
    $n{$1}++ if $h =~ /^X-Target: (\S+)/mi;
}
my $one = $n{"food-review-1"} || 0;
my $two = $n{"food-review-2"} || 0;
# 75 % of 400 is 300, sd 8.7: 4 sd either side
Mcig::html_file("split.txt", ($one + $two == 400 && $one >= 265 && $one <= 335)
                             ? "ok\n" : "food-review-1=$one food-review-2=$two\n");
--- request
GET /split.txt
--- response_body
ok



=== TEST 13: members from an EndpointSlice, regions from their zones, not ready ones down
--- http_config eval
$::Mcig::members . <<'_EOC_';
    mcig_regions europe-west3 us-east4;
    mcig_manifests ../html/slices.yaml;

    upstream vllm {
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ { proxy_pass http://vllm; }
    location = /status { mcig_status; }
--- user_files
>>> slices.yaml
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: vllm-abcde
  namespace: default
  labels:
    inference.networking.k8s.io/pool-name: vllm
addressType: IPv4
ports:
- name: http
  port: $TEST_NGINX_SERVER_PORT
  protocol: TCP
endpoints:
- addresses: ["127.0.0.2"]
  conditions: {ready: true}
  zone: europe-west3-c
- addresses: ["127.0.0.3"]
  conditions: {ready: false}
  zone: us-east4-a
--- request eval
["GET /v1/a", "GET /v1/b", "GET /status"]
--- response_body_like eval
["^127.0.0.2\n\$", "^127.0.0.2\n\$",
 qr/"address":"127.0.0.2:\d+","region":"europe-west3","cluster":"".*"address":"127.0.0.3:\d+","region":"us-east4"/]



=== TEST 14: an upstream with neither server lines nor EndpointSlice members
--- http_config
    upstream vllm {
        mcig_pool;
    }
--- config
--- must_die
--- error_log eval
qr/no servers are inside upstream "vllm" in \S+:\d+, and no EndpointSlice of mcig_manifests names it/
