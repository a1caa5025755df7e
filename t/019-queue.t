# Flow control: when every member of a pool is full, requests of priority
# >= 0 wait in a bounded queue (mcig_queue) and leave it by priority, then
# in turn by tenant, then in arrival order; a full queue answers 429, a
# request that waited its timeout 503, both as JSON with Retry-After.
#
# One member of capacity 1 makes the order visible: a request from the
# queue goes when the one before it has ended.  The gateway's access log
# goes to error.log, so that --- grep_error_log sees the order.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use Mcig;

# Sends a request from another client connection, in the background,
# with these headers; curl gives up after $secs seconds.
sub send_bg {
    my ($path, $secs, @headers) = @_;
    my $port = $Test::Nginx::Util::ServerPortForClient;

    Mcig::background("curl", "-s", "-o", "/dev/null", "-m", $secs,
                     (map { ("-H", $_) } @headers), "-d", '{"model":"m"}',
                     "http://127.0.0.1:$port$path");
}

# Mcig::hold() over HTTP/2, for a server that speaks nothing else.
sub hold_h2 {
    my ($path, $secs) = @_;
    my $port = $Test::Nginx::Util::ServerPortForClient;

    Mcig::background("curl", "-s", "-o", "/dev/null", "-m", $secs,
                     "--http2-prior-knowledge", "http://127.0.0.1:$port$path");
    pause(0.5);
}

sub pause {
    select(undef, undef, undef, shift);
}

our $pool = $Mcig::members . <<'_EOC_';
    upstream q {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_max_in_flight 1;
        mcig_objective high priority=10;
        mcig_objective batch priority=-1;
        MCIG_QUEUE
    }

    log_format qorder 'qorder $http_x_tag $status waited=$mcig_queue_time';
_EOC_

our $config = <<'_EOC_';
    location /v1/ {
        proxy_pass http://q;
        add_header X-Queue-Time "[$mcig_queue_time]" always;
        access_log logs/error.log qorder;
    }

    location = /mcig/status {
        mcig_status;
    }

    location = /mcig/metrics {
        mcig_status prometheus;
    }
_EOC_

# the pool with an mcig_queue line, or none
sub pool {
    my $line = shift // "";
    my $p = $::pool;
    $p =~ s/MCIG_QUEUE/$line/;
    return $p;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a request waits until a member has room, then goes
--- http_config eval: ::pool()
--- config eval: $::config
--- init
Mcig::hold("/v1/slow", 1, 1.5);
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 200
--- response_body
127.0.0.2
--- response_headers_like
X-Queue-Time: \[[1-9]\d{2,}\]
--- timeout: 10



=== TEST 2: over HTTP/2 as well
--- http_config eval: ::pool()
--- config eval: $::config
--- http2
--- init
main::hold_h2("/v1/slow", 1.5);
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 200
--- response_body
127.0.0.2
--- response_headers_like
X-Queue-Time: \[[1-9]\d{2,}\]
--- timeout: 10



=== TEST 3: a request that waited the queue's timeout: 503 and Retry-After
--- http_config eval: ::pool("mcig_queue timeout=500ms;")
--- config eval: $::config
--- init
Mcig::hold("/v1/slow", 1, 4);
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 503
--- response_headers
Retry-After: 1
Content-Type: application/json
--- response_headers_like
X-Queue-Time: \[(?:[5-9]\d\d|1\d\d\d)\]
--- response_body
{"error":{"message":"pool \"q\" is saturated: the request waited 500 ms in its queue","type":"server_error","param":null,"code":"queue_timeout"}}
--- error_log eval
qr/mcig: a request of priority 0 waited \d+ ms in the queue of pool "q" without room at a member, refused/
--- timeout: 10



=== TEST 4: a full queue: 429 and Retry-After
--- http_config eval: ::pool("mcig_queue max=1;")
--- config eval: $::config
--- init
Mcig::hold("/v1/slow", 1, 4);
main::send_bg("/v1/completions", 3);
main::pause(0.5);
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 429
--- response_headers
Retry-After: 1
Content-Type: application/json
X-Queue-Time: []
--- response_body
{"error":{"message":"pool \"q\" is saturated and its queue is full","type":"rate_limit_error","param":null,"code":"queue_full"}}
--- error_log
mcig: the queue of pool "q" is full, refused a request of priority 0 (1 waiting, max=1, max_per_priority=1)
--- timeout: 10



=== TEST 5: each priority has its own bound: a full band does not stop others
--- http_config eval: ::pool("mcig_queue max=10 max_per_priority=1 timeout=1500ms;")
--- config eval: $::config
--- init
Mcig::hold("/v1/slow", 1, 5);
main::send_bg("/v1/completions", 4);
main::pause(0.4);
--- pipelined_requests eval
["POST /v1/completions\n{\"model\":\"m\"}",
 "POST /v1/completions\n{\"model\":\"m\"}"]
--- more_headers eval
["", "x-gateway-inference-objective: high"]
--- error_code eval
[429, 503]
--- response_body_like eval
['"code":"queue_full"', '"code":"queue_timeout"']
--- timeout: 10



=== TEST 6: while requests wait, the status shows the queue by priority
--- http_config eval: ::pool()
--- config eval: $::config
--- init
Mcig::snapshot();
Mcig::hold("/v1/slow", 1, 5);
main::send_bg("/v1/completions", 4, "x-gateway-inference-objective: high");
main::send_bg("/v1/completions", 4);
main::send_bg("/v1/completions", 4, "x-gateway-inference-fairness-id: t2");
main::pause(1);
--- request
GET /mcig/status
--- response_body_filters eval: \&Mcig::counters_since
--- response_body_like eval
qr/"queue":\{"max":1024,"max_per_priority":1024,"timeout_ms":30000,"sheddable":"shed","depth":3,"bands":\[\{"priority":10,"waiting":1\},\{"priority":0,"waiting":2\}\],"queued":3,"dispatched":0,"queue_full":0,"queue_timeout":0,"abandoned":0,/
--- timeout: 10



=== TEST 7: a client that goes away leaves the queue at once
--- http_config eval: ::pool()
--- config eval: $::config
--- init
Mcig::snapshot();
Mcig::hold("/v1/slow", 1, 5);
main::send_bg("/v1/completions", 1);
main::pause(1.8);
--- request
GET /mcig/status
--- response_body_filters eval: \&Mcig::counters_since
--- response_body_like eval
qr/"depth":0,"bands":\[\],"queued":1,"dispatched":0,"queue_full":0,"queue_timeout":0,"abandoned":1,/
--- error_log eval
qr/qorder - 499 waited=\d+/
--- timeout: 10



=== TEST 8: over HTTP/2, a client that goes away leaves the queue too
--- http_config eval: ::pool()
--- config eval: $::config
--- http2
--- init
Mcig::snapshot();
main::hold_h2("/v1/slow", 5);
Mcig::background("curl", "-s", "-o", "/dev/null", "-m", 1,
                 "--http2-prior-knowledge", "-d", '{"model":"m"}',
                 "http://127.0.0.1:$Test::Nginx::Util::ServerPortForClient/v1/completions");
main::pause(1.8);
--- request
GET /mcig/status
--- response_body_filters eval: \&Mcig::counters_since
--- response_body_like eval
qr/"depth":0,"bands":\[\],"queued":1,"dispatched":0,"queue_full":0,"queue_timeout":0,"abandoned":1,/
--- timeout: 10



=== TEST 9: a higher priority that comes later goes first; FIFO inside a band
--- http_config eval: ::pool()
--- config eval: $::config
--- mcig_workers: 1
--- init
# arrival order holds within a worker's queue (each worker has its own;
# only the per-band counts are shared, t/019-queue-workers.t): the three
# requests must wait in one, so this block runs one worker whatever
# util/test.sh --workers N says
Mcig::hold("/v1/slow", 1, 3);
main::send_bg("/v1/completions", 8, "x-tag: low1");
main::pause(0.3);
main::send_bg("/v1/completions", 8, "x-tag: low2");
main::pause(0.3);
main::send_bg("/v1/completions", 8, "x-tag: high", "x-gateway-inference-objective: high");
main::pause(0.3);
--- request
POST /v1/completions
{"model":"m"}
--- more_headers
x-tag: main
--- error_code: 200
--- grep_error_log eval: qr/qorder (?:high|low\d) \d+/
--- grep_error_log_out
qorder high 200
qorder low1 200
qorder low2 200
--- timeout: 10



=== TEST 10: tenants take turns inside a band
--- http_config eval: ::pool()
--- config eval: $::config
--- mcig_workers: 1
--- init
# tenants take turns within a worker's queue (each worker has its own;
# only the per-band counts are shared, t/019-queue-workers.t): the four
# requests must wait in one, so this block runs one worker whatever
# util/test.sh --workers N says
Mcig::hold("/v1/slow", 1, 3);
main::send_bg("/v1/completions", 8, "x-tag: a1", "x-gateway-inference-fairness-id: a");
main::pause(0.3);
main::send_bg("/v1/completions", 8, "x-tag: a2", "x-gateway-inference-fairness-id: a");
main::pause(0.3);
main::send_bg("/v1/completions", 8, "x-tag: b1", "x-gateway-inference-fairness-id: b");
main::pause(0.3);
--- request
POST /v1/completions
{"model":"m"}
--- more_headers
x-tag: b2
x-gateway-inference-fairness-id: b
--- error_code: 200
--- grep_error_log eval: qr/qorder (?:a\d|b1) \d+/
--- grep_error_log_out
qorder a1 200
qorder b1 200
qorder a2 200
--- timeout: 10



=== TEST 11: sheddable requests are still shed, not queued, by default
--- http_config eval: ::pool()
--- config eval: $::config
--- init
Mcig::hold("/v1/slow", 1, 4);
--- request
POST /v1/completions
{"model":"m"}
--- more_headers
x-gateway-inference-objective: batch
--- error_code: 429
--- response_headers
X-Queue-Time: []
--- response_body_like: "code":"pool_saturated"
--- timeout: 10



=== TEST 12: sheddable=queue: sheddable requests wait too
--- http_config eval: ::pool("mcig_queue timeout=400ms sheddable=queue;")
--- config eval: $::config
--- init
Mcig::hold("/v1/slow", 1, 4);
--- request
POST /v1/completions
{"model":"m"}
--- more_headers
x-gateway-inference-objective: batch
--- error_code: 503
--- response_body_like: "code":"queue_timeout"
--- error_log
a request of priority -1 waited
--- timeout: 10



=== TEST 13: $mcig_queue_time is empty for a request that did not wait
--- http_config eval: ::pool()
--- config eval: $::config
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 200
--- response_headers
X-Queue-Time: []
--- error_log eval
qr/qorder - 200 waited=$/m



=== TEST 14: mcig_queue off: priority >= 0 goes on to a full member
--- http_config eval: ::pool("mcig_queue off;")
--- config eval: $::config
--- init
Mcig::hold("/v1/slow", 1, 4);
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 200
--- response_headers
X-Queue-Time: []



=== TEST 15: proxy_pass with variables: the pool is known too late to wait
--- http_config eval: ::pool()
--- config
    location /v1/ {
        mcig on;
        set $pool q;
        proxy_pass http://$pool;
        add_header X-Queue-Time "[$mcig_queue_time]" always;
    }
--- init
Mcig::hold("/v1/slow", 1, 4);
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 200
--- response_headers
X-Queue-Time: []



=== TEST 16: the Prometheus families of the queue pass promtool
--- http_config eval: ::pool("mcig_queue timeout=300ms;")
--- config eval: $::config
--- init
Mcig::snapshot("/mcig/metrics");
Mcig::hold("/v1/slow", 1, 3);
main::send_bg("/v1/completions", 3, "x-gateway-inference-objective: high");
main::pause(0.8);
--- request
GET /mcig/metrics
--- response_body_filters eval
sub {
    my $body = shift;
    my $since = Mcig::counters_since($body);
    my @want = grep { $since =~ /^\Q$_\E$/m } (
        'mcig_pool_queue_depth{pool="q",priority="10"} 0',
        'mcig_pool_queue_depth{pool="q",priority="0"} 0',
        'mcig_pool_queue_depth{pool="q",priority="-1"} 0',
        'mcig_pool_queue_requests_total{pool="q",outcome="queue_timeout"} 1',
        'mcig_pool_refused_total{pool="q",reason="queue_timeout"} 1',
        'mcig_pool_queue_wait_seconds_count{pool="q"} 0',
        'mcig_objective_queue_requests_total{pool="q",objective="high",outcome="queue_timeout"} 1',
        'mcig_objective_queue_requests_total{pool="q",objective="",outcome="queued"} 0');
    return Mcig::promtool($body) . scalar(@want) . " of 8 series\n";
}
--- response_body
promtool: ok
8 of 8 series
--- timeout: 10



=== TEST 17: the wait of dispatched requests is in the histogram
--- http_config eval: ::pool()
--- config eval: $::config
--- init
Mcig::snapshot("/mcig/metrics");
Mcig::hold("/v1/slow", 1, 2);
main::send_bg("/v1/completions", 5);
main::pause(2.5);
--- request
GET /mcig/metrics
--- response_body_filters eval: \&Mcig::counters_since
--- response_body_like eval
qr/^mcig_pool_queue_wait_seconds_bucket\{pool="q",le="0.500"\} 0\n.*^mcig_pool_queue_wait_seconds_bucket\{pool="q",le="\+Inf"\} 1\nmcig_pool_queue_wait_seconds_sum\{pool="q"\} \d+\.\d{3}\nmcig_pool_queue_wait_seconds_count\{pool="q"\} 1$/sm
--- timeout: 10



=== TEST 18: a pool at its limit by its metrics (more than max_queue waiting): a request waits until a scrape shows room
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream m {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics interval=100ms;
        mcig_balancing_mode custom_metrics;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://m;
        add_header X-Queue-Time "[$mcig_queue_time]" always;
    }
--- user_files
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.95
vllm:num_requests_waiting 6
--- init
main::pause(0.5);
Mcig::background("sh", "-c", "sleep 1; echo 'vllm:kv_cache_usage_perc 0.1' > $Test::Nginx::Util::ServRoot/html/metrics-127.0.0.2.prom");
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 200
--- response_headers_like
X-Queue-Time: \[[1-9]\d{2,}\]
--- timeout: 10



=== TEST 19: mcig_queue needs mcig_pool
--- http_config
    upstream plain {
        server 127.0.0.2:80;
        mcig_queue;
    }
--- config
--- must_die
--- error_log
"mcig_queue" in upstream "plain" in



=== TEST 20: invalid parameters
--- http_config
    upstream q {
        server 127.0.0.2:80;
        mcig_pool;
        mcig_queue max=0;
    }
--- config
--- must_die
--- error_log
invalid "max=0": a number of waiting requests from 1 to 1000000 is expected



=== TEST 21: max_per_priority may not exceed max
--- http_config
    upstream q {
        server 127.0.0.2:80;
        mcig_pool;
        mcig_queue max=2 max_per_priority=3 sheddable=queue;
    }
--- config
--- must_die
--- error_log
mcig_queue: max_per_priority=3 is larger than max=2



=== TEST 22: an unknown parameter
--- http_config
    upstream q {
        server 127.0.0.2:80;
        mcig_pool;
        mcig_queue timeout=30s sheddable=drop;
    }
--- config
--- must_die
--- error_log
invalid parameter "sheddable=drop" of mcig_queue



=== TEST 23: past the target with cache left: requests of priority >= 0 go on, sheddable ones are shed
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream m {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics interval=100ms;
        mcig_balancing_mode custom_metrics max_utilization=80;
        mcig_objective batch priority=-1;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://m;
        add_header X-Queue-Time "[$mcig_queue_time]" always;
    }
--- user_files
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.9
vllm:num_requests_running 1000
vllm:num_requests_waiting 5
--- init
main::pause(0.5);
--- pipelined_requests eval
["POST /v1/completions\n{\"model\":\"m\"}",
 "POST /v1/completions\n{\"model\":\"m\"}"]
--- more_headers eval
["", "x-gateway-inference-objective: batch"]
--- error_code eval
[200, 429]
--- response_headers eval
["X-Queue-Time: []", "X-Queue-Time: []"]



=== TEST 24: sheddable=queue: a sheddable request waits while the pool is past its target
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream m {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics interval=100ms;
        mcig_balancing_mode custom_metrics max_utilization=80;
        mcig_objective batch priority=-1;
        mcig_queue sheddable=queue;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://m;
        add_header X-Queue-Time "[$mcig_queue_time]" always;
    }
--- user_files
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.9
vllm:num_requests_running 1000
--- init
main::pause(0.5);
system("(sleep 1; echo 'vllm:kv_cache_usage_perc 0.1' > $Test::Nginx::Util::ServRoot/html/metrics-127.0.0.2.prom) >/dev/null 2>&1 &");
--- more_headers
x-gateway-inference-objective: batch
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 200
--- response_headers_like
X-Queue-Time: \[[1-9]\d{2,}\]
--- timeout: 10
