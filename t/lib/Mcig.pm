package Mcig;

# Shared set-up of the Test::Nginx files: every block fails when the error
# log holds an [alert] or [crit] line; mock members; helpers that put
# requests in flight from other connections and kill workers.

use strict;
use warnings;
use Test::Nginx::Socket ();
use POSIX ();

# Test::Nginx 0.32 writes "http2 on;" for nginx >= 1.19.9, but that
# directive exists from nginx 1.25.1 on; older ones take "listen ... http2".
# Test::Nginx knows the version from run_tests() on, after this file loads.
my $real_version;

Test::Nginx::Socket::add_block_preprocessor(sub {
    my $block = shift;
    my $nel = $block->no_error_log;

    # a block that kills workers on purpose expects nginx's [alert]
    my $bad = defined $block->mcig_expect_alert ? "[crit]"
                                                : "[alert]\n[crit]";

    if (!defined $nel) {
        $block->set_value('no_error_log', $bad);

    } elsif (!ref $nel) {
        $block->set_value('no_error_log', "$nel\n$bad");
    }

    $real_version //= $Test::Nginx::Util::NginxVersion;
    $Test::Nginx::Util::NginxVersion =
        (defined $block->http2 && $real_version < 1.025001)
        ? 1.019008 : $real_version;
});

# Members on 127.0.0.2 and 127.0.0.3 (same port as the test server):
#   /v1/...       answers with the member's address
#   /v1/slow...   holds the request for several seconds
#   /v1/stream    sends its header and a little, then the rest slowly
#   /metrics      serves html/metrics-<address>.prom
#   /health       200 while html/health-<address> exists
#   /echo-headers shows the gateway headers the member received
our $members = <<'_EOC_';
    server {
        listen 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        listen 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        default_type text/plain;
        client_max_body_size 16m;

        location /v1/ {
            return 200 "$server_addr\n";
        }

        location /v1/slow {
            limit_rate 1;
            limit_rate_after 0;
            return 200 "$server_addr slowly";
        }

        location /v1/stream {
            limit_rate_after 300;
            limit_rate 1;
            return 200 "$server_addr streaming ................................................................................................................................................................................................................................................................................................................................................................";
        }

        # the page each block writes with --- user_files
        location = /metrics {
            try_files /metrics-$server_addr.prom =404;
        }

        # faulty metrics pages
        location = /metrics-slow {
            limit_rate 1;
            limit_rate_after 0;
            try_files /metrics-$server_addr.prom =404;
        }

        location = /metrics-500 {
            return 500;
        }

        location = /metrics-stall {
            limit_rate_after 400;
            limit_rate 1;
            try_files /metrics-$server_addr.prom =404;
        }

        location = /metrics-cut {
            proxy_pass http://$server_addr:$server_port/metrics-stall;
            proxy_buffering off;
            proxy_read_timeout 200ms;
        }

        # 200 while html/health-<address> exists, 404 otherwise
        location = /health {
            try_files /health-$server_addr =404;
        }

        location /echo-headers {
            return 200 "objective=[$http_x_gateway_inference_objective] fairness=[$http_x_gateway_inference_fairness_id] other=[$http_x_other]\n";
        }
    }
_EOC_

# Puts n requests for path in flight from other client connections, as
# background curl processes that give up after secs seconds; returns once
# the gateway has dispatched them.
sub hold {
    my ($path, $n, $secs) = @_;
    my $port = $Test::Nginx::Util::ServerPortForClient;

    for (1 .. $n) {
        background("curl", "-s", "-o", "/dev/null", "-m", $secs,
                   "http://127.0.0.1:$port$path");
        select(undef, undef, undef, 0.2);
    }

    select(undef, undef, undef, 0.3);
}

# Background processes of the current block (clients that must be in
# flight while it runs), by pid; each leads a process group of its own.
my @background;

# Starts a command (a list, no shell unless it names one) in the
# background, its output thrown away; returns at once.
sub background {
    my @cmd = @_;
    my $pid = fork();

    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        POSIX::setpgid(0, 0);
        open(STDIN, "<", "/dev/null");
        open(STDOUT, ">", "/dev/null");
        open(STDERR, ">", "/dev/null");
        { no warnings "exec"; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }

    # here too: the group exists before either side goes on
    POSIX::setpgid($pid, $pid);
    push @background, $pid;
    return $pid;
}

# Ends what the last block left in the background.  Without it, under
# TEST_NGINX_USE_HUP the next block would meet its requests: nginx is
# reloaded, not restarted, so the old workers keep serving them, and the
# members they hold, the queues they wait in and the error log they write
# to are the next block's.  In the other modes nginx is stopped between
# blocks, which drops them all the same (and waits for them first: nginx
# shuts down gracefully).  The gateway sees its clients go at once
# (EPOLLRDHUP) and ends their requests; a short pause lets it, so that the
# next block starts from a quiet gateway.
sub end_background {
    local ($?, $!);
    my $ended = 0;

    for my $pid (@background) {
        # still ours and running (0), or a zombie reaped now (its pid)
        next if waitpid($pid, POSIX::WNOHANG()) != 0;
        kill 'TERM', -$pid;
        waitpid($pid, 0);
        $ended++;
    }

    @background = ();
    select(undef, undef, undef, 0.3) if $ended;
}

END {
    end_background();
}

# Counters of the status pages (JSON and Prometheus) survive a reload: the
# shared zone is kept by design.  A block that reads them takes a
# snapshot() before it acts and compares what changed since
# (counters_since() as its --- response_body_filters): the same figures in
# every mode, TEST_NGINX_USE_HUP included.  One snapshot, of this block.
our $snapshot;
my $http2_only;

# The file's worker_processes (Test::Nginx's workers(), util/test.sh
# --workers N), for the blocks without a "--- mcig_workers: N" of their own:
# a block whose meaning needs a number of workers says so.
my $file_workers;

Test::Nginx::Socket::add_block_preprocessor(sub {
    my $block = shift;

    end_background();
    undef $snapshot;
    $http2_only = defined $block->http2;

    my $n = $block->mcig_workers;
    $n =~ s/\s+//g if defined $n;
    $file_workers //= Test::Nginx::Util::workers();
    Test::Nginx::Util::workers(defined $n && $n ne "" ? $n : $file_workers);
});

# An HTTP GET of the test server; the body.  A "--- http2" block's server
# speaks HTTP/2 only (cleartext, prior knowledge).
sub get {
    my $path = shift;
    my $port = $Test::Nginx::Util::ServerPortForClient;
    my $h2 = $http2_only ? "--http2-prior-knowledge" : "";

    return scalar `curl -s -m 10 $h2 http://127.0.0.1:$port$path`;
}

sub snapshot {
    my $path = shift // "/mcig/status";
    $snapshot = get($path);
}

# The JSON status' counters by their key (gauges, such as in_flight,
# depth, waiting, capacity, are not subtracted)
my $json_counter = qr/^(?:requests|failures|scrapes|scrape_errors|shed|queued
                       |dispatched|queue_full|queue_timeout|abandoned
                       |pool_saturated|no_member_available|deadline_exceeded
                       |[1-5]xx|local|spillover|failover|kept|moved
                       |count|sum|\d+
                       |\+Inf)$/x;

# The body with every counter replaced by its increase since the
# snapshot: the n-th occurrence of a key of the JSON status, or each
# series of a Prometheus counter (_total) or histogram (_bucket, _sum,
# _count), loses the value it had then; values and layout are otherwise
# untouched.
sub counters_since {
    my $body = shift;
    my $before = $snapshot // "";

    if ($body =~ /^\s*\{/) {
        my (%old, %n);

        while ($before =~ /"([^"]+)":(-?\d+(?:\.\d+)?)/g) {
            my ($k, $v) = ($1, $2);
            push @{ $old{$k} }, $v if $k =~ $json_counter;
        }

        $body =~ s{"([^"]+)":(-?\d+(?:\.\d+)?)}{
            my ($k, $v) = ($1, $2);
            if ($k =~ $json_counter) {
                $v = minus($v, $old{$k}[ $n{$k}++ ]);
            }
            "\"$k\":$v"
        }ge;

        return $body;
    }

    my %old;
    my $series = qr/^(\w+(?:_total|_bucket|_sum|_count)(?:\{[^}]*\})?) (\S+)$/m;

    while ($before =~ /$series/g) {
        $old{$1} = $2;
    }

    $body =~ s{$series}{"$1 " . minus($2, $old{$1})}ge;
    return $body;
}

# a - b, b possibly missing, with as many decimals as a has
sub minus {
    my ($x, $y) = @_;
    my $d = $x =~ /\.(\d+)$/ ? length($1) : 0;

    return $x unless defined $y;
    return sprintf("%.${d}f", $x - $y);
}

# Waits until the JSON status (a location "= /mcig/status" of the block)
# shows at least n members whose counter "what" ("scrapes", the default, or
# "scrape_errors") has grown since the call, for up to 30 s: a block that
# needs its pool's first scrapes, or first failures, waits for them rather
# than for a fixed time that valgrind's slowdown outruns.  Growth, not a
# value: a reload keeps the counters of the pools it keeps.  Warns when
# they do not come.
sub wait_scrapes {
    my ($n, $what) = @_;
    $what //= "scrapes";

    my $values = sub { [ get("/mcig/status") =~ /"\Q$what\E":(\d+)/g ] };
    my $base = $values->();

    for (1 .. 300) {
        my $now = $values->();
        my $grown = grep { $now->[$_] > ($base->[$_] // 0) } 0 .. $#$now;
        return 1 if $grown >= $n;
        select(undef, undef, undef, 0.1);
    }

    warn "Mcig: fewer than $n members with more \"$what\" after 30 s\n";
    return 0;
}

# promtool's verdict on a Prometheus text: "promtool: ok" or "promtool:
# failed", then the problems it printed, one a line.
sub promtool {
    my $body = shift;
    my $out = "$Test::Nginx::Util::ServRoot/logs/promtool.out";

    open(my $fh, "|-", "promtool check metrics >$out 2>&1") or die;
    print $fh $body;
    close $fh;
    my $verdict = $? == 0 ? "promtool: ok" : "promtool: failed";

    open(my $in, "<", $out) or die "cannot read $out: $!";
    my @problems = grep { !/^\s*$/ } <$in>;
    close $in;

    return "$verdict\n" . CORE::join("", @problems);
}

sub master_pid {
    my $pidfile = "$Test::Nginx::Util::ServRoot/logs/nginx.pid";

    open(my $fh, "<", $pidfile) or die "cannot read $pidfile: $!";
    chomp(my $master = <$fh>);
    close $fh;

    return $master;
}

# Creates or removes a file in the test server's html directory.
sub html_file {
    my ($name, $content) = @_;
    my $path = "$Test::Nginx::Util::ServRoot/html/$name";

    if (defined $content) {
        open(my $fh, ">", $path) or die "cannot write $path: $!";
        print $fh $content;
        close $fh;

    } else {
        unlink $path;
    }
}

# Kills the worker that holds the scrape lease, as its log line says.
sub kill_scraper {
    my $log = "$Test::Nginx::Util::ServRoot/logs/error.log";
    my $pid;

    open(my $fh, "<", $log) or die "cannot read $log: $!";

    while (<$fh>) {
        $pid = $1 if /\[info\] (\d+)#\d+: mcig: this worker scrapes/;
    }

    close $fh;
    die "no worker scrapes" unless $pid;
    kill 'KILL', $pid;
}

# Kills every worker process of the test server with SIGKILL.
sub kill_workers {
    system("pkill -KILL -P " . master_pid());
}

# Edits the running test server's nginx.conf in place ($_ is its text).
sub edit_conf {
    my $edit = shift;
    my $path = "$Test::Nginx::Util::ServRoot/conf/nginx.conf";

    open(my $in, "<", $path) or die "cannot read $path: $!";
    local $_ = CORE::join("", <$in>);
    close $in;

    $edit->();

    open(my $out, ">", $path) or die "cannot write $path: $!";
    print $out $_;
    close $out;
}

# Reloads the test server's configuration, as "nginx -s reload" does.
sub reload {
    kill 'HUP', master_pid();
    select(undef, undef, undef, 1.0);
}

1;
