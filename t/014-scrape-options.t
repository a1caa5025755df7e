# Scraping over HTTPS (verified against a CA file, with a bearer token),
# and metrics named by the user with label filters.

use Cwd qw(cwd);

BEGIN {
    # a throwaway certificate for the members' addresses
    my $dir = cwd() . "/build/test-tls";
    system("mkdir -p $dir") == 0 or die;

    if (!-f "$dir/member.crt") {
        system("openssl req -x509 -newkey rsa:2048 -nodes -days 3650"
               . " -subj /CN=mcig-test-member"
               . " -addext subjectAltName=IP:127.0.0.2,IP:127.0.0.3"
               . " -keyout $dir/member.key -out $dir/member.crt"
               . " >/dev/null 2>&1") == 0 or die "openssl failed";
    }

    open(my $fh, ">", "$dir/token") or die;
    print $fh "s3cret-token\n";
    close $fh;

    $ENV{TEST_NGINX_MCIG_TLS} = $dir;
}

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use Mcig;

our $tls_members = $Mcig::members . <<'_EOC_';
    server {
        listen 127.0.0.2:$TEST_NGINX_RAND_PORT_1 ssl;
        listen 127.0.0.3:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_MCIG_TLS/member.crt;
        ssl_certificate_key $TEST_NGINX_MCIG_TLS/member.key;

        location = /metrics {
            try_files /metrics-$server_addr.prom =404;
        }

        location = /metrics-auth {
            if ($http_authorization != "Bearer s3cret-token") {
                return 401;
            }

            try_files /metrics-$server_addr.prom =404;
        }
    }

    # members that want a client certificate (the same throwaway one)
    server {
        listen 127.0.0.2:$TEST_NGINX_RAND_PORT_2 ssl;
        listen 127.0.0.3:$TEST_NGINX_RAND_PORT_2 ssl;
        ssl_certificate $TEST_NGINX_MCIG_TLS/member.crt;
        ssl_certificate_key $TEST_NGINX_MCIG_TLS/member.key;
        ssl_client_certificate $TEST_NGINX_MCIG_TLS/member.crt;
        ssl_verify_client on;

        location = /metrics {
            try_files /metrics-$server_addr.prom =404;
        }
    }
_EOC_

# Under valgrind a TLS scrape (both ends in the one nginx under memcheck)
# takes seconds: the blocks over TLS give their scrapes timeout=10s and
# their figures stale=60s, and wait for the first scrapes (the status page,
# Mcig::wait_scrapes()) rather than a fixed time.  What they test is TLS,
# not timing; t/012-scrape-faults.t tests timeouts.
our $status = <<'_EOC_';
    location = /mcig/status {
        mcig_status;
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

# the page a member serves depends on the name[] filter it is asked for
our $filter_members = $Mcig::members . <<'_EOC_';
    map_hash_bucket_size 256;

    map $args $page {
        default unfiltered;
        "name%5B%5D=vllm:num_requests_waiting&name%5B%5D=vllm:num_requests_running&name%5B%5D=vllm:kv_cache_usage_perc&name%5B%5D=vllm:gpu_cache_usage_perc&name%5B%5D=vllm:lora_requests_info&name%5B%5D=vllm:cache_config_info" filtered;
        "x=1&name%5B%5D=vllm:num_requests_waiting&name%5B%5D=vllm:num_requests_running&name%5B%5D=my_kv&name%5B%5D=vllm:lora_requests_info&name%5B%5D=vllm:cache_config_info" custom;
    }

    server {
        listen 127.0.0.2:$TEST_NGINX_RAND_PORT_3;
        listen 127.0.0.3:$TEST_NGINX_RAND_PORT_3;

        location = /metrics {
            try_files /$page-$server_addr.prom =404;
        }
    }
_EOC_

our $filter_pages = <<'_EOC_';
>>> filtered-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.9
my_kv 0.9
>>> filtered-127.0.0.3.prom
vllm:kv_cache_usage_perc 0.1
my_kv 0.1
>>> unfiltered-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.1
my_kv 0.9
>>> unfiltered-127.0.0.3.prom
vllm:kv_cache_usage_perc 0.9
my_kv 0.1
>>> custom-127.0.0.2.prom
my_kv 0.05
>>> custom-127.0.0.3.prom
my_kv 0.95
_EOC_

no_shuffle();
run_tests();

__DATA__

=== TEST 1: HTTPS with the members' CA
--- http_config eval
$::tls_members . <<'_EOC_';
    upstream over_tls {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics scheme=https port=$TEST_NGINX_RAND_PORT_1
                     ca_file=$TEST_NGINX_MCIG_TLS/member.crt
                     timeout=10s stale=60s;
        mcig_balancing_mode custom_metrics;
    }
_EOC_
--- config eval
"location /v1/ { proxy_pass http://over_tls; }\n" . $::ssi . $::status
--- user_files
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.9
>>> metrics-127.0.0.3.prom
vllm:kv_cache_usage_perc 0.1
--- init
Mcig::wait_scrapes(2);
--- request
GET /t
--- response_body
127.0.0.3
127.0.0.3
--- no_error_log
scraping the metrics



=== TEST 2: HTTPS verifies certificates by default
--- http_config eval
$::tls_members . <<'_EOC_';
    upstream unverified {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics scheme=https port=$TEST_NGINX_RAND_PORT_1 timeout=10s;
        mcig_balancing_mode custom_metrics;
    }
_EOC_
--- config eval
"location /v1/ { proxy_pass http://unverified; }\n" . $::status
--- user_files
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.1
--- init
Mcig::wait_scrapes(1, "scrape_errors");
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 200
--- error_log eval
qr/scraping the metrics of member 127\.0\.0\.2:\d+ of pool "unverified" from https:\/\/127\.0\.0\.2:\d+\/metrics\S* failed: .*(certificate|SSL)/



=== TEST 3: a bearer token from a file, never logged
--- http_config eval
$::tls_members . <<'_EOC_';
    upstream with_token {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics scheme=https port=$TEST_NGINX_RAND_PORT_1
                     path=/metrics-auth
                     ca_file=$TEST_NGINX_MCIG_TLS/member.crt
                     token_file=$TEST_NGINX_MCIG_TLS/token
                     timeout=10s stale=60s;
        mcig_balancing_mode custom_metrics;
    }
_EOC_
--- config eval
"location /v1/ { proxy_pass http://with_token; }\n" . $::ssi . $::status
--- user_files
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.05
>>> metrics-127.0.0.3.prom
vllm:kv_cache_usage_perc 0.85
--- init
Mcig::wait_scrapes(2);
--- request
GET /t
--- response_body
127.0.0.2
127.0.0.2
--- no_error_log eval
# the mock member (same nginx) logs the headers it receives at debug
[qr/^(?!.*(http header:|http script (var|value))).*s3cret/,
 "scraping the metrics"]



=== TEST 3b: a client certificate
--- http_config eval
$::tls_members . <<'_EOC_';
    upstream client_cert {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics scheme=https port=$TEST_NGINX_RAND_PORT_2
                     ca_file=$TEST_NGINX_MCIG_TLS/member.crt
                     cert=$TEST_NGINX_MCIG_TLS/member.crt
                     key=$TEST_NGINX_MCIG_TLS/member.key
                     timeout=10s stale=60s;
        mcig_balancing_mode custom_metrics;
    }
_EOC_
--- config eval
"location /v1/ { proxy_pass http://client_cert; }\n" . $::ssi . $::status
--- user_files
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.9
>>> metrics-127.0.0.3.prom
vllm:kv_cache_usage_perc 0.1
--- init
Mcig::wait_scrapes(2);
--- request
GET /t
--- response_body
127.0.0.3
127.0.0.3
--- no_error_log
scraping the metrics



=== TEST 3c: without the client certificate the member refuses
--- http_config eval
$::tls_members . <<'_EOC_';
    upstream no_client_cert {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics scheme=https port=$TEST_NGINX_RAND_PORT_2
                     ca_file=$TEST_NGINX_MCIG_TLS/member.crt;
        mcig_balancing_mode custom_metrics;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://no_client_cert;
    }
--- user_files
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.1
--- init
select(undef, undef, undef, 0.6);
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 200
--- error_log eval
qr/scraping the metrics of member 127\.0\.0\.2:\d+ of pool "no_client_cert" from https:\/\/127\.0\.0\.2:\d+\/metrics\S* failed: it answered with status \d+;/



=== TEST 4: a missing token file
--- http_config
    upstream llama {
        server 127.0.0.2:8000;
        mcig_pool;
        mcig_metrics token_file=/nonexistent/token;
    }
--- config
--- must_die
--- error_log
mcig_metrics cannot open token_file "/nonexistent/token"



=== TEST 5: a metric of one's own, with a label filter
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream own_metric {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics 'kv=gpu_kv_usage{adapter="base",unit="ratio"}';
        mcig_balancing_mode custom_metrics;
    }
_EOC_
--- config eval
"location /v1/ { proxy_pass http://own_metric; }\n" . $::ssi
--- user_files
>>> metrics-127.0.0.2.prom
gpu_kv_usage{adapter="base",unit="ratio"} 0.2
gpu_kv_usage{adapter="lora-a",unit="ratio"} 0.9
vllm:kv_cache_usage_perc 0.99
>>> metrics-127.0.0.3.prom
gpu_kv_usage{unit="ratio",adapter="base"} 0.7
gpu_kv_usage{adapter="lora-a",unit="ratio"} 0.01
vllm:kv_cache_usage_perc 0.01
--- init
select(undef, undef, undef, 0.6);
--- request
GET /t
--- response_body
127.0.0.2
127.0.0.2



=== TEST 6: a metric name that cannot be parsed
--- http_config
    upstream llama {
        server 127.0.0.2:8000;
        mcig_pool;
        mcig_metrics 'kv=gpu_kv{adapter=base}';
    }
--- config
--- must_die
--- error_log
invalid metric "gpu_kv{adapter=base}" in mcig_metrics



=== TEST 7: only the pool's metrics are asked for (name[] filter)
--- http_config eval
$::filter_members . <<'_EOC_';
    upstream filtered {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics port=$TEST_NGINX_RAND_PORT_3;
        mcig_balancing_mode custom_metrics;
    }
_EOC_
--- config eval
"location /v1/ { proxy_pass http://filtered; }\n" . $::ssi
--- user_files eval
$::filter_pages
--- init
select(undef, undef, undef, 0.6);
--- request
GET /t
--- response_body
127.0.0.3
127.0.0.3
--- no_error_log
scraping the metrics



=== TEST 8: name_filter=off asks for the whole page
--- http_config eval
$::filter_members . <<'_EOC_';
    upstream unfiltered {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics port=$TEST_NGINX_RAND_PORT_3 name_filter=off;
        mcig_balancing_mode custom_metrics;
    }
_EOC_
--- config eval
"location /v1/ { proxy_pass http://unfiltered; }\n" . $::ssi
--- user_files eval
$::filter_pages
--- init
select(undef, undef, undef, 0.6);
--- request
GET /t
--- response_body
127.0.0.2
127.0.0.2
--- no_error_log
scraping the metrics



=== TEST 9: the filter joins a query already in the path, and names a custom metric
--- http_config eval
$::filter_members . <<'_EOC_';
    upstream custom {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics port=$TEST_NGINX_RAND_PORT_3 path=/metrics?x=1 kv=my_kv;
        mcig_balancing_mode custom_metrics;
    }
_EOC_
--- config eval
"location /v1/ { proxy_pass http://custom; }\n" . $::ssi
--- user_files eval
$::filter_pages
--- init
select(undef, undef, undef, 0.6);
--- request
GET /t
--- response_body
127.0.0.2
127.0.0.2
--- no_error_log
scraping the metrics
