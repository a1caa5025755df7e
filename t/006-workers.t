# Several worker processes share one in-flight count per member: requests
# handled by any worker avoid a member that another worker keeps busy.

BEGIN {
    # the test server's socket with reuseport as well: TEST 2 is steadier
    # with it.  Not under TEST_NGINX_USE_HUP, whose config-version server
    # repeats the test server's listen options, which nginx refuses
    # ("duplicate listen options").
    $ENV{TEST_NGINX_REUSE_PORT} = 1 unless $ENV{TEST_NGINX_USE_HUP};
}

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use Mcig;

master_on();
workers(2);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: every worker sees the in-flight request of the other
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }

    # a relay: each include below is a new connection, which reuseport
    # hands to either worker.  On a port of its own: on the test server's
    # port it needs reuseport on the test server's socket too.
    server {
        listen 127.0.0.4:$TEST_NGINX_RAND_PORT_1 reuseport;

        location = /p {
            ssi on;
            ssi_types *;
            default_type text/plain;
            return 200 '<!--# echo var="pid" -->@<!--# include virtual="/v1/fast" -->';
        }

        location /v1/ {
            proxy_pass http://llama;
        }
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://llama;
    }

    location = /relay {
        proxy_pass http://127.0.0.4:$TEST_NGINX_RAND_PORT_1/p;
    }

    location = /t {
        ssi on;
        ssi_types *;
        default_type text/plain;
        return 200 '<!--# include virtual="/relay" wait="yes" --><!--# include virtual="/relay" wait="yes" --><!--# include virtual="/relay" wait="yes" --><!--# include virtual="/relay" wait="yes" --><!--# include virtual="/relay" wait="yes" --><!--# include virtual="/relay" wait="yes" --><!--# include virtual="/relay" wait="yes" --><!--# include virtual="/relay" wait="yes" --><!--# include virtual="/relay" wait="yes" --><!--# include virtual="/relay" wait="yes" --><!--# include virtual="/relay" wait="yes" --><!--# include virtual="/relay" wait="yes" --><!--# include virtual="/relay" wait="yes" --><!--# include virtual="/relay" wait="yes" --><!--# include virtual="/relay" wait="yes" --><!--# include virtual="/relay" wait="yes" -->';
    }
--- init
Mcig::hold("/v1/slow", 1, 5);
--- request
GET /t
--- response_body_filters eval
sub {
    my $body = shift;
    my (%pids, %members);

    while ($body =~ /(\d+)@(127\.0\.0\.\d)/g) {
        $pids{$1} = 1;
        $members{$2}++;
    }

    # all 16 on one member, from at least two worker processes
    return CORE::join(" ", "members=" . scalar(keys %members),
                "requests=" . CORE::join(",", values %members),
                "workers=" . (keys %pids >= 2 ? "many" : "one")) . "\n";
}
--- response_body
members=1 requests=16 workers=many
--- timeout: 10



=== TEST 2: a worker killed with requests in flight does not leave them counted
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream llama {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_max_in_flight 1;
        mcig_objective batch priority=-1;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://llama;
    }
--- init
Mcig::hold("/v1/slow", 1, 8);
# a loaded machine (CI) may take longer to put it in flight than hold waits
select(undef, undef, undef, 1.0);
Mcig::kill_workers();
select(undef, undef, undef, 2.5);
--- request
POST /v1/completions
{"model":"m"}
--- more_headers
x-gateway-inference-objective: batch
--- error_code: 200
--- error_log
released 1 in-flight requests left by an exited worker process
--- mcig_expect_alert
--- timeout: 10
