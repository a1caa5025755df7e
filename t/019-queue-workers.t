# Flow control across worker processes: a band waiting in one worker holds
# the lower bands of the others (per-band counts in the shared zone), and
# the counts of a worker killed with requests waiting are dropped.
#
# Connections are pinned to workers: with reuseport each worker has its
# own listening socket, and a connection stays with the worker that
# accepted it, which /pid tells.  The gateway listens with reuseport on a
# port of its own (TEST_NGINX_RAND_PORT_1), not on the test server's
# (TEST_NGINX_REUSE_PORT): under TEST_NGINX_USE_HUP Test::Nginx adds a
# server with the test server's listen options, which nginx would refuse
# ("duplicate listen options").

use Test::Nginx::Socket 'no_plan';
use IO::Select;
use IO::Socket::INET;
use Time::HiRes ();
use lib 't/lib';
use Mcig;

master_on();
workers(2);

our $pool = $Mcig::members . <<'_EOC_';
    upstream q {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_max_in_flight 1;
        mcig_objective high priority=10;
    }
_EOC_

our $config = <<'_EOC_';
    location /v1/ {
        proxy_pass http://q;
    }

    location = /pid {
        default_type text/plain;
        return 200 "$pid";
    }

    location = /mcig/status {
        mcig_status;
    }

    location = /result.txt {
    }
_EOC_

# the gateway again, each worker with a listening socket of its own
$pool .= "    server {\n"
         . "        listen 127.0.0.1:\$TEST_NGINX_RAND_PORT_1 reuseport;\n"
         . $config
         . "    }\n";


# A response on a kept-alive connection: status and body, or undef.
sub read_response {
    my ($s, $secs) = @_;
    my $buf = "";
    my $sel = IO::Select->new($s);
    my $deadline = Time::HiRes::time() + $secs;

    while (Time::HiRes::time() < $deadline) {
        if ($buf =~ /^HTTP\/1\.1 (\d+).*?\r\n\r\n/s) {
            my $status = $1;
            my $head = $+[0];
            my ($len) = $buf =~ /^Content-Length: (\d+)\r$/mi;

            if (defined $len && length($buf) >= $head + $len) {
                return ($status, substr($buf, $head, $len));
            }
        }

        next unless $sel->can_read(0.05);

        my $n = sysread($s, $buf, 65536, length $buf);
        return undef unless $n;
    }

    return undef;
}

sub request {
    my ($s, $method, $path, @headers) = @_;
    my $body = $method eq "POST" ? '{"model":"m"}' : "";

    print $s "$method $path HTTP/1.1\r\nHost: localhost\r\n"
             . CORE::join("", map { "$_\r\n" } @headers)
             . ($body ? "Content-Length: " . length($body) . "\r\n" : "")
             . "\r\n$body";
}

# The port of the server with reuseport, as the block's nginx.conf has it.
sub pinned_port {
    my $path = "$Test::Nginx::Util::ServRoot/conf/nginx.conf";

    open(my $fh, "<", $path) or die "cannot read $path: $!";
    my ($port) = CORE::join("", <$fh>) =~ /listen 127\.0\.0\.1:(\d+) reuseport;/;
    close $fh;

    die "no listen ... reuseport in $path" unless $port;
    return $port;
}

sub connect_gateway {
    my $s = IO::Socket::INET->new(
        PeerAddr => "127.0.0.1",
        PeerPort => pinned_port(),
        Timeout => 2);

    die "cannot connect: $!" unless $s;

    return $s;
}

# Connections grouped by the worker process that serves them.
sub connections_by_worker {
    my %by;

    for (1 .. 60) {
        my $s = connect_gateway();
        request($s, "GET", "/pid");
        my ($status, $pid) = read_response($s, 2);
        push @{$by{$pid}}, $s if defined $status && $status == 200;
        last if keys %by >= 2 && (grep { @$_ >= 2 } values %by)
                && (grep { @$_ >= 1 } values %by) >= 2;
    }

    return %by;
}

sub status_depth {
    my $s = connect_gateway();
    request($s, "GET", "/mcig/status");
    my ($status, $body) = read_response($s, 2);
    return ($body // "") =~ /"depth":(\d+)/ ? $1 : "?";
}

# Waits for the responses on these connections; their names in the order
# they came, with their status.
sub responses_in_order {
    my (%conns) = @_;
    my @order;

    my $sel = IO::Select->new(values %conns);
    my %name = map { (fileno($conns{$_}) => $_) } keys %conns;

    while (@order < keys %conns) {
        my @ready = $sel->can_read(8);
        last unless @ready;

        for my $s (@ready) {
            my ($status) = read_response($s, 8);
            push @order, "$name{fileno($s)}=" . ($status // "none");
            $sel->remove($s);
        }
    }

    return CORE::join(" ", @order);
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a higher band waiting in one worker holds a lower band in another
--- http_config eval: $::pool
--- config eval: $::config
--- init
my %by = main::connections_by_worker();
my ($b) = grep { @{$by{$_}} >= 2 } keys %by;
my ($a) = grep { $_ ne $b } keys %by;
my $result = "no two workers";

if (defined $a && defined $b) {
    my ($hold, $low) = @{$by{$b}};
    my $high = $by{$a}[0];

    # the member's only place, taken from worker B
    main::request($hold, "POST", "/v1/slow");
    Time::HiRes::sleep(0.4);

    # low waits in worker B, then high in worker A
    main::request($low, "POST", "/v1/completions");
    Time::HiRes::sleep(0.3);
    main::request($high, "POST", "/v1/completions",
                  "x-gateway-inference-objective: high");
    Time::HiRes::sleep(0.3);

    my $depth = main::status_depth();

    # the place frees in worker B, where only low waits
    close $hold;

    $result = "depth=$depth "
              . main::responses_in_order(high => $high, low => $low);
}

Mcig::html_file("result.txt", "$result\n");
--- request
GET /result.txt
--- response_body
depth=2 high=200 low=200
--- timeout: 15



=== TEST 2: the waiting counts of a killed worker are dropped
--- http_config eval: $::pool
--- config eval: $::config
--- init
my $s = main::connect_gateway();
main::request($s, "GET", "/pid");
my (undef, $pid) = main::read_response($s, 2);

Mcig::hold("/v1/slow", 1, 8);
main::request($s, "POST", "/v1/completions");
Time::HiRes::sleep(0.5);

my $before = main::status_depth();
kill 'KILL', $pid;
Time::HiRes::sleep(2.5);

Mcig::html_file("result.txt", "before=$before after=" . main::status_depth() . "\n");
--- request
GET /result.txt
--- response_body
before=1 after=0
--- error_log
dropped 1 requests that an exited worker process counted as waiting in the queue of pool "q"
--- mcig_expect_alert
--- timeout: 15



=== TEST 3: a reload lets the old worker serve its waiting requests
--- http_config eval: $::pool
--- config eval: $::config
--- init
Mcig::hold("/v1/slow", 1, 2);
system("(sleep 0.5; kill -HUP " . Mcig::master_pid() . ") >/dev/null 2>&1 &");
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 200
--- response_body
127.0.0.2
--- timeout: 15
