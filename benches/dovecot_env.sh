# Sourced by the benchmark scripts: a throwaway Dovecot on loopback (implicit TLS, a
# throwaway CA, one passwd-file user) whose INBOX is filled by mailbox_gen.py.
# Needs dovecot-imapd, openssl, python3 and jq, as root (Dovecot drops to uid 5000).
#
#   bench_dovecot_start          sets $work (removed on exit), $port, $ca, $bench_user,
#                                $bench_password and $bench_config (the asset config JSON)
#   bench_dovecot_load N [DIR]   writes N messages into INBOX (DIR: where the user's
#                                maildir lives, default $work/mail/soc), indexes them
#   bench_dovecot_empty          a new, empty INBOX (for a new N)

bench_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench_bin="$bench_root/target/release/soar-imap"
bench_user=soc
# The interpreter itself: a pyenv shim in front of it costs ~150 ms per start.
bench_python=$(python3 -c 'import sys; print(sys.executable)')
bench_password=bench-pw

bench_dovecot_start() {
  work=$(mktemp -d /tmp/soar-bench.XXXXXX)
  chmod 755 "$work"
  trap 'doveadm -c "$work/dovecot.conf" stop 2>/dev/null || true; rm -rf "$work"' EXIT
  mkdir -p "$work/run" "$work/state" "$work/mail/soc"
  chown -R 5000:5000 "$work/mail"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${ec[@]}" -keyout "$work/ca.key" -out "$work/ca.pem" -days 1 -subj "/CN=ca" 2>/dev/null
  openssl req "${ec[@]}" -keyout "$work/key.pem" -out "$work/leaf.csr" -subj "/CN=localhost" 2>/dev/null
  printf 'subjectAltName=DNS:localhost\n' > "$work/leaf.ext"
  openssl x509 -req -in "$work/leaf.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
    -out "$work/cert.pem" -days 1 -extfile "$work/leaf.ext" 2>/dev/null
  ca="$work/ca.pem"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  echo "$bench_user:{PLAIN}$bench_password:5000:5000::$work/mail/soc::" > "$work/users"
  cat > "$work/dovecot.conf" <<CONF
protocols = imap
listen = 127.0.0.1
base_dir = $work/run
state_dir = $work/state
log_path = $work/dovecot.log
instance_name = soar-bench-$port
ssl = yes
ssl_cert = <$work/cert.pem
ssl_key = <$work/key.pem
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $work/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $work/users
}
mail_location = maildir:$work/mail/%u
mail_fsync = never
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $port
    ssl = yes
  }
}
CONF
  dovecot -c "$work/dovecot.conf"
  bench_config=$(jq -cn --arg port "$port" --arg ca "$ca" --arg user "$bench_user" --arg pw "$bench_password" \
    '{server:"localhost",port:($port|tonumber),use_ssl:true,username:$user,password:$pw,ca_cert:$ca,
      first_run_max_emails:1000000,max_emails:1000000}')
}

bench_dovecot_load() {
  local n=$1 dir=${2:-$work/mail/soc}
  python3 "$bench_root/benches/mailbox_gen.py" "$n" "$dir" >&2
  chown -R 5000:5000 "$work/mail"
  # Index now, so no measured run pays for Dovecot's first look at the maildir.
  doveadm -c "$work/dovecot.conf" index -u "$bench_user" INBOX
  doveadm -c "$work/dovecot.conf" mailbox status -u "$bench_user" "messages uidnext" INBOX >&2
}

bench_dovecot_empty() {
  # A new maildir (and so a new UIDVALIDITY) rather than EXPUNGE: the next load reuses
  # the file names, which Dovecot would take for expunged mail reappearing.
  rm -rf "$work/mail/soc"
  mkdir -p "$work/mail/soc"
  chown -R 5000:5000 "$work/mail"
}

# Print the median of the numbers on stdin.
bench_median() {
  sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'
}

# Seconds since the epoch, with nanoseconds.
bench_now() { date +%s.%N; }
