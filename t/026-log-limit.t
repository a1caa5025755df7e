# Conditions logged per request write one line a second per worker, with
# the count of the lines skipped: an outage must not flood the log.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use Mcig;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a pool without a member for 6 s: one line every 2 s, not one per request
--- http_config eval
<<'_EOC_';
    limit_req_zone $server_port zone=pace:1m rate=30r/m;

    upstream gone {
        server 127.0.0.1:1 down;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://gone;
    }

    # a request every 2 s, the outage's clock
    location = /pace {
        limit_req zone=pace burst=10;
        default_type text/plain;
    }

    location = /t.html {
        ssi on;
        ssi_types *;
        default_type text/plain;
    }
--- user_files eval
">>> pace\nok\n"
. ">>> t.html\n"
. CORE::join('', map { "<!--# include virtual=\"/v1/r$_\" wait=\"yes\" -->" }
                1 .. 50)
. "\n"
--- request eval
["GET /pace", "GET /t.html", "GET /pace", "GET /t.html",
 "GET /pace", "GET /t.html", "GET /pace", "GET /t.html"]
--- error_code eval
[200, 200, 200, 200, 200, 200, 200, 200]
--- response_body_like eval
["^ok\n\$", "", "^ok\n\$", "", "^ok\n\$", "", "^ok\n\$", ""]
--- grep_error_log eval
qr/no member of pool "gone" can take requests: all are down, failed or unhealthy(?: \(and \d+ times since the last line\))?/
--- grep_error_log_out eval
# Test::Nginx reads the log in chunks that do not follow the requests:
# each chunk has at most one line, where the 50 refusals would write 50
my $line = 'no member of pool "gone" can take requests: all are down, '
           . 'failed or unhealthy';
qr/^(?:\Q$line\E(?: \(and 49 times since the last line\))?\n)?$/
--- no_error_log
[alert]
--- timeout: 15
