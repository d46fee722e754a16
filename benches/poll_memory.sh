#!/usr/bin/env bash
# Peak RSS and wall time of one scheduled poll of N messages (~5 KB each) against a
# throwaway Dovecot on loopback. Usage: cargo build --release && benches/poll_memory.sh N
# Needs dovecot-imapd, openssl, jq and GNU time (/usr/bin/time), as root.
set -euo pipefail
N=$1
bin="$(cd "$(dirname "$0")/.." && pwd)/target/release/soar-imap"
work=$(mktemp -d /tmp/soar-mem.XXXXXX); chmod 755 "$work"
trap 'doveadm -c "$work/dovecot.conf" stop 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/run" "$work/state" "$work/mail/soc" "$work/data" "$work/mbox"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout "$work/ca.key" -out "$work/ca.pem" -days 1 -subj "/CN=ca" 2>/dev/null
openssl req "${ec[@]}" -keyout "$work/key.pem" -out "$work/leaf.csr" -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost\n' > "$work/leaf.ext"
openssl x509 -req -in "$work/leaf.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -out "$work/cert.pem" -days 1 -extfile "$work/leaf.ext" 2>/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "soc:{PLAIN}pw:5000:5000::$work/mail/soc::" > "$work/users"
cat > "$work/dovecot.conf" <<CONF
protocols = imap
listen = 127.0.0.1
base_dir = $work/run
state_dir = $work/state
log_path = $work/dovecot.log
instance_name = soar-mem-$port
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
python3 - "$N" "$work/mbox/in" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
body = ("Lorem ipsum dolor sit amet, see https://site{i}.example.com/path?id={i} from 198.51.100.{j}\n" * 50)
with open(path, "w") as f:
    for i in range(1, n + 1):
        f.write(f"From sender@example.com Mon Jan  1 00:00:00 2024\nFrom: sender{i}@example.com\nTo: soc@example.org\nSubject: message {i}\nMessage-ID: <m{i}@example.com>\n\n")
        f.write(body.format(i=i, j=i % 250))
        f.write("\n")
PY
chown -R 5000:5000 "$work/mail" "$work/mbox"
dovecot -c "$work/dovecot.conf"
doveadm -c "$work/dovecot.conf" import -u soc -s "mbox:$work/mbox:INBOX=$work/mbox/in" "" all
config=$(jq -n --arg port "$port" --arg ca "$work/ca.pem" --arg data "$work/data" \
  '{server:"localhost",port:($port|tonumber),use_ssl:true,username:"soc",password:"pw",ca_cert:$ca,data_dir:$data,first_run_max_emails:1000000,max_emails:1000000}')
jq -n --argjson c "$config" '{identifier:"on_poll",config:$c}' > "$work/req.json"
/usr/bin/time -v "$bin" --request "$work/req.json" 2>"$work/time.txt" >"$work/out.json" || true
ingested=$(jq '.action_results[0].summary.emails_ingested' "$work/out.json")
rss=$(grep "Maximum resident" "$work/time.txt" | awk '{print $NF}')
wall=$(grep "Elapsed (wall" "$work/time.txt" | awk '{print $NF}')
echo "N=$N ingested=$ingested peak_rss_kb=$rss wall=$wall"
