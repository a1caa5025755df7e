# Faults of the members' metrics pages never delay or fail client requests:
# the member's figures go stale and its in-flight count stands in, unless
# other members' figures are fresh: then it counts as twice its target.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use Mcig;

our $page = "vllm:kv_cache_usage_perc 0.5\nvllm:num_requests_running 1\n"
            . ("# padding comment line of a metrics page\n" x 10);

our $http_config = $Mcig::members . <<'_EOC_';
    upstream faulty {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics PATH interval=100ms timeout=TIMEOUT max_size=4k;
        mcig_balancing_mode custom_metrics;
    }
_EOC_

sub config_with {
    my ($path, $timeout) = @_;
    my $c = $http_config;
    $timeout //= "300ms";
    $c =~ s/PATH/$path/;
    $c =~ s/TIMEOUT/$timeout/;
    return $c;
}

# TEST 4's cut comes 200 ms after the page stalls (the mock's
# proxy_read_timeout); under valgrind getting there takes longer than
# timeout=300ms, and a scrape that times out first logs that instead (a
# member's first failure only is logged).  The block gives its scrapes
# timeout=3s, which the cut still beats by far, and waits for the first
# failure on the status page rather than a fixed time.

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a page slower than the timeout
--- http_config eval: ::config_with("path=/metrics-slow")
--- config
    location /v1/ {
        proxy_pass http://faulty;
    }
--- user_files eval
[["metrics-127.0.0.2.prom" => $::page], ["metrics-127.0.0.3.prom" => $::page]]
--- init
select(undef, undef, undef, 0.8);
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 200
--- error_log eval
qr/scraping the metrics of member 127\.0\.0\.2:\d+ of pool "faulty" from http:\/\/127\.0\.0\.2:\d+\/metrics-slow(\?\.\.\.)? failed: Timeout was reached/
--- timeout: 3



=== TEST 2: a 500 on /metrics
--- http_config eval: ::config_with("path=/metrics-500")
--- config
    location /v1/ {
        proxy_pass http://faulty;
    }
--- init
select(undef, undef, undef, 0.5);
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 200
--- error_log eval
qr/scraping the metrics of member 127\.0\.0\.3:\d+ of pool "faulty" from http:\/\/127\.0\.0\.3:\d+\/metrics-500(\?\.\.\.)? failed: it answered with status 500;/



=== TEST 3: a page over max_size is cut off and not used
--- http_config eval: ::config_with("path=/metrics")
--- config
    location /v1/ {
        proxy_pass http://faulty;
    }
--- user_files eval
[["metrics-127.0.0.2.prom" => $::page x 200], ["metrics-127.0.0.3.prom" => $::page x 200]]
--- init
select(undef, undef, undef, 0.5);
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 200
--- error_log eval
qr/scraping the metrics of member 127\.0\.0\.2:\d+ of pool "faulty" from http:\/\/127\.0\.0\.2:\d+\/metrics\S* failed: the page is larger than the size limit/



=== TEST 4: a response cut in the middle
--- http_config eval: ::config_with("path=/metrics-cut", "3s")
--- config
    location /v1/ {
        proxy_pass http://faulty;
    }

    location = /mcig/status {
        mcig_status;
    }
--- user_files eval
[["metrics-127.0.0.2.prom" => $::page x 10], ["metrics-127.0.0.3.prom" => $::page x 10]]
--- init
Mcig::wait_scrapes(2, "scrape_errors");
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 200
--- error_log eval
qr/scraping the metrics of member 127\.0\.0\.2:\d+ of pool "faulty" from http:\/\/127\.0\.0\.2:\d+\/metrics\S* failed: (Transferred a partial file|Failure when receiving data)/
--- timeout: 3



=== TEST 5: NaN and infinite values are not used
--- http_config eval: ::config_with("path=/metrics")
--- config
    location /v1/ {
        proxy_pass http://faulty;
    }
--- user_files
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc NaN
>>> metrics-127.0.0.3.prom
vllm:kv_cache_usage_perc +Inf
--- init
select(undef, undef, undef, 0.5);
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 200
--- error_log eval
[qr/member 127\.0\.0\.2:\d+ of pool "faulty" from http:\/\/127\.0\.0\.2:\d+\/metrics\S* failed: the page has no valid KV-cache usage/,
 qr/member 127\.0\.0\.3:\d+ of pool "faulty" from http:\/\/127\.0\.0\.3:\d+\/metrics\S* failed: the page has no valid KV-cache usage/]



=== TEST 6: binary garbage
--- http_config eval: ::config_with("path=/metrics")
--- config
    location /v1/ {
        proxy_pass http://faulty;
    }
--- user_files eval
[["metrics-127.0.0.2.prom" => join("", map { chr(($_ * 7919) % 256) } 1 .. 3000)],
 ["metrics-127.0.0.3.prom" => "\x00\xff\xfe{{{\n\x01\x02 vllm:kv_cache_usage_perc\x00 0.5\n"]]
--- init
select(undef, undef, undef, 0.5);
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 200
--- error_log eval
[qr/member 127\.0\.0\.2:\d+ of pool "faulty" from http:\/\/127\.0\.0\.2:\d+\/metrics\S* failed: the page has no valid KV-cache usage/,
 qr/member 127\.0\.0\.3:\d+ of pool "faulty" from http:\/\/127\.0\.0\.3:\d+\/metrics\S* failed: the page has no valid KV-cache usage/]



=== TEST 7: a 50 MB page is cut off at max_size
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream huge_page {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics interval=500ms;
        mcig_balancing_mode custom_metrics;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://huge_page;
    }
--- user_files eval
[["metrics-127.0.0.2.prom" =>
  "vllm:kv_cache_usage_perc 0.5\n" . ("# padding\n" x 5_000_000)]]
--- init
select(undef, undef, undef, 1.0);
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 200
--- error_log eval
qr/member 127\.0\.0\.2:\d+ of pool "huge_page" from http:\/\/127\.0\.0\.2:\d+\/metrics\S* failed: the page is larger than the size limit/
--- timeout: 5



=== TEST 8: a member whose scrapes fail while another's work is picked last, even when the other is over target
--- http_config eval: ::config_with("path=/metrics")
--- config eval
"location /v1/ { proxy_pass http://faulty; }\n"
. "location = /t { ssi on; ssi_types *; default_type text/plain; return 200 '"
. ("<!--# include virtual=\"/v1/c\" wait=\"yes\" -->" x 20) . "'; }\n"
--- user_files eval
[["metrics-127.0.0.2.prom" => "vllm:kv_cache_usage_perc 0.95\nvllm:num_requests_running 50\n"]]
--- init
select(undef, undef, undef, 0.5);
--- request
GET /t
--- response_body eval
"127.0.0.2\n" x 20
--- error_log eval
qr/scraping the metrics of member 127\.0\.0\.3:\d+ of pool "faulty" from http:\/\/127\.0\.0\.3:\d+\/metrics\S* failed/
