#!/usr/bin/env bash
# baseline.sh: what a platform team writes to check a mutual-TLS nginx when
# it has no harness: docker, openssl and curl only. It makes its own
# certificates, starts one Mandatory and one Optional nginx, each with ONE
# truststore bundle, checks clauses C1 C2 C4 C5 C6 C8 C9 C10 with one curl
# call each, and removes everything it made. `mtlsconform bench` times it
# as the figure the harness is compared with, so it does no more than such
# a script would, and no less: each check asserts the status, and the text
# or the verification header the clause is about.
#
#   bash baseline.sh [IMAGE]    (default mtlsconform/nginx:bookworm)
#
# Exit status: 0 every check passed, 1 a check failed, 2 a tool is missing.
# Traffic goes to 127.0.0.1 only; ports are published on 127.0.0.1 only.
set -euo pipefail

image="${1:-mtlsconform/nginx:bookworm}"
# The caller may name the run so it can find the containers by label if
# this script is killed before its trap runs.
run="${BASELINE_RUN_ID:-$$}"

need() {
	if ! command -v "$1" >/dev/null 2>&1; then
		echo "baseline: $1 is missing: $2 (scripts/prereqs.sh installs it)" >&2
		exit 2
	fi
}
need docker "install Docker"
need openssl "apt-get install openssl"
need curl "apt-get install curl"

work="$(mktemp -d "${TMPDIR:-/tmp}/mtlsconform-baseline.XXXXXX")"
containers=()
cleanup() {
	if ((${#containers[@]} > 0)); then
		docker rm -f "${containers[@]}" >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
# A signal ends the script through exit, so the EXIT trap still removes
# the containers.
trap 'exit 130' INT TERM

lb="$work/lb" # mounted into both containers
mkdir -p "$lb"

# cert NAME SUBJECT ISSUER EXTENSIONS: an ECDSA P-256 key NAME.key and a
# certificate NAME.pem, signed by ISSUER's key, or by its own when ISSUER
# is "self". Extensions come from the argument alone (no openssl.cnf
# defaults), so a client is a client and a CA a CA.
cert() {
	local name="$1" subject="$2" issuer="$3" ext="$4"
	local sign=(-signkey "$work/$name.key")
	if [[ "$issuer" != self ]]; then
		sign=(-CA "$work/$issuer.pem" -CAkey "$work/$issuer.key" -set_serial "0x$(openssl rand -hex 8)")
	fi
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/$name.key"
	openssl req -new -key "$work/$name.key" -subj "$subject" |
		openssl x509 -req -days 2 "${sign[@]}" -extfile <(printf '%b\n' "$ext") -out "$work/$name.pem"
}

ca_ext='basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash'
issuing_ext='basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid'
client_ext='basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth'
# A self-signed client with a key usage lacking keyCertSign is not its own
# issuer to OpenSSL, and nginx could never trust it: no key usage.
self_ext='basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth'

cert root "/CN=Baseline Partner Root CA" self "$ca_ext"
cert issuing "/CN=Baseline Partner Issuing CA" root "$issuing_ext"
cert partner-a "/CN=partner-a" issuing "$client_ext"
cert client-1 "/CN=client-1" self "$self_ext"
cert client-2 "/CN=client-2" self "$self_ext"
cert unknown-root "/CN=Baseline Unknown Root CA" self "$ca_ext"
cert stranger "/CN=stranger" unknown-root "$client_ext"
cert client-unlisted "/CN=client-unlisted" self "$self_ext"
cert server "/CN=localhost" self \
	'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1'
# NAME.send.pem is what a client sends: partner-a sends its intermediate
# too, as partners are told to.
for name in client-1 client-2 stranger client-unlisted; do
	cp "$work/$name.pem" "$work/$name.send.pem"
done
cat "$work/partner-a.pem" "$work/issuing.pem" >"$work/partner-a.send.pem"

# ONE truststore for both balancers: the partner CA chain and every listed
# self-signed client.
cat "$work/root.pem" "$work/issuing.pem" "$work/client-1.pem" "$work/client-2.pem" >"$lb/truststore.pem"
cp "$work/server.pem" "$work/server.key" "$lb/"

# The API behind the balancer is a second server in the same nginx: it
# answers the product list and echoes the verification header it got, so
# the Optional checks see what the backend saw.
conf() {
	cat <<EOF
worker_processes 1;
error_log stderr notice;
pid /tmp/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    server {
        listen 127.0.0.1:8080;
        location / {
            default_type application/json;
            add_header X-Backend-Saw-Verify \$http_x_ssl_client_verify always;
            return 200 '[{"id":"p-1","name":"Widget"},{"id":"p-2","name":"Gadget"}]\n';
        }
    }
    server {
        listen 443 ssl;
        ssl_certificate        /etc/bench/server.pem;
        ssl_certificate_key    /etc/bench/server.key;
        ssl_client_certificate /etc/bench/truststore.pem;
        ssl_verify_client      $1;
        ssl_verify_depth       2;
        location / {
            proxy_pass http://127.0.0.1:8080;
            proxy_set_header X-SSL-Client-Verify \$ssl_client_verify;
            proxy_set_header X-SSL-Client-DN \$ssl_client_s_dn;
        }
    }
}
EOF
}
conf on >"$lb/mandatory.conf"
conf optional_no_ca >"$lb/optional.conf"

# start MODE: runs the balancer and sets port[MODE] to its host port. Not
# in a subshell: the trap must see every container started.
declare -A port
start() {
	local id
	id="$(docker run -d --name "mtlsconform-baseline-$run-$1" --label "org.mtlsconform.baseline=$run" \
		-p 127.0.0.1::443 -v "$lb:/etc/bench:ro" "$image" \
		nginx -g 'daemon off;' -c "/etc/bench/$1.conf")"
	containers+=("$id")
	port[$1]="$(docker port "$id" 443/tcp | head -n 1 | sed 's/.*://')"
}
start mandatory
start optional
mandatory="${port[mandatory]}"
optional="${port[optional]}"

# ready PORT: waits (10 s at most) until the balancer answers over TLS.
ready() {
	local i
	for ((i = 0; i < 100; i++)); do
		if curl -s -o /dev/null --cacert "$work/server.pem" "https://127.0.0.1:$1/"; then
			return 0
		fi
		sleep 0.1
	done
	echo "baseline: the balancer on 127.0.0.1:$1 never answered over TLS" >&2
	docker logs "${containers[@]}" >&2 || true
	exit 1
}
ready "$mandatory"
ready "$optional"

failures=0
# check CLAUSE WHAT PORT STATUS TEXT [CLIENT]: one call, with CLIENT's
# certificate when one is named; passes when the status is STATUS and the
# page or the headers hold TEXT.
check() {
	local clause="$1" what="$2" port="$3" want="$4" text="$5" client="${6:-}"
	local cert=()
	if [[ -n "$client" ]]; then
		cert=(--cert "$work/$client.send.pem" --key "$work/$client.key")
	fi
	local got
	got="$(curl -sS --cacert "$work/server.pem" -D "$work/headers" -o "$work/body" -w '%{http_code}' "${cert[@]}" \
		"https://127.0.0.1:$port/dev-portal-xapi/products")" || got="no answer (curl exit $?)"
	if [[ "$got" == "$want" ]] && grep -qF -- "$text" "$work/body" "$work/headers"; then
		echo "ok   $clause $what: $got"
	else
		echo "FAIL $clause $what: got $got, want $want with \"$text\""
		failures=$((failures + 1))
	fi
}

check C1 "Mandatory, no certificate" "$mandatory" 400 "No required SSL certificate was sent"
check C2 "Mandatory, certificate from an unknown CA" "$mandatory" 400 "400 Bad Request" stranger
check C4 "Mandatory, listed self-signed client-1" "$mandatory" 200 '"p-1"' client-1
check C5 "Mandatory, CA-signed partner-a with its chain" "$mandatory" 200 '"p-1"' partner-a
check C6 "Mandatory, listed self-signed client-2" "$mandatory" 200 '"p-1"' client-2
check C6 "Mandatory, unlisted self-signed client" "$mandatory" 400 "400 Bad Request" client-unlisted
check C8 "Optional, no certificate" "$optional" 200 "X-Backend-Saw-Verify: NONE"
check C9 "Optional, trusted partner-a" "$optional" 200 "X-Backend-Saw-Verify: SUCCESS" partner-a
check C10 "Optional, certificate from an unknown CA" "$optional" 200 "X-Backend-Saw-Verify: FAILED" stranger

if ((failures > 0)); then
	echo "$failures check(s) failed" >&2
	exit 1
fi
