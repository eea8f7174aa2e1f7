# shellcheck shell=bash
# What scripts/kafka, scripts/clickhouse and scripts/llm share: each runs one
# local server from a work directory with a PID file, and follows the same
# conventions (see any of them for the exit codes).
#
# The sourcing script sets, before calling these:
#   service   its name, the prefix of every message ("kafka")
#   dir       the work directory; pid_file, the PID file in it
#   stop_timeout  seconds between TERM and KILL
# and defines ours PID: whether PID is a server started from $dir, so a stale
# PID file never makes it signal an unrelated process.

readonly EXIT_UNAVAILABLE=3

say() { echo "$service: $*" >&2; }
die() {
	say "$*"
	exit 1
}
# unavailable: the server cannot be had on this machine; the tests fail with
# this one line.
unavailable() {
	say "unavailable: $*"
	exit "$EXIT_UNAVAILABLE"
}

# now_ms prints a monotonic-enough clock in milliseconds for reporting.
now_ms() { date +%s%3N; }

# check_port NAME VALUE: VALUE is a TCP port number.
check_port() {
	if ! [[ $2 =~ ^[1-9][0-9]{0,4}$ ]] || (($2 > 65535)); then
		die "bad $1: $2"
	fi
}

# alive PID: the process exists and is not a zombie (a server is reparented
# to PID 1, which in a container may never reap it).
alive() {
	local state
	[[ -r /proc/$1/stat ]] || return 1
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $state && $state != Z ]]
}

# pid_from_file prints the recorded PID if that process is still ours.
pid_from_file() {
	local pid
	[[ -r $pid_file ]] || return 1
	pid=$(<"$pid_file")
	[[ $pid =~ ^[0-9]+$ ]] && ours "$pid" && echo "$pid"
}

# port_busy PORT: something accepts connections on 127.0.0.1:PORT.
port_busy() {
	local fd
	{ exec {fd}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
	exec {fd}>&-
}

# lock serialises start and stop on one work directory. A server launched
# while it is held must be started with 9>&- so as not to inherit it.
lock() {
	mkdir -p "$dir"
	exec 9>"$dir/.lock"
	flock -w 600 9 || die "timed out waiting for the lock on $dir/.lock"
}

# stop_pid PID: TERM, wait up to stop_timeout, then KILL.
stop_pid() {
	local pid=$1 deadline
	kill -TERM "$pid" 2>/dev/null || true
	deadline=$(($(now_ms) + stop_timeout * 1000))
	while alive "$pid"; do
		if (($(now_ms) > deadline)); then
			say "pid $pid ignored TERM for ${stop_timeout}s: killing it"
			kill -KILL "$pid" 2>/dev/null || true
			deadline=$(($(now_ms) + 5000))
			while alive "$pid"; do
				(($(now_ms) < deadline)) || die "pid $pid survived KILL for 5s"
				sleep 0.02
			done
			break
		fi
		sleep 0.05
	done
	rm -f "$pid_file"
}

cmd_stop() {
	[[ -d $dir ]] || return 0
	lock
	local pid
	if pid=$(pid_from_file); then
		stop_pid "$pid"
		say "stopped pid $pid"
	else
		rm -f "$pid_file"
	fi
}
