#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with the seed inputs of each fuzz target (the corpus
# directories are working data, not committed). Run from anywhere; safe to run again.
#   email_pipeline: fixtures/eml/**.eml, ../shared/corpus/ (when present), fixtures/fuzz/
#   outlook_msg:    fixtures/msg/*.msg, fixtures/fuzz/
#   request:        fixtures/requests/*.json, fixtures/imap/*.request.json, fixtures/fuzz/
#   transcript:     fixtures/imap/*.transcript, each also without its digests block (so
#                   mutations are not all refused by the digest check), fixtures/fuzz/
set -euo pipefail
fuzz="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$fuzz")"
shared="${SOAR_IMAP_CORPUS:-$root/../shared/corpus}"

# Copy each file under its content hash, as libFuzzer names corpus entries.
add() {
    local target="$1" file="$2" name
    name="$(sha1sum "$file" | cut -d' ' -f1)"
    cp "$file" "$fuzz/corpus/$target/$name"
}

for target in email_pipeline outlook_msg request transcript; do
    mkdir -p "$fuzz/corpus/$target"
    if [ -d "$root/fixtures/fuzz/$target" ]; then
        find "$root/fixtures/fuzz/$target" -type f -print0 |
            while IFS= read -r -d '' f; do add "$target" "$f"; done
    fi
done

find "$root/fixtures/eml" -name '*.eml' -print0 |
    while IFS= read -r -d '' f; do add email_pipeline "$f"; done
if [ -d "$shared" ]; then
    find "$shared" -type f ! -name 'README*' -print0 |
        while IFS= read -r -d '' f; do add email_pipeline "$f"; done
else
    echo "note: $shared not found; email seeds are fixtures/eml only" >&2
fi

for f in "$root"/fixtures/msg/*.msg; do
    add outlook_msg "$f"
done

for f in "$root"/fixtures/requests/*.json "$root"/fixtures/imap/*.request.json; do
    add request "$f"
done

# A few hand-made requests with every top-level field and config key, in both spellings.
req() { printf '%s' "$2" >"$fuzz/corpus/request/hand-$1.json"; }
req full '{"identifier":"on_poll","action":"on poll","asset_id":7,"config":{"server":"imap.example.com","port":"993","auth_type":"OAuth","username":"soc@example.com","password":"p","client_id":"c","client_secret":"s","auth_url":"https://accounts.google.com/o/oauth2/auth","token_url":"https://oauth2.googleapis.com/token","scopes":"[\"https://mail.google.com/\"]","folder":"Entw\u00fcrfe","ingest_manner":"latest first","first_run_max_emails":"2000","max_emails":100,"use_ssl":"true","verify_server_cert":false,"ca_cert":"/etc/ca.pem","allow_plaintext_auth":true,"timeout_secs":60,"max_email_size_mb":"50","data_dir":"/tmp/x","refresh_token":"r","oauth_grant":"client_credentials","extract_attachments":"false","extract_urls":true,"extract_ips":"true","extract_domains":false,"extract_hashes":true,"add_body_to_header_artifacts":"true","ingest":{"container_label":"phishing"}},"parameters":[{"container_id":"5","id":"","folder":null}],"state":{"secrets":{}},"environment_variables":{"HTTPS_PROXY":{"value":"http://127.0.0.1:3128"}}}'
req parse '{"action":"parse email","config":null,"parameters":[{"raw_email":"Subject: x\r\n\r\nhttp://a.example/","id":5},{"path":"/nonexistent.eml"}]}'
req scopes '{"identifier":"test_asset_connectivity","asset_id":"a","config":{"scopes":"https://outlook.office.com/IMAP.AccessAsUser.All offline_access","port":0,"timeout_secs":-1,"server":"[::1]"},"state":null}'

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
for f in "$root"/fixtures/imap/*.transcript; do
    add transcript "$f"
    sed '/^== digests$/,$d' "$f" >"$tmp"
    add transcript "$tmp"
done

for target in email_pipeline outlook_msg request transcript; do
    echo "$target: $(find "$fuzz/corpus/$target" -type f | wc -l) seed files" >&2
done
