# What the gateway reports: "mcig_status" (JSON) and "mcig_status
# prometheus" (checked with promtool), off unless configured.

use Test::Nginx::Socket 'no_plan';
use JSON::PP;
use lib 't/lib';
use Mcig;

our $pool = $Mcig::members . <<'_EOC_';
    upstream reported {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_max_in_flight 4;
        mcig_metrics;
        mcig_balancing_mode custom_metrics max_utilization=60;
        mcig_health_check interval=100ms timeout=100ms;
        mcig_objective food-review priority=10;
        mcig_objective batch priority=-1;
    }
_EOC_

our $config = <<'_EOC_';
    location /v1/ {
        proxy_pass http://reported;
    }

    location = /mcig/status {
        mcig_status;
    }

    location = /mcig/metrics {
        mcig_status prometheus;
    }

    location = /t {
        ssi on;
        ssi_types *;
        default_type text/plain;
        return 200 '<!--# include virtual="/v1/a" wait="yes" --><!--# include virtual="/v1/b" wait="yes" --><!--# include virtual="/mcig/status" wait="yes" -->';
    }
_EOC_

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the status JSON
--- http_config eval: $::pool
--- config eval: $::config
--- user_files
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.9
vllm:num_requests_running 9
vllm:num_requests_waiting 3
>>> metrics-127.0.0.3.prom
vllm:kv_cache_usage_perc 0.25
vllm:num_requests_running 2
>>> health-127.0.0.3
ok
--- init
select(undef, undef, undef, 0.6);
Mcig::hold("/v1/completions", 1, 2);
--- request
GET /t
--- response_body_filters eval
sub {
    my ($a, $b, $json) = split /\n/, shift, 3;
    my $st = JSON::PP::decode_json($json);
    my $p = $st->{pools}{reported};
    my %m = map { $_->{address} =~ /^(127\.0\.0\.\d)/; ($1 => $_) } @{$p->{members}};
    my %o = map { (($_->{name} // "(none)") => $_) } @{$p->{objectives}};

    return CORE::join("\n",
        "picked: $a $b",
        "mode: $p->{balancing_mode} $p->{max_utilization}",
        "healthy: " . ($m{"127.0.0.2"}{healthy} ? 1 : 0)
                    . ($m{"127.0.0.3"}{healthy} ? 1 : 0),
        "kv: $m{'127.0.0.3'}{metrics}{kv_cache_usage}",
        "waiting .2: " . (defined $m{'127.0.0.2'}{metrics} ? "unhealthy but scraped" : "none"),
        "requests .3: $m{'127.0.0.3'}{requests}",
        "objectives: " . CORE::join(",", map { "$_=$o{$_}{priority}/$o{$_}{requests}" } sort keys %o),
        "refused: $p->{refused}{pool_saturated}",
    ) . "\n";
}
--- response_body
picked: 127.0.0.3 127.0.0.3
mode: custom_metrics 60
healthy: 01
kv: 0.25
waiting .2: unhealthy but scraped
requests .3: 3
objectives: (none)=0/3,batch=-1/0,food-review=10/0
refused: 0



=== TEST 2: the Prometheus format passes promtool
--- http_config eval: $::pool
--- config eval: $::config
--- user_files
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.5
>>> health-127.0.0.2
ok
>>> health-127.0.0.3
ok
--- init
select(undef, undef, undef, 0.5);
--- request
GET /mcig/metrics
--- response_headers
Content-Type: text/plain; version=0.0.4
--- response_body_filters eval
sub {
    my $body = shift;
    my @want = grep { $body =~ /^\Q$_\E/m } (
        'mcig_member_kv_cache_usage{pool="reported",member="127.0.0.2:',
        'mcig_member_healthy{pool="reported",member="127.0.0.3:',
        'mcig_objective_requests_total{pool="reported",objective="food-review"} 0',
        'mcig_objective_shed_total{pool="reported",objective=""} 0',
        'mcig_pool_refused_total{pool="reported",reason="pool_saturated"} 0',
        '# TYPE mcig_member_requests_total counter');
    return Mcig::promtool($body) . scalar(@want) . " of 6 series\n";
}
--- response_body
promtool: ok
6 of 6 series



=== TEST 3: status is read-only
--- http_config eval: $::pool
--- config eval: $::config
--- request
POST /mcig/status
{}
--- error_code: 405



=== TEST 4: restricted with allow/deny like any location
--- http_config eval: $::pool
--- config
    location = /mcig/status {
        allow 192.0.2.1;
        deny all;
        mcig_status;
    }
--- request
GET /mcig/status
--- error_code: 403



=== TEST 5: nothing is reported unless configured
--- http_config eval: $::pool
--- config
    location /v1/ {
        proxy_pass http://reported;
    }
--- request
GET /mcig/status
--- error_code: 404



=== TEST 6: an unknown format
--- http_config eval: $::pool
--- config
    location = /mcig/status {
        mcig_status xml;
    }
--- must_die
--- error_log
invalid format "xml" of mcig_status: json or prometheus expected
