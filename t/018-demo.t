# util/demo.sh --once: the README's main command, scripted.  It starts the
# simulated two-region fleet and nginx with conf.d/, sends the GKE guide's
# request, runs the load ramp, checks what the demo shows (the answer; local
# traffic at low load; spillover to us-east4 at the top of the ramp while
# europe-west3 is over its target; no alert in nginx's error log) and stops
# everything.  It uses 127.0.0.1:8080, 127.0.1.x:8000, 127.0.2.x:8000 and
# 127.0.0.1:8099, and is skipped when one of them is in use (a demo running).

use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use FindBin;
use Time::HiRes qw(time);

my $root = "$FindBin::Bin/..";

sub listening {
    my ($addr, $port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => $addr, PeerPort => $port,
                                  Proto => 'tcp', Timeout => 1);
    close($s) if $s;
    return $s ? 1 : 0;
}

my @ports = (['127.0.0.1', 8080], ['127.0.0.1', 8099],
             map { my $r = $_; map { ["127.0.$r.$_", 8000] } 1 .. 3 } 1 .. 2);

my @busy = grep { listening(@$_) } @ports;
plan skip_all => 'in use: ' . join(', ', map { "$_->[0]:$_->[1]" } @busy)
    . ' (is a demo running?)' if @busy;

plan tests => 8;

my $t0 = time;
my $out = `timeout -k 5 150 bash $root/util/demo.sh --once < /dev/null 2>&1`;
my $rc = $? >> 8;
my $elapsed = time - $t0;

is($rc, 0, 'util/demo.sh --once exits 0')
    or diag(join("\n", (split /\n/, $out)[-60 .. -1]));
like($out, qr{^HTTP/1\.1 200 .*answered by 127\.0\.\d\.\d:8000}m,
     "the guide's request is answered by a member");
like($out, qr{^\s*ok\s+the guide's request got 200 with a completion text}m,
     'check: the answer');
like($out, qr{^\s*ok\s+at low load .* nearly all traffic stays in europe-west3}m,
     'check: local at low load');
like($out, qr{^\s*ok\s+at the top of the ramp .* spills to the other region}m,
     'check: spillover past the target');
like($out, qr{^\s*ok\s+no \[alert\], \[crit\] or \[emerg\]}m,
     "check: nginx's error log");
cmp_ok($elapsed, '<', 120, sprintf('done in %.0f s', $elapsed));

# everything it started is gone
my @left = grep { listening(@$_) } @ports;
is(scalar(@left), 0, 'the gateway and the fleet are stopped')
    or diag('still listening: ' . join(', ', map { "$_->[0]:$_->[1]" } @left));
